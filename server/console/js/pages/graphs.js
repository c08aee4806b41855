// Computation graphs: health, accumulators, reactor, topology, recent
// firings; pause, resume and fire (write role).
import { get, post, path, query, isAbort } from '../api.js';
import { el, put, errorBox, facts, table, busy } from '../dom.js';
import { badge, time, compact, pretty, stateOf, yesNo } from '../format.js';
import { renderDag } from '../dag.js';
import { session, canWrite } from '../session.js';

export const title = 'Computation graphs';

/** What a health value says beyond its state. */
function healthDetail(health) {
  if (!health || typeof health !== 'object') return null;
  switch (health.state) {
    case 'crashed': return `crashed after ${health.restarts ?? '?'} restarts: ${health.error ?? ''}`;
    case 'degraded': return `disconnected: ${(health.disconnected || []).join(', ')}`;
    case 'remote': return health.owner ? `runs on host ${health.owner}` : 'no host owns it right now (taking over)';
    default: return null;
  }
}

export async function render({ root, signal }) {
  const t = session.tenant;
  const tq = query({ tenant: t });
  const writable = canWrite();
  const result = el('p', { 'data-testid': 'reactor-result', 'aria-live': 'polite', tabindex: '-1' });
  const refresh = el('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'refresh' }, 'Refresh');
  const cards = el('div', { class: 'stack' });
  root.append(el('div', { class: 'toolbar' }, el('p', { class: 'muted' }, `Tenant ${t}`), refresh), result, cards);

  async function load() {
    const [graphs, reactors, accumulators] = await Promise.all([
      get('/v1/health/graphs' + tq, { signal }),
      get('/v1/health/reactors' + tq, { signal }),
      get('/v1/health/accumulators' + tq, { signal }),
    ]);
    const reactorOf = new Map(reactors.items.map((r) => [r.name, r]));
    const accumulatorOf = new Map(accumulators.items.map((a) => [`${a.graph}/${a.name}`, a]));
    // Recent firings of every graph, each failure shown in its card.
    const firings = await Promise.all(graphs.items.map((g) =>
      get(path`/v1/health/reactors/${g.reactor ?? g.name}/fires` + query({ limit: 10, tenant: t }), { signal })
        .catch((error) => {
          if (isAbort(error)) throw error;
          return error;
        })));
    if (!graphs.items.length) {
      put(cards, el('p', { class: 'empty' }, 'No computation graph is loaded in this tenant.'));
      return;
    }
    put(cards, graphs.items.map((g, i) => card(g, reactorOf.get(g.reactor ?? g.name), accumulatorOf, firings[i])));
  }

  function card(g, reactor, accumulatorOf, fires) {
    const health = stateOf(g.health && g.health.state);
    const name = g.reactor ?? g.name;
    const actions = writable ? el('div', { class: 'actions' },
      g.paused
        ? action('Resume', 'reactor-resume', () => post(path`/v1/health/reactors/${name}/resume` + tq, undefined, { signal }), () => `Resumed ${name}.`)
        : action('Pause', 'reactor-pause', () => post(path`/v1/health/reactors/${name}/pause` + tq, undefined, { signal }), () => `Paused ${name}.`),
      action('Fire now', 'reactor-fire', () => post(path`/v1/health/reactors/${name}/fire` + tq, { mode: 'force_fire' }, { signal }),
        (answer) => (answer.firing
          ? `Fired ${name}: ${answer.firing.ok ? 'ok' : `failed: ${answer.firing.error ?? ''}`} in ${answer.firing.duration_ms.toFixed(1)} ms.`
          : `Fired ${name}.`), g.paused)) : null;

    const topology = g.topology && g.topology.nodes.length
      ? renderDag(
        [...g.accumulators.map((a) => ({ id: a, kind: 'source' })), ...g.topology.nodes.map((n) => ({ id: n.id }))],
        g.topology.edges.map((e) => ({ from: e.from, to: e.to, label: e.label })),
        { testid: 'graph-node', dataKey: 'node', label: `Topology of ${g.name}` })
      : null;

    return el('section', { class: 'card graph-card', 'data-testid': 'graph-card', 'data-graph': g.name, 'data-health': health, 'data-paused': String(g.paused) },
      el('h2', null, g.name, ' ', badge(health), g.paused ? [' ', badge('paused')] : null),
      healthDetail(g.health) ? el('p', { class: health === 'crashed' ? 'text-error' : 'muted' }, healthDetail(g.health)) : null,
      actions,
      el('div', { class: 'columns' },
        facts([
          ['Package', g.source_package ? `${g.source_package} ${g.package_version ?? ''}` : '—'],
          ['Reaction', `${g.reaction_mode ?? '—'} / ${g.input_strategy ?? '—'}`],
          ['Fires', String(g.fires ?? 0)],
          ['Last fired', time(g.last_fired_at)],
          ['Pending events', g.pending_events != null ? String(g.pending_events) : '—'],
          ['Restarts', g.restarts != null ? String(g.restarts) : '—'],
          ['Starts workflows', g.subscriptions && g.subscriptions.length ? g.subscriptions.join(', ') : '—'],
          reactor ? ['Reactor waits on', reactor.accumulators.join(', ') || '—'] : null,
        ]),
        el('div', null,
          el('h3', null, 'Accumulators'),
          el('ul', { class: 'plain' }, g.accumulators.map((a) => {
            const status = accumulatorOf.get(`${g.name}/${a}`);
            return el('li', { 'data-testid': 'accumulator', 'data-accumulator': a, 'data-state': status ? status.status : 'unknown' },
              el('span', { class: 'mono' }, a), ' ', status ? badge(status.status) : badge('unknown'),
              status && status.kind ? el('small', { class: 'muted' }, ` ${status.kind}`) : null);
          })))),
      topology ? el('details', { class: 'topology' }, el('summary', null, 'Topology'), topology) : null,
      el('h3', null, 'Recent firings'),
      fires instanceof Error ? errorBox(fires) : table({
        caption: `Recent firings of ${g.name}`,
        head: ['Fired', 'Result', 'Duration', 'Manual', 'Events', 'Inputs / outputs'],
        rows: fires.items.map((f) => el('tr', { 'data-testid': 'fire-row', 'data-ok': String(f.ok) },
          el('td', null, time(f.fired_at)),
          el('td', null, f.ok ? badge('completed', {}, 'ok') : [badge('failed'), ' ', el('span', { class: 'text-error' }, f.error ?? '')]),
          el('td', { class: 'num' }, `${f.duration_ms.toFixed(1)} ms`),
          el('td', null, yesNo(f.manual)),
          el('td', { class: 'mono' }, f.first_seq != null ? `${f.first_seq}–${f.last_seq}` : '—'),
          el('td', null, el('details', null, el('summary', null, compact(f.inputs, 60)),
            el('p', null, 'Inputs'), el('pre', null, pretty(f.inputs)),
            el('p', null, 'Outputs'), el('pre', null, pretty(f.outputs)))))),
        empty: 'No firing yet.',
      }));
  }

  // A command button: runs, says what happened, reloads the cards.
  function action(label, testid, run, describe, disabled = false) {
    const button = el('button', {
      type: 'button', class: 'btn btn-small', 'data-testid': testid, disabled,
      title: disabled ? 'A paused reactor does not fire' : undefined,
    }, label);
    button.addEventListener('click', async () => {
      try {
        const answer = await busy(button, `${label}…`, run);
        put(result, el('span', { class: 'text-ok' }, describe(answer)));
      } catch (error) {
        if (isAbort(error)) return;
        put(result, errorBox(error, 'reactor-error'));
      }
      result.focus();
      load().catch((error) => { if (!isAbort(error)) put(cards, errorBox(error)); });
    });
    return button;
  }

  refresh.addEventListener('click', () => {
    busy(refresh, 'Refreshing…', load).catch((error) => { if (!isAbort(error)) put(cards, errorBox(error)); });
  });
  await load();
}
