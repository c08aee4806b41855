// Workflows: one row per workflow name, with the version new executions
// start on and every registered version.
import { get, path } from '../api.js';
import { el, table } from '../dom.js';
import { badge } from '../format.js';
import { session } from '../session.js';
import { compareVersions } from './packages.js';

export const title = 'Workflows';

export async function render({ root, signal }) {
  const list = await get(path`/v1/tenants/${session.tenant}/workflows`, { signal });
  const byName = new Map();
  for (const w of list.items) {
    if (!byName.has(w.workflow_name)) byName.set(w.workflow_name, []);
    byName.get(w.workflow_name).push(w);
  }
  const rows = [...byName.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, versions]) => {
    versions.sort((a, b) => compareVersions(b.version, a.version));
    // The live version, else the highest.
    const shown = versions.find((v) => v.live) || versions[0];
    const status = (shown.status && shown.status.status) || 'unknown';
    return el('tr', { 'data-testid': 'workflow-row', 'data-workflow': name, 'data-status': status },
      el('th', { scope: 'row' }, el('a', { href: `#/workflows/${encodeURIComponent(name)}`, 'data-testid': 'workflow-link' }, name)),
      el('td', null, shown.description ?? ''),
      el('td', null, shown.package_name),
      el('td', { class: 'mono' }, shown.version, shown.live ? [' ', badge('live')] : null),
      el('td', null, badge(status)),
      el('td', { class: 'num' }, String(shown.tasks.length)),
      el('td', { class: 'mono' }, versions.map((v) => v.version).join(', ')));
  });
  root.append(table({
    caption: 'Workflows',
    head: ['Workflow', 'Description', 'Package', 'Version', 'Status', 'Tasks', 'All versions'],
    rows,
    testid: 'workflows',
    empty: 'No workflow is registered in this tenant yet. Upload a package on the Packages page.',
  }));
}
