// Hosts: the processes serving the tenant, with their lease heartbeat,
// running tasks and owned computation graphs.
import { get, path } from '../api.js';
import { el, table } from '../dom.js';
import { badge, between, duration, time } from '../format.js';
import { session } from '../session.js';

export const title = 'Hosts';

// The default lease TTL: a host silent for longer is presumed dead (the
// server does not report its TTL).
const LEASE_TTL_MS = 30000;

export async function render({ root, signal }) {
  const list = await get(path`/v1/tenants/${session.tenant}/hosts`, { signal });
  root.append(
    el('p', { class: 'muted' }, `Tenant ${list.tenant_id}: ${list.total} host${list.total === 1 ? '' : 's'}, oldest first.`),
    table({
      caption: 'Hosts',
      head: ['Host', 'Address', 'Version', 'Up for', 'Heartbeat', 'Running tasks', 'Owned graphs'],
      rows: list.items.map((h) => {
        const late = h.heartbeat_age_ms > LEASE_TTL_MS;
        return el('tr', { 'data-testid': 'host-row', 'data-host-id': h.id, 'data-this-host': String(h.this_host) },
          el('th', { scope: 'row' }, el('span', { class: 'mono', title: h.id }, h.id.slice(0, 8)),
            h.this_host ? [' ', badge('live', { title: 'The server answering this page' }, 'this server')] : null),
          el('td', { class: 'mono' }, h.address ?? '— (embedded)'),
          el('td', { class: 'mono' }, h.version ?? '?'),
          el('td', null, between(h.started_at), el('br'), el('small', { class: 'muted' }, 'since ', time(h.started_at))),
          el('td', null, badge(late ? 'failed' : 'completed', { title: h.last_heartbeat }, late ? 'late' : 'ok'), ` ${duration(h.heartbeat_age_ms)} ago`),
          el('td', { class: 'num' }, String(h.running_tasks)),
          el('td', { class: 'mono' }, h.owned_graphs.join(', ') || '—'));
      }),
      empty: 'No host has a lease in this tenant.',
    }),
  );
}
