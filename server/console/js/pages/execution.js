// An execution: status, task graph coloured by task state, task table and
// timeline, failed tasks' errors, contexts, the event log, and cancel
// (write role). Live: the delivery WebSocket (exec_events:<id>) pushes
// each event; the tasks are fetched again after each. Without the socket
// the page polls.
import { get, post, path, isAbort } from '../api.js';
import { el, put, errorBox, section, facts, note, busy } from '../dom.js';
import { badge, time, between, pretty, compact, stateOf } from '../format.js';
import { renderDag, setStates } from '../dag.js';
import { session, canWrite } from '../session.js';

export const title = (params) => `Execution ${params.id.slice(0, 8)}`;

// The delivery protocol (host/wire/src/ws.rs): hello first, then pushes.
const PROTOCOL_VERSION = 1;
const CLOSE_NOT_FOUND = 4404;
const CLOSE_POLICY = 1008;
// Acks are stored per tenant and recipient, shared by every client: an ack
// from this passive viewer would keep those events from a CLI or SDK client
// that follows the same execution later. The page dedupes by sequence
// number instead, so it does not ack.
const ACK_PUSHES = false;
const POLL_MS = 3000;

// A task event's effect on the task's state, drawn before the tasks are
// fetched again.
const EVENT_STATE = {
  task_created: 'pending',
  task_started: 'running',
  task_completed: 'completed',
  task_failed: 'failed',
  task_retry_scheduled: 'retrying',
  task_skipped: 'skipped',
  task_cancelled: 'cancelled',
  task_lease_expired: 'ready',
};

const ms = (iso) => (iso ? Date.parse(iso) : NaN);
const isRunning = (detail) => stateOf(detail.status) === 'running';

/** A push's payload: base64 of the event's UTF-8 JSON. */
function decodePayload(b64) {
  const binary = atob(b64);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

/** Closes a socket without the browser's "closed before established" error. */
function closeSocket(ws) {
  if (ws.readyState === WebSocket.CONNECTING) ws.addEventListener('open', () => ws.close(1000, 'page left'));
  else ws.close(1000, 'page left');
}

/** The execution; one just started may take a moment to be readable. */
async function firstDetail(url, signal) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await get(url, { signal });
    } catch (error) {
      if (error.status !== 404 || attempt >= 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }
}

