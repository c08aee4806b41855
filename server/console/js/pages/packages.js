// Packages: every registered package version with its load status,
// workflows, signer, size, artifacts and source; upload (verified by the
// server) and delete (write role).
import { get, request, del, path, query, isAbort } from '../api.js';
import { el, put, errorBox, section, table, busy } from '../dom.js';
import { badge, time, shortId, bytes } from '../format.js';
import { session, canWrite } from '../session.js';

export const title = 'Packages';

// What each refusal reason means for the operator.
const REASONS = {
  invalid_package: 'Not a usable package: not an archive, refused by the safe reader, or no valid manifest. The same bytes will never be accepted.',
  verification_failed: 'Not authentic: unsigned where a signature is required, a bad signature, an untrusted or revoked signing key, or a file that differs from the manifest.',
  conflict: 'The registry holds something else under this name: other bytes for the same version, or a workflow another package declares.',
  unavailable: 'The server could not decide now (database unreachable or busy). Try the same file again shortly.',
  internal: 'The server failed in a way retrying will not fix; check its logs.',
};

/** Compares dotted versions numerically where they are numbers. */
export function compareVersions(a, b) {
  const pa = String(a).split(/[.+-]/);
  const pb = String(b).split(/[.+-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i += 1) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const nx = Number(x);
    const ny = Number(y);
    const c = x !== '' && y !== '' && !Number.isNaN(nx) && !Number.isNaN(ny) ? nx - ny : x.localeCompare(y);
    if (c) return c;
  }
  return 0;
}

/** The workflow list grouped into package versions, newest version first. */
export function packageVersions(items) {
  const byKey = new Map();
  for (const w of items) {
    const key = `${w.package_name}@${w.version}`;
    if (!byKey.has(key)) {
      byKey.set(key, { ...w, workflows: [], live: [] });
    }
    const entry = byKey.get(key);
    entry.workflows.push(w.workflow_name);
    if (w.live) entry.live.push(w.workflow_name);
  }
  return [...byKey.values()].sort((a, b) =>
    a.package_name.localeCompare(b.package_name) || compareVersions(b.version, a.version));
}

/** The newest version of each package that new executions start on. */
function liveVersions(versions) {
  const newest = new Map();
  for (const p of versions) {
    if (!p.live.length) continue;
    const seen = newest.get(p.package_name);
    if (seen === undefined || compareVersions(p.version, seen) > 0) newest.set(p.package_name, p.version);
  }
  return newest;
}

/** Where a package version came from: an upload or a drop directory. */
function source(text) {
  if (!text) return '—';
  if (text.startsWith('drop:')) {
    const where = text.slice('drop:'.length);
    return [el('span', null, 'drop directory'), el('br'), el('small', { class: 'mono wrap', title: where }, where)];
  }
  return text;
}

/** `native:<triple>` and `wasm` as a list. */
function artifacts(list) {
  if (!list || !list.length) return '—';
  return el('ul', { class: 'plain' }, list.map((a) => el('li', null, a.startsWith('native:')
    ? ['native ', el('small', { class: 'mono' }, a.slice('native:'.length))]
    : el('span', { class: 'mono' }, a))));
}

