// A workflow: its task graph (dagre), tasks and their policies, versions,
// cron schedules and triggers, and a form to run it (write role).
import { get, post, path, query, isAbort } from '../api.js';
import { el, put, errorBox, section, table, facts, busy } from '../dom.js';
import { badge, time, compact, bytes, span, when, refreshRelative } from '../format.js';
import { renderDag } from '../dag.js';
import { session, canWrite } from '../session.js';
import { compareVersions } from './packages.js';

export const title = (params) => `Workflow ${params.name}`;

// Fields of a task node shown in their own columns; any other is shown as
// it comes.
const NODE_FIELDS = new Set(['id', 'dependencies', 'description', 'max_attempts', 'backoff', 'retry_delay_ms', 'timeout_ms']);

/** A task's retry and timeout policy: '3 attempts (2 retries), exponential from 500 ms; timeout 30 s'. */
export function taskPolicy(n) {
  const parts = [];
  const attempts = Number(n.max_attempts);
  if (Number.isFinite(attempts) && attempts > 0) {
    if (attempts === 1) {
      parts.push('1 attempt (no retries)');
    } else {
      const retries = attempts - 1;
      const delay = span(Number(n.retry_delay_ms) || 0);
      const backoff = n.backoff || 'fixed';
      const pace = backoff === 'fixed' ? `${delay} apart` : `${backoff} from ${delay}`;
      parts.push(`${attempts} attempts (${retries} ${retries === 1 ? 'retry' : 'retries'}), ${pace}`);
    }
  }
  if ('timeout_ms' in n) parts.push(n.timeout_ms != null ? `timeout ${span(n.timeout_ms)}` : 'no timeout');
  return parts.join('; ');
}

export async function render({ root, params, signal, app, onLeave, isCurrent }) {
  const t = session.tenant;
  const name = params.name;
  const [detail, list, triggers] = await Promise.all([
    get(path`/v1/tenants/${t}/workflows/${name}`, { signal }),
    get(path`/v1/tenants/${t}/workflows`, { signal }),
    // Schedules are secondary: their failure is shown in their section.
    get(path`/v1/tenants/${t}/triggers` + query({ limit: 1000 }), { signal }).catch((error) => {
      if (isAbort(error)) throw error;
      return error;
    }),
  ]);
  const versions = list.items.filter((w) => w.workflow_name === detail.workflow_name)
    .sort((a, b) => compareVersions(b.version, a.version));
  const graph = detail.task_graph || [];

  // Summary.
  root.append(el('div', { class: 'columns' },
    section('Summary', { 'data-testid': 'workflow-summary' },
      detail.description ? el('p', null, detail.description) : null,
      facts([
        ['Package', detail.package_name],
        ['Version', el('span', { class: 'mono' }, detail.version)],
        ['Build status', badge(detail.build_status, { 'data-testid': 'build-status' })],
        ['Signer key', detail.signer_key_id ? el('span', { class: 'mono' }, detail.signer_key_id) : 'unsigned'],
        ['SHA-256', el('span', { class: 'mono wrap' }, detail.sha256)],
        detail.package ? ['Size', el('span', { title: `${detail.package.size_bytes} bytes` }, bytes(detail.package.size_bytes))] : null,
        detail.package ? ['Artifacts', detail.package.artifacts.length ? el('span', { class: 'mono' }, detail.package.artifacts.join(', ')) : '—'] : null,
        detail.package ? ['Source', detail.package.source.startsWith('drop:')
          ? ['drop directory ', el('span', { class: 'mono wrap' }, detail.package.source.slice('drop:'.length))]
          : detail.package.source] : null,
        ['Registered', time(detail.created_at)],
      ]),
      detail.build_error ? el('pre', { class: 'error-text', 'data-testid': 'build-error' }, detail.build_error) : null),
    section('Versions', null, table({
      caption: 'Registered versions',
      head: ['Version', 'Package', 'Status', 'Registered'],
      rows: versions.map((v) => el('tr', null,
        el('th', { scope: 'row', class: 'mono' }, v.version, v.live ? [' ', badge('live')] : null),
        el('td', null, v.package_name),
        el('td', null, badge(v.status && v.status.status)),
        el('td', null, time(v.created_at)))),
    }))));

  // Task graph, the run form, tasks.
  root.append(section(`Task graph (version ${detail.version})`, null,
    renderDag(graph.map((n) => ({ id: n.id })),
      graph.flatMap((n) => n.dependencies.map((d) => ({ from: d, to: n.id }))),
      { label: `Task graph of ${detail.workflow_name}` })));
  if (canWrite()) root.append(runForm(t, detail, versions, { app, signal, isCurrent }));

  const policyRows = graph.some((n) => taskPolicy(n) || Object.keys(n).some((k) => !NODE_FIELDS.has(k)));
  root.append(section('Tasks', null, table({
    caption: 'Tasks',
    head: ['Task', 'Depends on', 'Description', policyRows ? 'Policies' : null].filter(Boolean),
    rows: graph.map((n) => {
      const policy = taskPolicy(n);
      const others = Object.fromEntries(Object.entries(n).filter(([k]) => !NODE_FIELDS.has(k)));
      return el('tr', { 'data-testid': 'task-row', 'data-task': n.id },
        el('th', { scope: 'row', class: 'mono' }, n.id),
        el('td', { class: 'mono' }, n.dependencies.join(', ') || '—'),
        el('td', null, n.description ?? ''),
        policyRows ? el('td', { 'data-testid': 'task-policy' },
          policy || (Object.keys(others).length ? null : '—'),
          Object.keys(others).length ? [policy ? el('br') : null, el('code', { class: 'wrap' }, compact(others, 400))] : null) : null);
    }),
  })));

  // Schedules and triggers of this workflow.
  let schedules;
  if (triggers instanceof Error) {
    schedules = errorBox(triggers);
  } else {
    const mine = triggers.items.filter((s) => s.workflow_name === detail.workflow_name);
    schedules = table({
      caption: 'Cron schedules and triggers',
      head: ['Type', 'Name', 'When', 'Enabled', 'Next run', 'Last run'],
      rows: mine.map((s) => el('tr', { 'data-testid': 'schedule-row', 'data-type': s.schedule_type },
        el('td', null, s.schedule_type),
        el('th', { scope: 'row', class: 'mono' }, s.schedule_name ?? s.trigger_name ?? s.id),
        el('td', { class: 'mono' }, s.cron_expression ?? (s.poll_interval_ms != null ? `polled every ${s.poll_interval_ms} ms` : '—')),
        el('td', null, s.enabled ? 'yes' : 'no'),
        el('td', { 'data-testid': 'schedule-next' }, when(s.next_run_at)),
        el('td', null, when(s.last_run_at)))),
      empty: 'No cron schedule or trigger starts this workflow (only loaded packages count).',
    });
  }
  root.append(section('Schedules and triggers', null, schedules));
  // "in 4 min" stays true while the page is open.
  const ticker = setInterval(() => refreshRelative(root), 15000);
  onLeave(() => clearInterval(ticker));
}

