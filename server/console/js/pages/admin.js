// Keys & tenants (admin keys): API keys (list, create: the plaintext is
// shown once, revoke) and, in god mode, tenants (list, create, remove).
import { get, post, del, path, isAbort } from '../api.js';
import { el, put, errorBox, section, table, busy } from '../dom.js';
import { badge, time, shortId } from '../format.js';
import { session, isGod } from '../session.js';

export const title = 'Keys & tenants';

export async function render({ root, signal, app }) {
  const god = isGod();
  const me = session.me;
  const keysBox = el('div');
  const keysResult = el('div', { 'aria-live': 'polite' });
  // The plaintext of a key just created: kept until the page is left.
  const createdBox = el('div', { 'aria-live': 'polite' });
  const tenantsBox = el('div');
  const tenantsResult = el('div', { 'aria-live': 'polite' });

  root.append(section('API keys', null, keyForm(), createdBox, keysResult, keysBox));
  if (god) root.append(section('Tenants', null, tenantForm(), tenantsResult, tenantsBox));

  // ---- keys ----
  async function loadKeys() {
    const list = await get('/v1/auth/keys', { signal });
    const keys = [...list.items].sort((a, b) =>
      (a.tenant_id ?? '').localeCompare(b.tenant_id ?? '') || a.name.localeCompare(b.name));
    put(keysBox, table({
      caption: 'API keys',
      head: ['Name', 'Id', 'Role', 'Scope', 'Created', 'State', 'Actions'],
      rows: keys.map(keyRow),
      testid: 'keys',
      empty: 'No key.',
    }));
  }

  function keyRow(k) {
    const revoke = k.revoked ? null : el('button', { type: 'button', class: 'btn btn-small btn-danger', 'data-testid': 'key-revoke' }, 'Revoke…');
    const tr = el('tr', { 'data-testid': 'key-row', 'data-key-id': k.id, 'data-revoked': String(k.revoked) },
      el('th', { scope: 'row' }, k.name, k.id === me.id ? [' ', el('small', { class: 'muted' }, '(this key)')] : null),
      el('td', null, shortId(k.id)),
      el('td', null, k.permissions, k.is_admin ? [' ', badge('god', {}, 'god mode')] : null),
      el('td', null, k.tenant_id ? `tenant ${k.tenant_id}` : 'global'),
      el('td', null, time(k.created_at)),
      el('td', null, k.revoked ? badge('cancelled', {}, 'revoked') : badge('completed', {}, 'active')),
      el('td', null, revoke));
    if (revoke) {
      revoke.addEventListener('click', () => {
        const cell = revoke.parentElement;
        const confirm = el('button', { type: 'button', class: 'btn btn-small btn-danger', 'data-testid': 'key-revoke-confirm' }, 'Revoke now');
        const keep = el('button', { type: 'button', class: 'btn btn-small' }, 'Keep');
        put(cell, el('span', { class: 'confirm-inline', role: 'group', 'aria-label': `Revoke ${k.name}` },
          k.id === me.id ? 'This is the key you are signed in with. ' : '', 'It stops working at once. ', confirm, ' ', keep));
        keep.addEventListener('click', () => { put(cell, revoke); revoke.focus(); });
        confirm.addEventListener('click', async () => {
          try {
            await busy(confirm, 'Revoking…', () => del(path`/v1/auth/keys/${k.id}`, { signal }));
          } catch (error) {
            if (!isAbort(error)) put(keysResult, errorBox(error, 'key-error'));
            return;
          }
          put(keysResult, el('p', { class: 'alert alert-ok', role: 'status', 'data-testid': 'key-result' }, `Revoked ${k.name}.`));
          // Our own key: the next request is refused and signs us out.
          loadKeys().catch((error) => { if (!isAbort(error)) put(keysBox, errorBox(error)); });
        });
        confirm.focus();
      });
    }
    return tr;
  }

  function keyForm() {
    const name = el('input', { id: 'key-name', required: true, maxlength: 200, autocomplete: 'off', 'data-testid': 'key-name' });
    const role = el('select', { id: 'key-role', 'data-testid': 'key-role' },
      ['read', 'write', 'admin'].map((r) => el('option', { value: r }, r)));
    // God mode picks the scope; other keys create keys in their own.
    const scope = god
      ? el('select', { id: 'key-scope', 'data-testid': 'key-scope' },
        el('option', { value: '' }, 'global (every tenant)'),
        session.tenants.map((t) => el('option', { value: t, selected: t === session.tenant }, `tenant ${t}`)))
      : null;
    const submit = el('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'key-submit' }, 'Create key');
    const form = el('form', { class: 'form inline-form', 'data-testid': 'key-form' },
      el('label', { for: 'key-name' }, 'Name'), name,
      el('label', { for: 'key-role' }, 'Role'), role,
      scope ? [el('label', { for: 'key-scope' }, 'Scope'), scope]
        : el('p', { class: 'muted' }, `Scope: ${me.tenant_id ? `tenant ${me.tenant_id}` : 'global'}`),
      submit);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const body = { name: name.value.trim(), role: role.value };
      if (!body.name) {
        put(keysResult, errorBox(new Error('A key needs a name.'), 'key-error'));
        name.focus();
        return;
      }
      const url = scope && scope.value ? path`/v1/tenants/${scope.value}/keys` : '/v1/auth/keys';
      try {
        const created = await busy(submit, 'Creating…', () => post(url, body, { signal }));
        const plaintext = el('code', { class: 'secret', 'data-testid': 'key-created' }, created.key);
        const copy = el('button', { type: 'button', class: 'btn btn-small' }, 'Copy');
        const copied = el('span', { 'aria-live': 'polite' });
        copy.addEventListener('click', async () => {
          try {
            await navigator.clipboard.writeText(created.key);
            copied.textContent = ' Copied.';
          } catch (error) {
            copied.textContent = ` Cannot copy here (${error.message}); select the text instead.`;
          }
        });
        keysResult.replaceChildren();
        put(createdBox, el('div', { class: 'alert alert-ok', role: 'status' },
          el('p', null, el('strong', null, `Key “${created.name}” created`), ` (${created.permissions}, ${created.tenant_id ? `tenant ${created.tenant_id}` : 'global'}).`),
          el('p', null, 'Copy it now: it is shown only this once.'),
          el('p', null, plaintext, ' ', copy, copied)));
        form.reset();
        loadKeys().catch((error) => { if (!isAbort(error)) put(keysBox, errorBox(error)); });
      } catch (error) {
        if (!isAbort(error)) put(keysResult, errorBox(error, 'key-error'));
      }
    });
    return form;
  }

  // ---- tenants (god mode) ----
  async function loadTenants() {
    const list = await get('/v1/tenants', { signal });
    put(tenantsBox, table({
      caption: 'Tenants',
      head: ['Tenant', 'Actions'],
      rows: list.items.map(tenantRow),
      testid: 'tenants',
    }));
  }

  function tenantRow(t) {
    const remove = t.name === 'public' ? el('span', { class: 'muted' }, 'cannot be removed')
      : el('button', { type: 'button', class: 'btn btn-small btn-danger', 'data-testid': 'tenant-remove' }, 'Remove…');
    const tr = el('tr', { 'data-testid': 'tenant-row', 'data-tenant': t.name },
      el('th', { scope: 'row', class: 'mono' }, t.name), el('td', null, remove));
    if (remove instanceof HTMLButtonElement) {
      remove.addEventListener('click', () => {
        const cell = remove.parentElement;
        const typed = el('input', { id: `remove-${t.name}`, autocomplete: 'off', 'data-testid': 'tenant-remove-confirm-name' });
        const confirm = el('button', { type: 'button', class: 'btn btn-small btn-danger', disabled: true, 'data-testid': 'tenant-remove-confirm' }, 'Remove tenant and its data');
        const keep = el('button', { type: 'button', class: 'btn btn-small' }, 'Keep');
        typed.addEventListener('input', () => { confirm.disabled = typed.value !== t.name; });
        put(cell, el('div', { class: 'confirm', role: 'group', 'aria-label': `Remove tenant ${t.name}` },
          el('p', null, 'This revokes the tenant’s keys and drops its data. '),
          el('label', { for: typed.id }, `Type “${t.name}” to confirm`), ' ', typed, ' ', confirm, ' ', keep));
        keep.addEventListener('click', () => { put(cell, remove); remove.focus(); });
        confirm.addEventListener('click', async () => {
          let removed;
          try {
            removed = await busy(confirm, 'Removing…', () => del(path`/v1/tenants/${t.name}`, { signal }));
          } catch (error) {
            if (!isAbort(error)) put(tenantsResult, errorBox(error, 'tenant-error'));
            return;
          }
          put(tenantsResult, el('p', { class: 'alert alert-ok', role: 'status', 'data-testid': 'tenant-result' },
            `Removed tenant ${removed.schema_name}; ${removed.revoked_keys} key(s) revoked.`));
          await afterTenantChange();
        });
        typed.focus();
      });
    }
    return tr;
  }

  function tenantForm() {
    const name = el('input', { id: 'tenant-name', required: true, autocomplete: 'off', 'data-testid': 'tenant-name' });
    const description = el('input', { id: 'tenant-description', autocomplete: 'off', 'data-testid': 'tenant-description' });
    const submit = el('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'tenant-submit' }, 'Create tenant');
    const form = el('form', { class: 'form inline-form', 'data-testid': 'tenant-form' },
      el('label', { for: 'tenant-name' }, 'Name'), name,
      el('label', { for: 'tenant-description' }, 'Description'), description,
      submit);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const body = { name: name.value.trim() };
      if (description.value.trim()) body.description = description.value.trim();
      if (!body.name) {
        put(tenantsResult, errorBox(new Error('A tenant needs a name.'), 'tenant-error'));
        name.focus();
        return;
      }
      try {
        const created = await busy(submit, 'Creating…', () => post('/v1/tenants', body, { signal }));
        put(tenantsResult, el('p', { class: 'alert alert-ok', role: 'status', 'data-testid': 'tenant-result' },
          `Created tenant ${created.name} (database login ${created.username}).`));
        form.reset();
      } catch (error) {
        if (!isAbort(error)) put(tenantsResult, errorBox(error, 'tenant-error'));
        return;
      }
      await afterTenantChange();
    });
    return form;
  }

  // The switcher and both lists follow a tenant created or removed.
  async function afterTenantChange() {
    try {
      await Promise.all([app.reloadTenants(), loadTenants(), loadKeys()]);
    } catch (error) {
      if (!isAbort(error)) put(tenantsResult, errorBox(error));
    }
  }

  await Promise.all([loadKeys(), god ? loadTenants() : null]);
}