export async function render({ root, signal, onLeave }) {
  const t = session.tenant;
  const writable = canWrite();
  const listBox = el('div');
  const deleteResult = el('div', { 'aria-live': 'polite' });
  let timer = null;
  // The data the table shows (JSON): an unchanged answer is not redrawn.
  let shown = null;
  onLeave(() => clearTimeout(timer));

  if (writable) root.append(uploadForm(t, () => load().catch(() => {})));
  root.append(section('Registered package versions', null, deleteResult, listBox));

  // While a version is pending the list is looked at again every 2 s; not
  // while a delete confirmation is open (its row would be lost).
  function scheduleReload() {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (listBox.querySelector('.confirm-row')) scheduleReload();
      // A failed look (shown in place of the list) is tried again.
      else load().catch(() => { if (!signal.aborted) scheduleReload(); });
    }, 2000);
  }

  // The first load's failure is the page's (shown by the router); later
  // ones are shown in place of the list.
  async function load(first = false) {
    clearTimeout(timer);
    let list;
    try {
      list = await get(path`/v1/tenants/${t}/workflows`, { signal });
    } catch (error) {
      if (!first && !isAbort(error)) {
        shown = null;
        put(listBox, errorBox(error));
      }
      throw error;
    }
    const versions = packageVersions(list.items);
    const key = JSON.stringify(list.items);
    if (key !== shown) {
      shown = key;
      const live = liveVersions(versions);
      put(listBox, table({
        caption: 'Registered package versions',
        head: ['Package', 'Version', 'Workflows', 'Status', 'Signer', 'Size', 'Artifacts', 'Source', 'Uploaded', writable ? 'Actions' : null].filter(Boolean),
        rows: versions.map((p) => row(p, live)),
        testid: 'packages',
        empty: 'No package is registered in this tenant yet.',
      }));
    }
    // Loading happens in the background: look again while any is pending.
    if (versions.some((p) => p.status && p.status.status === 'pending')) scheduleReload();
  }

  function row(p, live) {
    const status = p.status || { status: 'unknown' };
    const facts = p.package;
    // Not live while a newer version of the package is: kept for the
    // executions that started on it, no longer used for new ones.
    const newest = live.get(p.package_name);
    const retired = !p.live.length && newest !== undefined && compareVersions(newest, p.version) > 0;
    const cells = [
      el('th', { scope: 'row' }, p.package_name),
      el('td', { class: 'mono' }, p.version, p.live.length ? [' ', badge('live', { title: `new executions of ${p.live.join(', ')} start on this version` }, 'live')] : null),
      el('td', null, el('ul', { class: 'plain' }, p.workflows.map((w) => el('li', null, el('a', { href: `#/workflows/${encodeURIComponent(w)}` }, w))))),
      el('td', null,
        retired
          ? [badge('retired', { title: `version ${newest} is live: new executions start there` }), ' ', el('small', { class: 'muted' }, `(${status.status})`)]
          : badge(status.status),
        status.error ? el('pre', { class: 'error-text', 'data-testid': 'package-error' }, status.error) : null),
      el('td', null, !facts ? '—' : facts.signer_key_id
        ? [
            facts.signer_name ? el('div', { 'data-testid': 'signer-name' }, facts.signer_name) : null,
            el('small', { class: 'mono', title: `signed by key ${facts.signer_key_id}` }, facts.signer_key_id),
          ]
        : el('span', { class: 'muted' }, 'unsigned')),
      el('td', { class: 'num' }, facts ? el('span', { title: `${facts.size_bytes} bytes` }, bytes(facts.size_bytes)) : '—'),
      el('td', null, facts ? artifacts(facts.artifacts) : '—'),
      el('td', null, facts ? source(facts.source) : '—'),
      el('td', null, time(p.created_at), el('br'), el('small', { class: 'muted' }, 'id ', shortId(p.id))),
    ];
    const tr = el('tr', {
      'data-testid': 'package-row', 'data-package': p.package_name, 'data-version': p.version, 'data-status': status.status,
      'data-retired': retired ? '1' : null,
    }, cells);
    if (writable) {
      const button = el('button', {
        type: 'button', class: 'btn btn-small btn-danger', 'data-testid': 'delete-button', 'aria-expanded': 'false',
        'aria-label': `Delete ${p.package_name} ${p.version}…`,
      }, 'Delete…');
      button.addEventListener('click', () => confirmDelete(tr, p, button));
      tr.append(el('td', null, button));
    }
    return tr;
  }

  // A confirmation row under the package: the executions still running on
  // that version, whether to cancel them, then delete.
  async function confirmDelete(tr, p, button) {
    const existing = tr.nextElementSibling;
    if (existing && existing.classList.contains('confirm-row')) {
      existing.remove();
      button.setAttribute('aria-expanded', 'false');
      button.removeAttribute('aria-controls');
      return;
    }
    const panelId = `delete-confirm-${p.id}`;
    const panel = el('div', { id: panelId, class: 'confirm', 'data-testid': 'delete-confirm', role: 'group', 'aria-label': `Delete ${p.package_name} ${p.version}` },
      el('p', { class: 'loading' }, 'Looking for running executions…'));
    const confirmRow = el('tr', { class: 'confirm-row' }, el('td', { colspan: tr.children.length }, panel));
    tr.after(confirmRow);
    button.setAttribute('aria-controls', panelId);
    button.setAttribute('aria-expanded', 'true');
    let running = [];
    try {
      const lists = await Promise.all(p.workflows.map((w) =>
        get(path`/v1/tenants/${t}/executions` + query({ workflow: w, status: 'running', limit: 1000 }), { signal })));
      running = lists.flatMap((l) => l.items).filter((e) => e.package_name === p.package_name && e.package_version === p.version);
    } catch (error) {
      if (isAbort(error)) return;
      put(panel, errorBox(error));
      return;
    }
    const cancel = el('input', { type: 'checkbox', id: `cancel-${p.id}`, 'data-testid': 'delete-cancel-running' });
    const submit = el('button', { type: 'button', class: 'btn btn-danger', 'data-testid': 'delete-confirm-submit' }, `Delete ${p.package_name} ${p.version}`);
    const keep = el('button', { type: 'button', class: 'btn', 'data-testid': 'delete-keep' }, 'Keep it');
    const outcome = el('div', { 'aria-live': 'polite' });
    put(panel,
      el('p', { 'data-testid': 'delete-running', 'data-count': running.length },
        running.length
          ? `${running.length} execution${running.length === 1 ? '' : 's'} still running on this version:`
          : 'No execution is running on this version.'),
      running.length ? el('ul', { class: 'plain' }, running.map((e) => el('li', null,
        el('a', { href: `#/executions/${encodeURIComponent(e.id)}` }, shortId(e.id)), ` ${e.workflow_name}, started `, time(e.started_at)))) : null,
      running.length ? el('p', null, cancel, ' ', el('label', { for: cancel.id }, 'Cancel them (otherwise they finish on this version)')) : null,
      el('div', { class: 'actions' }, submit, keep),
      outcome);
    keep.addEventListener('click', () => {
      confirmRow.remove();
      button.setAttribute('aria-expanded', 'false');
      button.removeAttribute('aria-controls');
      button.focus();
    });
    submit.addEventListener('click', async () => {
      try {
        const done = await busy(submit, 'Deleting…', () =>
          del(path`/v1/tenants/${t}/workflows/${p.package_name}/${p.version}` + (cancel.checked ? '?cancel=true' : ''), { signal }));
        const still = done.running_executions.length;
        put(deleteResult, el('p', { class: 'alert alert-ok', role: 'status', 'data-testid': 'delete-result' },
          done.was_registered ? `Deleted ${done.package_name} ${done.version}.` : `${done.package_name} ${done.version} was not registered.`,
          still ? (done.cancelled ? ` ${still} running execution(s) were cancelled.` : ` ${still} execution(s) still running finish on it.`) : ''));
      } catch (error) {
        if (!isAbort(error)) put(outcome, errorBox(error, 'delete-error'));
        return;
      }
      // Done: the confirmation goes, the list shows what is left.
      confirmRow.remove();
      button.setAttribute('aria-expanded', 'false');
      button.removeAttribute('aria-controls');
      load().catch(() => {});
    });
    submit.focus();
  }

  await load(true);
}