/** The run form: a JSON object context, checked as it is typed. */
function runForm(t, detail, versions, { app, signal, isCurrent }) {
  const area = el('textarea', {
    id: 'run-context', rows: 8, spellcheck: 'false', 'data-testid': 'run-context',
    'aria-describedby': 'run-context-error',
  });
  area.value = '{}';
  const problem = el('p', { id: 'run-context-error', class: 'field-error', 'data-testid': 'run-context-error', 'aria-live': 'polite' });
  const version = el('select', { id: 'run-version', 'data-testid': 'run-version' },
    el('option', { value: '' }, 'Default (the server picks)'),
    versions.map((v) => el('option', { value: v.version }, `${v.version}${v.live ? ' (live)' : ''}`)));
  const submit = el('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'run-submit' }, 'Run');
  const outcome = el('div', { 'aria-live': 'polite' });

  let context = {};
  const check = () => {
    try {
      const value = JSON.parse(area.value);
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new Error('The context must be a JSON object, such as {} or {"key": "value"}.');
      }
      context = value;
      problem.textContent = '';
      area.removeAttribute('aria-invalid');
      submit.disabled = false;
    } catch (error) {
      problem.textContent = error instanceof SyntaxError ? `Invalid JSON: ${error.message}` : error.message;
      area.setAttribute('aria-invalid', 'true');
      submit.disabled = true;
    }
  };
  area.addEventListener('input', check);

  const form = el('form', { class: 'form', 'data-testid': 'run-form' },
    el('label', { for: 'run-version' }, 'Version'), version,
    el('label', { for: 'run-context' }, 'Input context (a JSON object)'), area, problem,
    el('div', { class: 'actions' }, submit), outcome);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    check();
    if (submit.disabled) return;
    outcome.replaceChildren();
    const body = { context };
    if (version.value) body.version = version.value;
    let started;
    try {
      started = await busy(submit, 'Starting…', () =>
        post(path`/v1/tenants/${t}/workflows/${detail.workflow_name}/execute`, body, { signal }));
    } catch (error) {
      if (isAbort(error) || !isCurrent()) return;
      put(outcome, errorBox(error, 'run-error'));
      return;
    }
    // The user went elsewhere while it started: stay there.
    if (!isCurrent()) return;
    app.go(`#/executions/${encodeURIComponent(started.execution_id)}`);
  });
  return section('Run', { class: 'card run' }, form);
}