export async function render({ root, params, signal, onLeave, app }) {
  const t = session.tenant;
  const id = params.id;
  const base = path`/v1/tenants/${t}/executions/${id}`;
  const first = await firstDetail(base, signal);
  const [tasks, events, catalog] = await Promise.all([
    get(`${base}/tasks`, { signal }),
    get(`${base}/events`, { signal }),
    // For the task graph of the version it runs on (secondary).
    get(path`/v1/tenants/${t}/workflows`, { signal }).catch((error) => {
      if (isAbort(error)) throw error;
      return error;
    }),
  ]);

  const state = {
    detail: first,
    tasks: tasks.tasks,
    events: [...events.events].sort((a, b) => a.sequence_num - b.sequence_num),
  };
  const seen = new Set(state.events.map((e) => e.sequence_num));
  let stopped = false;
  let socket = null;
  let pollTimer = null;
  let retryTimer = null;
  let refreshTimer = null;
  let retries = 0;
  // Polling waits while the tab is hidden; it goes on when it is shown.
  let pollPaused = false;
  const onVisibility = () => {
    if (!document.hidden && pollPaused) {
      pollPaused = false;
      poll();
    }
  };
  document.addEventListener('visibilitychange', onVisibility);
  onLeave(() => {
    stopped = true;
    clearTimeout(pollTimer);
    clearTimeout(retryTimer);
    clearTimeout(refreshTimer);
    document.removeEventListener('visibilitychange', onVisibility);
    if (socket) closeSocket(socket);
  });

  // ---- layout ----
  const live = el('span', { class: 'live', 'data-testid': 'live-status', 'data-state': 'off' });
  const header = el('div', { class: 'exec-header', tabindex: '-1' });
  const cancelResult = el('p', { 'data-testid': 'cancel-result', 'aria-live': 'polite', tabindex: '-1' });
  const problem = el('div', { 'data-testid': 'refresh-error', 'aria-live': 'polite' });
  const headerCard = el('section', { class: 'card', 'aria-label': 'Status' }, header, cancelResult, problem,
    el('p', { class: 'muted small' }, 'Live updates: ', live));
  const errors = el('div');
  const timeline = el('div', { class: 'timeline', 'data-testid': 'timeline' });
  const taskTable = el('div');
  const contexts = el('div', { class: 'columns' });
  const eventBody = el('tbody');
  const eventCount = el('span', { class: 'muted' });

  // The task graph: of this version when still registered; else the tasks
  // without their dependencies.
  let graphBox;
  const version = catalog instanceof Error ? null : catalog.items.find((w) =>
    w.workflow_name === first.workflow_name && w.package_name === first.package_name && w.version === first.package_version);
  if (version) {
    graphBox = renderDag(version.task_graph.map((n) => ({ id: n.id })),
      version.task_graph.flatMap((n) => n.dependencies.map((d) => ({ from: d, to: n.id }))),
      { label: `Task graph of ${first.workflow_name}, coloured by task state` });
  } else {
    graphBox = el('div', null,
      catalog instanceof Error ? errorBox(catalog) : note(`Version ${first.package_version} is no longer registered: dependencies unknown.`),
      renderDag(state.tasks.map((task) => ({ id: task.task_name })), [], { label: 'Tasks, coloured by state' }));
  }

  root.append(
    headerCard,
    errors,
    section('Task graph', null, graphBox),
    section('Tasks', null, taskTable),
    section('Timeline', null, timeline),
    contexts,
    section('Events', null, eventCount, el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Events' },
      el('table', { 'data-testid': 'events' },
        el('caption', { class: 'visually-hidden' }, 'Events'),
        el('thead', null, el('tr', null, ['#', 'Time', 'Event', 'Task', 'Data'].map((h) => el('th', { scope: 'col' }, h)))),
        eventBody))),
  );

  // ---- drawing ----
  // Each poll or push draws again; what did not change is left alone, so
  // focus (the Cancel button) and open <details> survive.
  let headerKey = null;
  let durationNode = null;
  let tasksKey = null;
  let contextsKey = null;
  const durationText = (d) => (d.completed_at ? between(d.started_at, d.completed_at) : `${between(d.started_at)} so far`);

  function drawHeader() {
    const d = state.detail;
    const key = JSON.stringify([d.status, d.completed_at, d.error, d.failed_task]);
    if (key === headerKey) {
      if (durationNode) durationNode.textContent = durationText(d);
      return;
    }
    headerKey = key;
    const hadFocus = header.contains(document.activeElement);
    durationNode = el('span', null, durationText(d));
    const running = isRunning(d);
    const cancel = canWrite() && running
      ? el('button', { type: 'button', class: 'btn btn-danger', 'data-testid': 'cancel-button' }, 'Cancel execution')
      : null;
    if (cancel) cancel.addEventListener('click', () => cancelExecution(cancel));
    put(header,
      el('div', { class: 'exec-status' }, badge(d.status, { 'data-testid': 'execution-status' }), cancel),
      facts([
        ['Execution', el('span', { class: 'mono wrap' }, d.execution_id)],
        ['Workflow', el('a', { href: `#/workflows/${encodeURIComponent(d.workflow_name)}` }, d.workflow_name)],
        ['Package', el('span', { class: 'mono' }, `${d.package_name} ${d.package_version}`)],
        ['Started', time(d.started_at)],
        ['Ended', time(d.completed_at)],
        ['Duration', durationNode],
      ]));
    put(errors, d.error
      ? el('section', { class: 'card alert-error', 'aria-label': 'Failure' },
        el('h2', null, d.failed_task ? `Failed at task ${d.failed_task}` : 'Failed'),
        el('pre', { class: 'error-text', 'data-testid': 'execution-error' }, d.error))
      : null);
    // The Cancel button had the focus and is gone (the execution ended).
    if (hadFocus && !header.contains(document.activeElement)) header.focus();
  }

  function drawTasks() {
    const states = new Map(state.tasks.map((task) => [task.task_name, stateOf(task.status)]));
    setStates(graphBox, states);
    const key = JSON.stringify(state.tasks);
    if (key === tasksKey) {
      // The same tasks: only the running ones' durations move on.
      for (const cell of taskTable.querySelectorAll('td[data-running-since]')) {
        cell.textContent = between(cell.dataset.runningSince);
      }
      drawTimeline();
      return;
    }
    tasksKey = key;
    // The outputs open now, and where the focus is, by task name.
    const open = new Set([...taskTable.querySelectorAll('details[open][data-output-of]')].map((d) => d.dataset.outputOf));
    const active = document.activeElement;
    const focusedTask = active && taskTable.contains(active) && active.closest('[data-output-of]')
      ? active.closest('[data-output-of]').dataset.outputOf : null;
    const wrapFocused = active && taskTable.contains(active) && active.classList.contains('table-wrap');
    const rows = state.tasks.map((task) => el('tr', { 'data-testid': 'task-row', 'data-task': task.task_name, 'data-state': stateOf(task.status) },
      el('th', { scope: 'row', class: 'mono' }, task.task_name),
      el('td', null, badge(task.status)),
      el('td', { class: 'num' }, `${task.attempt} / ${task.max_attempts}`),
      el('td', null, time(task.started_at)),
      el('td', { class: 'num', 'data-running-since': task.started_at && !task.completed_at ? task.started_at : null },
        task.started_at ? between(task.started_at, task.completed_at) : '—'),
      el('td', null,
        task.last_error ? el('code', { class: 'wrap text-error' }, compact(task.last_error, 200)) : null,
        task.output != null
          ? el('details', { 'data-output-of': task.task_name, open: open.has(task.task_name) },
            el('summary', null, 'Output'), el('pre', null, pretty(task.output)))
          : null)));
    put(taskTable, rows.length
      ? el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Tasks' },
        el('table', { 'data-testid': 'tasks' },
          el('caption', { class: 'visually-hidden' }, 'Tasks'),
          el('thead', null, el('tr', null, ['Task', 'State', 'Attempt', 'Started', 'Duration', 'Error / output'].map((h) => el('th', { scope: 'col' }, h)))),
          el('tbody', null, rows)))
      : el('p', { class: 'empty' }, 'No task yet.'));
    if (focusedTask !== null) {
      const again = [...taskTable.querySelectorAll('details[data-output-of]')].find((d) => d.dataset.outputOf === focusedTask);
      if (again) again.querySelector('summary').focus();
    } else if (wrapFocused) {
      const wrap = taskTable.querySelector('.table-wrap');
      if (wrap) wrap.focus();
    }
    drawTimeline();
    drawTaskErrors();
  }

  // One bar per task from its start to its end (or now), on the
  // execution's time span.
  function drawTimeline() {
    const d = state.detail;
    const start = ms(d.started_at);
    const ends = state.tasks.map((task) => ms(task.completed_at)).filter(Number.isFinite);
    const end = Math.max(d.completed_at ? ms(d.completed_at) : Date.now(), ...ends, start + 1);
    const span = end - start;
    const ordered = [...state.tasks].sort((a, b) => (ms(a.started_at) || Infinity) - (ms(b.started_at) || Infinity));
    put(timeline, ordered.length ? ordered.map((task) => {
      const from = ms(task.started_at);
      const to = task.completed_at ? ms(task.completed_at) : end;
      const bar = Number.isFinite(from)
        ? el('div', {
          class: 'bar', 'data-state': stateOf(task.status), 'data-testid': 'timeline-bar', 'data-task': task.task_name,
          title: `${task.task_name}: ${between(task.started_at, task.completed_at)}`,
          style: { left: `${((from - start) / span) * 100}%`, width: `${Math.max(((to - from) / span) * 100, 0.6)}%` },
        })
        : null;
      return el('div', { class: 'timeline-row' },
        el('span', { class: 'timeline-name mono', title: task.task_name }, task.task_name),
        el('div', { class: 'timeline-track' }, bar),
        el('span', { class: 'timeline-info small muted' },
          Number.isFinite(from) ? between(task.started_at, task.completed_at) : 'not started',
          ` · attempt ${task.attempt}/${task.max_attempts}`));
    }) : el('p', { class: 'empty' }, 'No task yet.'));
  }

  function drawTaskErrors() {
    const failed = state.tasks.filter((task) => stateOf(task.status) === 'failed');
    const existing = root.querySelector('[data-section="task-errors"]');
    const box = failed.length
      ? section('Failed tasks', { 'data-section': 'task-errors' }, failed.map((task) => el('div', { class: 'task-error' },
        el('h3', { class: 'mono' }, task.task_name, ` (attempt ${task.attempt} of ${task.max_attempts})`),
        el('pre', { class: 'error-text', 'data-testid': 'task-error', 'data-task': task.task_name },
          task.error_details || task.last_error || 'No error text was recorded.'))))
      : null;
    if (existing && box) existing.replaceWith(box);
    else if (existing) existing.remove();
    else if (box) errors.after(box);
  }

  function drawContexts() {
    const d = state.detail;
    const input = d.input_context;
    const key = JSON.stringify([input, d.final_context, isRunning(d)]);
    if (key === contextsKey) return;
    contextsKey = key;
    put(contexts,
      section('Input context', null, input != null
        ? el('pre', { class: 'json', 'data-testid': 'input-context' }, pretty(input))
        : note(input === undefined ? 'The server does not report the input context.' : 'Not recorded.', 'input-context')),
      section('Final context', null, d.final_context != null
        ? el('pre', { class: 'json', 'data-testid': 'final-context' }, pretty(d.final_context))
        : note(isRunning(d) ? 'Not yet: the execution is running.' : 'None.', 'final-context')));
  }

  function eventRow(e) {
    let data = e.event_data;
    if (e.event_type === 'task_log' && data) {
      try {
        data = JSON.parse(data).message ?? data;
      } catch { /* shown as is */ }
    }
    return el('tr', { 'data-testid': 'event-row', 'data-seq': e.sequence_num, 'data-type': e.event_type },
      el('td', { class: 'num' }, String(e.sequence_num)),
      el('td', null, time(e.created_at)),
      el('td', null, el('span', { class: 'event-type', 'data-state': EVENT_STATE[e.event_type] ?? e.event_type.replace(/^workflow_/, '') }, e.event_type)),
      el('td', { class: 'mono' }, e.task_name ?? ''),
      el('td', null, data ? el('code', { class: 'wrap' }, compact(data, 300)) : ''));
  }

  function drawEvents() {
    put(eventBody, state.events.map(eventRow));
    eventCount.textContent = `${state.events.length} event${state.events.length === 1 ? '' : 's'}`;
  }

  // An event from the socket (or a poll): kept once, in order.
  function addEvent(e) {
    if (seen.has(e.sequence_num)) return false;
    seen.add(e.sequence_num);
    const last = state.events.length ? state.events[state.events.length - 1].sequence_num : 0;
    state.events.push(e);
    if (e.sequence_num > last) {
      eventBody.append(eventRow(e));
      eventCount.textContent = `${state.events.length} events`;
    } else {
      state.events.sort((a, b) => a.sequence_num - b.sequence_num);
      drawEvents();
    }
    const drawn = EVENT_STATE[e.event_type];
    if (drawn && e.task_name) {
      const node = graphBox.querySelector(`.dag-node[data-task="${CSS.escape(e.task_name)}"]`);
      if (node) node.setAttribute('data-state', drawn);
    }
    return true;
  }

  // ---- refreshing ----
  let wanted = { tasks: false, detail: false };
  function refreshSoon(what) {
    wanted = { tasks: wanted.tasks || what.tasks, detail: wanted.detail || what.detail };
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 150);
  }

  async function refresh() {
    const what = wanted;
    wanted = { tasks: false, detail: false };
    try {
      const [detail, taskList] = await Promise.all([
        what.detail ? get(base, { signal }) : null,
        what.tasks ? get(`${base}/tasks`, { signal }) : null,
      ]);
      if (detail) {
        state.detail = detail;
        drawHeader();
        drawContexts();
      }
      if (taskList) {
        state.tasks = taskList.tasks;
        drawTasks();
      }
      problem.replaceChildren();
    } catch (error) {
      if (!isAbort(error)) put(problem, errorBox(error));
    }
  }

  // Polling, while the socket is not live: everything, every few seconds.
  async function poll() {
    clearTimeout(pollTimer);
    if (stopped || (socket && live.dataset.state === 'live')) return;
    if (document.hidden) {
      pollPaused = true;
      return;
    }
    try {
      const [detail, taskList, eventList] = await Promise.all([get(base, { signal }), get(`${base}/tasks`, { signal }), get(`${base}/events`, { signal })]);
      state.detail = detail;
      state.tasks = taskList.tasks;
      eventList.events.forEach(addEvent);
      drawHeader();
      drawContexts();
      drawTasks();
      problem.replaceChildren();
      if (!isRunning(detail)) {
        setLive('ended');
        return;
      }
    } catch (error) {
      if (isAbort(error)) return;
      put(problem, errorBox(error));
    }
    pollTimer = setTimeout(poll, POLL_MS);
  }

  function setLive(value, why) {
    live.dataset.state = value;
    const words = { connecting: 'connecting…', live: 'live', ended: 'ended (execution finished)', polling: 'polling every 3 s', off: 'off' };
    live.textContent = words[value] + (why ? ` (${why})` : '');
  }

  // The delivery socket: ticket, connect, hello, then pushes.
  async function connect() {
    if (stopped) return;
    if (!isRunning(state.detail)) {
      setLive('ended');
      return;
    }
    setLive('connecting');
    let ticket;
    try {
      ({ ticket } = await post('/v1/auth/ws-ticket', undefined, { signal }));
    } catch (error) {
      if (isAbort(error)) return;
      setLive('polling', `no ticket: ${error.message}`);
      poll();
      return;
    }
    if (stopped) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    let ws;
    try {
      ws = new WebSocket(`${scheme}://${location.host}/v1/ws/delivery/exec_events:${encodeURIComponent(id)}?token=${encodeURIComponent(ticket)}`);
    } catch (error) {
      setLive('polling', error.message);
      poll();
      return;
    }
    socket = ws;
    const lastSeen = state.events.length ? state.events[state.events.length - 1].sequence_num : null;
    ws.addEventListener('open', () => {
      ws.send(JSON.stringify({ type: 'hello', protocol_version: PROTOCOL_VERSION, since_id: lastSeen }));
    });
    ws.addEventListener('message', (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      if (frame.type === 'welcome') {
        retries = 0;
        clearTimeout(pollTimer);
        setLive('live');
        // Whatever changed between the first fetch and the welcome.
        refreshSoon({ tasks: true, detail: true });
      } else if (frame.type === 'push' && frame.kind === 'exec_event') {
        let event;
        try {
          event = decodePayload(frame.payload_b64);
        } catch {
          return;
        }
        if (addEvent(event) && event.event_type !== 'task_log') {
          refreshSoon({ tasks: event.event_type.startsWith('task_'), detail: event.event_type.startsWith('workflow_') });
        }
        if (ACK_PUSHES) ws.send(JSON.stringify({ type: 'ack', protocol_version: PROTOCOL_VERSION, id: frame.id }));
      }
    });
    ws.addEventListener('close', async (closed) => {
      if (socket === ws) socket = null;
      if (stopped) return;
      if (closed.code === CLOSE_POLICY) {
        // The key was revoked while the page followed the execution.
        setLive('off', 'the key was revoked');
        app.signOut('The server closed the live connection: the key was revoked. Sign in with another key.');
        return;
      }
      if (closed.code === CLOSE_NOT_FOUND) {
        setLive('polling', 'the server does not stream this execution');
        poll();
        return;
      }
      // 1000: the execution has ended (after an idle time); else a drop.
      wanted = { tasks: true, detail: true };
      await refresh();
      if (!isRunning(state.detail)) {
        setLive('ended');
        return;
      }
      retries += 1;
      const delay = Math.min(1000 * 2 ** (retries - 1), 15000);
      setLive('polling', `reconnecting in ${Math.round(delay / 1000)} s`);
      poll();
      retryTimer = setTimeout(connect, delay);
    });
  }

  async function cancelExecution(button) {
    try {
      const answer = await busy(button, 'Cancelling…', () => post(`${base}/cancel`, undefined, { signal }));
      put(cancelResult, answer.cancelled ? 'Cancelled.' : `Nothing to cancel: it had ended (${answer.status}).`);
    } catch (error) {
      if (isAbort(error)) return;
      put(cancelResult, errorBox(error, 'cancel-error'));
    }
    cancelResult.focus();
    refreshSoon({ tasks: true, detail: true });
  }

  drawHeader();
  drawTasks();
  drawContexts();
  drawEvents();
  connect();
}