/** The upload form: multipart field `file`; shows the verification outcome. */
function uploadForm(t, reload) {
  const file = el('input', { type: 'file', id: 'upload-file', name: 'file', accept: '.cloacina', required: true, 'data-testid': 'upload-file' });
  const submit = el('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'upload-submit' }, 'Upload and verify');
  const result = el('div', { 'data-testid': 'upload-result', 'aria-live': 'polite' });
  const form = el('form', { class: 'form inline-form', 'data-testid': 'upload-form' },
    el('label', { for: 'upload-file' }, 'Package file (.cloacina)'), file, submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!file.files.length) {
      result.dataset.state = 'refused';
      put(result, errorBox(new Error('Choose a package file first.'), 'upload-error'));
      return;
    }
    const body = new FormData();
    body.append('file', file.files[0]);
    delete result.dataset.state;
    put(result, el('p', { class: 'loading' }, `Uploading ${file.files[0].name}…`));
    try {
      const done = await busy(submit, 'Verifying…', () => request('POST', path`/v1/tenants/${t}/workflows`, { form: body }));
      result.dataset.state = 'ok';
      put(result, el('div', { class: 'alert alert-ok', role: 'status' },
        el('strong', null, done.created ? 'Verified and registered: ' : 'Already registered (the same bytes): '),
        `${done.package_name} ${done.version}`, ' ', el('small', { class: 'muted' }, 'package id ', el('span', { class: 'mono' }, done.package_id)),
        el('p', null, 'The hosts load it in the background; its status shows in the list.')));
      form.reset();
      await reload();
    } catch (error) {
      if (isAbort(error)) return;
      result.dataset.state = 'refused';
      result.dataset.reason = error.reason || '';
      put(result, el('div', { class: 'alert alert-error', role: 'alert' },
        el('p', null, el('strong', null, 'Refused: '), error.message),
        el('p', null, 'Code ', el('code', null, error.code),
          error.reason ? [', reason ', el('code', { 'data-testid': 'upload-reason' }, error.reason)] : null),
        error.reason && REASONS[error.reason] ? el('p', null, REASONS[error.reason]) : null));
    }
  });
  return section('Upload a package', null, form, result);
}
