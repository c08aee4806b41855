// Overview: server readiness, hosts, workflow packages, running and failed
// executions, computation graphs, each in its own card (one failing
// request does not hide the others).
import { get, path, query } from '../api.js';
import { el, put, errorBox } from '../dom.js';
import { badge, between, stateOf } from '../format.js';
import { session } from '../session.js';

export const title = 'Overview';

function card(testid, heading, href) {
  const body = el('div', { class: 'stat-body' }, el('p', { class: 'loading' }, 'Loading…'));
  const node = el('section', { class: 'card stat', 'data-testid': testid, 'aria-busy': 'true' },
    el('h2', null, href ? el('a', { href }, heading) : heading), body);
  return { node, body };
}

const big = (value, label) => el('p', { class: 'big' }, el('span', { class: 'big-number' }, String(value)), ' ', label);

export async function render({ root, signal }) {
  const t = session.tenant;
  const tenantPath = (tail) => path`/v1/tenants/${t}` + tail;
  const refresh = el('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'refresh' }, 'Refresh');
  const grid = el('div', { class: 'grid' });
  root.append(el('div', { class: 'toolbar' }, el('p', { class: 'muted' }, `Tenant ${t}`), refresh), grid);

  const cards = {
    health: card('overview-health', 'Server'),
    hosts: card('overview-hosts', 'Hosts', '#/hosts'),
    workflows: card('overview-workflows', 'Workflows', '#/workflows'),
    running: card('overview-running', 'Running executions', '#/executions?status=Running'),
    failed: card('overview-failed', 'Failed executions', '#/executions?status=Failed'),
    graphs: card('overview-graphs', 'Computation graphs', '#/graphs'),
  };
  grid.append(...Object.values(cards).map((c) => c.node));

  // Each card: fetch, then draw; a failure is drawn in the card.
  const fill = async (name, load, draw) => {
    const { node, body } = cards[name];
    try {
      const data = await load();
      put(body, draw(data));
    } catch (error) {
      if (error.name === 'AbortError') throw error;
      put(body, errorBox(error));
    } finally {
      node.removeAttribute('aria-busy');
    }
  };

  const load = () => Promise.all([
    // Readiness, not liveness: /health always answers ok. A 503 carries
    // why (database unreachable, crashed graphs) in its body.
    fill('health', () => get('/ready', { signal }).catch((error) => {
      if (error.status === 503 && error.body && error.body.status) return error.body;
      throw error;
    }), (h) => [
      el('p', { class: 'big' }, badge(h.status === 'ready' ? 'live' : 'failed', {}, h.status)),
      h.reason ? el('p', null, h.reason) : null,
      h.crashed_graphs && h.crashed_graphs.length
        ? [el('p', null, 'Crashed computation graphs:'),
          el('ul', { class: 'plain' }, h.crashed_graphs.map((g) => el('li', { class: 'mono' }, g))),
          el('p', null, el('a', { href: '#/graphs' }, 'See the graphs'))]
        : null,
    ]),
    fill('hosts', () => get(tenantPath('/hosts'), { signal }), (list) => {
      const me = list.items.find((h) => h.this_host);
      return [
        big(list.total, list.total === 1 ? 'host' : 'hosts'),
        me ? el('p', null, `This server: version ${me.version ?? '?'}, up ${between(me.started_at)}`) : null,
        el('ul', { class: 'plain' }, list.items.map((h) => el('li', null,
          el('span', { class: 'mono' }, h.address ?? h.id.slice(0, 8)), ` — v${h.version ?? '?'}, up ${between(h.started_at)}`))),
      ];
    }),
    fill('workflows', () => get(tenantPath('/workflows'), { signal }), (list) => {
      // The list has one item per workflow and package version.
      const names = new Set(list.items.map((w) => w.workflow_name)).size;
      const versions = new Map();
      for (const w of list.items) versions.set(`${w.package_name}@${w.version}`, (w.status && w.status.status) || 'unknown');
      const count = (s) => [...versions.values()].filter((status) => status === s).length;
      return [
        big(names, names === 1 ? 'workflow' : 'workflows'),
        el('p', null, `${versions.size} package version${versions.size === 1 ? '' : 's'}`),
        el('p', { class: 'chips' },
          badge('completed', { 'data-count': count('loaded') }, `${count('loaded')} loaded`), ' ',
          badge('failed', { 'data-count': count('failed') }, `${count('failed')} failed`), ' ',
          badge('pending', { 'data-count': count('pending') }, `${count('pending')} pending`)),
        el('p', null, el('a', { href: '#/packages' }, 'Packages')),
      ];
    }),
    fill('running', () => get(tenantPath('/executions') + query({ status: 'running', limit: 1 }), { signal }),
      (list) => big(list.total, 'running')),
    fill('failed', () => get(tenantPath('/executions') + query({ status: 'failed', limit: 1 }), { signal }),
      (list) => big(list.total, 'failed')),
    fill('graphs', () => get('/v1/health/graphs' + query({ tenant: t }), { signal }), (list) => {
      const states = new Map();
      for (const g of list.items) {
        const s = stateOf(g.health && g.health.state);
        states.set(s, (states.get(s) || 0) + 1);
      }
      const paused = list.items.filter((g) => g.paused).length;
      return [
        big(list.total, list.total === 1 ? 'graph' : 'graphs'),
        el('p', { class: 'chips' }, [...states].map(([s, n]) => [badge(s, {}, `${n} ${s}`), ' ']),
          paused ? badge('paused', {}, `${paused} paused`) : null),
      ];
    }),
  ]);

  refresh.addEventListener('click', () => {
    for (const c of Object.values(cards)) c.node.setAttribute('aria-busy', 'true');
    load().catch(() => {});
  });
  await load();
}
