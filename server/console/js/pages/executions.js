// Executions: newest first, filtered by status and workflow, paged by the
// server (limit/offset/total), refreshed every 2 s while the tab is visible.
import { get, path, query, isAbort } from '../api.js';
import { el, put, errorBox, table } from '../dom.js';
import { badge, time, between, shortId } from '../format.js';
import { session } from '../session.js';

export const title = 'Executions';

const PAGE = 25;
const REFRESH_MS = 2000;
const STATUSES = ['Running', 'Completed', 'Failed', 'Cancelled'];

export async function render({ root, query: params, signal, onLeave, setQuery }) {
  const t = session.tenant;
  const filter = {
    status: STATUSES.find((s) => s.toLowerCase() === (params.get('status') || '').toLowerCase()) || '',
    workflow: params.get('workflow') || '',
    offset: Math.max(0, Number.parseInt(params.get('offset') || '0', 10) || 0),
  };

  // Filters.
  const status = el('select', { id: 'filter-status', 'data-testid': 'filter-status' },
    el('option', { value: '' }, 'Any status'),
    STATUSES.map((s) => el('option', { value: s, selected: s === filter.status }, s)));
  const workflow = el('input', { id: 'filter-workflow', type: 'search', value: filter.workflow, placeholder: 'any', 'data-testid': 'filter-workflow' });
  const form = el('form', { class: 'filters', role: 'search', 'aria-label': 'Filter executions' },
    el('label', { for: 'filter-status' }, 'Status'), status,
    el('label', { for: 'filter-workflow' }, 'Workflow'), workflow,
    el('button', { type: 'submit', class: 'btn', 'data-testid': 'filter-apply' }, 'Apply'));

  const problem = el('div', { 'data-testid': 'refresh-error', 'aria-live': 'polite' });
  const listBox = el('div');
  const prev = el('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'page-prev' }, '← Newer');
  const next = el('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'page-next' }, 'Older →');
  const info = el('span', { class: 'muted', 'data-testid': 'page-info', 'aria-live': 'polite' });
  root.append(form, problem, listBox, el('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, info, next));

  let timer = null;
  let shown = '';
  let stopped = false;
  onLeave(() => {
    stopped = true;
    clearTimeout(timer);
    document.removeEventListener('visibilitychange', onVisibility);
  });

  // Each load has a number: an answer to an older one (a slow poll after
  // a filter change) is dropped, never drawn over a newer one.
  let sequence = 0;
  async function load() {
    clearTimeout(timer);
    const mine = ++sequence;
    const url = path`/v1/tenants/${t}/executions` + query({ status: filter.status, workflow: filter.workflow, limit: PAGE, offset: filter.offset });
    let list;
    try {
      list = await get(url, { signal });
    } catch (error) {
      if (mine !== sequence) return; // superseded: its failure no longer matters
      throw error;
    }
    if (mine !== sequence) return;
    // Past the end (executions were removed, or a stale link): the last
    // page instead of an empty one.
    if (!list.items.length && filter.offset > 0) {
      const lastPage = list.total > 0 ? Math.floor((list.total - 1) / PAGE) * PAGE : 0;
      if (lastPage < filter.offset) {
        filter.offset = lastPage;
        saveQuery();
        return load();
      }
    }
    const key = JSON.stringify([filter, list]);
    if (key !== shown) {
      shown = key;
      draw(list);
    }
  }

  // Redraws the table, keeping keyboard focus on the same link.
  function draw(list) {
    const focused = listBox.contains(document.activeElement) ? document.activeElement.getAttribute('href') : null;
    put(listBox, table({
      caption: 'Executions',
      head: ['Execution', 'Workflow', 'Version', 'Status', 'Started', 'Duration'],
      rows: list.items.map((e) => el('tr', { 'data-testid': 'execution-row', 'data-id': e.id, 'data-status': e.status.toLowerCase() },
        el('th', { scope: 'row' }, el('a', { href: `#/executions/${encodeURIComponent(e.id)}`, 'data-testid': 'execution-link' }, shortId(e.id))),
        el('td', null, el('a', { href: `#/workflows/${encodeURIComponent(e.workflow_name)}` }, e.workflow_name)),
        el('td', { class: 'mono' }, `${e.package_name} ${e.package_version}`),
        el('td', null, badge(e.status)),
        el('td', null, time(e.started_at)),
        el('td', { class: 'num' }, e.completed_at ? between(e.started_at, e.completed_at) : `${between(e.started_at)} so far`))),
      testid: 'executions',
      empty: filter.status || filter.workflow ? 'No execution matches these filters.' : 'No execution yet.',
    }));
    const last = Math.min(filter.offset + list.items.length, list.total);
    info.textContent = list.total ? `${filter.offset + 1}–${last} of ${list.total}` : '0 of 0';
    info.dataset.total = String(list.total);
    prev.disabled = filter.offset === 0;
    next.disabled = filter.offset + PAGE >= list.total;
    if (focused) {
      const again = [...listBox.querySelectorAll('a')].find((a) => a.getAttribute('href') === focused);
      if (again) again.focus();
    }
  }

  // Polls while visible; one request at a time.
  function schedule() {
    clearTimeout(timer);
    if (stopped || document.hidden) return;
    timer = setTimeout(async () => {
      try {
        await load();
        problem.replaceChildren();
      } catch (error) {
        if (isAbort(error)) return;
        put(problem, errorBox(error));
      }
      schedule();
    }, REFRESH_MS);
  }
  function onVisibility() {
    if (document.hidden) clearTimeout(timer);
    else {
      load().then(() => problem.replaceChildren(), (error) => { if (!isAbort(error)) put(problem, errorBox(error)); });
      schedule();
    }
  }
  document.addEventListener('visibilitychange', onVisibility);

  // Filters and pages: the hash keeps them (shareable links), no re-render.
  function saveQuery() {
    setQuery({
      ...(filter.status && { status: filter.status }),
      ...(filter.workflow && { workflow: filter.workflow }),
      ...(filter.offset && { offset: String(filter.offset) }),
    });
  }
  const apply = async () => {
    saveQuery();
    try {
      await load();
      problem.replaceChildren();
    } catch (error) {
      if (!isAbort(error)) put(problem, errorBox(error));
    }
    schedule();
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    filter.status = status.value;
    filter.workflow = workflow.value.trim();
    filter.offset = 0;
    apply();
  });
  status.addEventListener('change', () => form.requestSubmit());
  prev.addEventListener('click', () => { filter.offset = Math.max(0, filter.offset - PAGE); apply(); });
  next.addEventListener('click', () => { filter.offset += PAGE; apply(); });

  await load();
  schedule();
}
