// The operator console: hash router, session (who is signed in, which
// tenant), role-aware chrome. One module per page under pages/.
//
// Stable hooks for browser tests
// ------------------------------
// Page state (on <main id="page">):
//   data-page="<route>"   overview|packages|workflows|workflow|executions|
//                         execution|graphs|admin|hosts|login|not-found|forbidden
//   data-ready="1"        set once the page has rendered its data (or its
//                         error); "0" while loading. Wait on
//                         main#page[data-ready="1"][data-page="..."].
//   data-error="1"        the page's main load failed (an error is shown).
//   page-title            the page's <h1> (focused on every navigation).
// Chrome: nav-overview, nav-packages, nav-workflows, nav-executions,
//   nav-graphs, nav-admin (admin keys only), nav-hosts, tenant-select
//   (god mode and tenant keys), tenant-input + tenant-apply (a global key
//   without god mode types the tenant's name), whoami, logout, skip-link,
//   global-error.
// Login: login-form, login-key, login-submit, login-error, login-notice.
// Overview: overview-health (GET /ready), overview-hosts, overview-workflows,
//   overview-running, overview-failed, overview-graphs, refresh.
// Packages: package-row (data-package, data-version, data-status = load
//   status, data-retired="1" when a newer version is live),
//   package-error, upload-form, upload-file, upload-submit, upload-result
//   (data-state="ok"|"refused"), delete-button, delete-confirm,
//   delete-running (data-count), delete-cancel-running, delete-confirm-submit,
//   delete-keep, delete-result.
// Workflows: workflow-row (data-workflow), workflow-link.
// Workflow detail: dag-node (data-task), task-row (data-task), task-policy,
//   build-error, schedule-row, schedule-next, run-form, run-version,
//   run-context, run-context-error, run-submit, run-error.
// Executions: filter-status, filter-workflow, filter-apply, execution-row
//   (data-id, data-status), execution-link, page-prev, page-next,
//   page-info, refresh-error.
// Execution detail: execution-status (data-state), execution-error,
//   dag-node (data-task, data-state = task state), task-row (data-task,
//   data-state), task-error (data-task), timeline-bar (data-task),
//   event-row (data-seq, data-type), input-context, final-context,
//   cancel-button, cancel-result, live-status (data-state =
//   connecting|live|ended|polling|off).
// Graphs: graph-card (data-graph, data-health, data-paused), graph-node,
//   reactor-pause, reactor-resume, reactor-fire, reactor-result,
//   fire-row, accumulator (data-state).
// Admin: key-row (data-key-id, data-revoked), key-revoke,
//   key-revoke-confirm, key-form, key-name, key-role, key-scope,
//   key-submit, key-created (the plaintext, shown once), key-result,
//   tenant-row (data-tenant), tenant-form, tenant-name, tenant-description,
//   tenant-submit, tenant-result, tenant-remove, tenant-remove-confirm-name,
//   tenant-remove-confirm.
// Hosts: host-row (data-host-id, data-this-host).

import * as api from './api.js';
import { el, put, errorBox } from './dom.js';
import { session, isAdmin, isGod, rememberTenant, rememberedTenant, forgetSession } from './session.js';
import * as overview from './pages/overview.js';
import * as packages from './pages/packages.js';
import * as workflows from './pages/workflows.js';
import * as workflow from './pages/workflow.js';
import * as executions from './pages/executions.js';
import * as execution from './pages/execution.js';
import * as graphs from './pages/graphs.js';
import * as admin from './pages/admin.js';
import * as hosts from './pages/hosts.js';
import * as login from './pages/login.js';

// Path patterns ('name' fixed, ':x' a parameter), the page, the nav item.
const ROUTES = [
  { name: 'overview', pattern: ['overview'], page: overview, nav: 'overview' },
  { name: 'packages', pattern: ['packages'], page: packages, nav: 'packages' },
  { name: 'workflows', pattern: ['workflows'], page: workflows, nav: 'workflows' },
  { name: 'workflow', pattern: ['workflows', ':name'], page: workflow, nav: 'workflows' },
  { name: 'executions', pattern: ['executions'], page: executions, nav: 'executions' },
  { name: 'execution', pattern: ['executions', ':id'], page: execution, nav: 'executions' },
  { name: 'graphs', pattern: ['graphs'], page: graphs, nav: 'graphs' },
  { name: 'admin', pattern: ['admin'], page: admin, nav: 'admin', admin: true },
  { name: 'hosts', pattern: ['hosts'], page: hosts, nav: 'hosts' },
  { name: 'login', pattern: ['login'], page: login, public: true },
];

const NEXT = 'cloacina.next';
const $ = (selector) => document.querySelector(selector);
const main = $('#page');

// The page being shown: aborted and cleaned up when another is.
let current = { controller: new AbortController(), cleanups: [] };
let generation = 0;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const at = raw.indexOf('?');
  const pathPart = at < 0 ? raw : raw.slice(0, at);
  const search = at < 0 ? '' : raw.slice(at + 1);
  let segments;
  try {
    segments = pathPart.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    segments = ['\u0000'];
  }
  return { segments, query: new URLSearchParams(search) };
}

function match(segments) {
  for (const route of ROUTES) {
    if (route.pattern.length !== segments.length) continue;
    const params = {};
    const ok = route.pattern.every((part, i) => {
      if (part.startsWith(':')) {
        params[part.slice(1)] = segments[i];
        return true;
      }
      return part === segments[i];
    });
    if (ok) return { route, params };
  }
  return null;
}

/** Goes to a hash; replace: without a history entry. */
function go(hash, replace = false) {
  if (location.hash === hash) {
    navigate();
  } else if (replace) {
    history.replaceState(null, '', hash);
    navigate();
  } else {
    location.hash = hash;
  }
}

/** Stops the current page's requests, timers and sockets. */
function leave() {
  current.controller.abort();
  for (const cleanup of current.cleanups) {
    try {
      cleanup();
    } catch (error) {
      reportError(error);
    }
  }
  current = { controller: new AbortController(), cleanups: [] };
}

/** Shows the page the hash names. */
async function navigate() {
  const { segments, query } = parseHash();
  if (!segments.length) return go(session.me ? '#/overview' : '#/login', true);
  const found = match(segments);
  leave();
  const token = ++generation;
  main.dataset.ready = '0';
  delete main.dataset.error;

  if (!session.me && !(found && found.route.public)) {
    if (found) sessionStorage.setItem(NEXT, location.hash);
    return go('#/login', true);
  }
  updateChrome(found ? found.route.nav : null);

  let page = found ? found.route.page : null;
  let name = found ? found.route.name : 'not-found';
  if (found && found.route.admin && !isAdmin()) {
    page = null;
    name = 'forbidden';
  }
  main.dataset.page = name;
  const title = page ? (typeof page.title === 'function' ? page.title(found.params) : page.title)
    : name === 'forbidden' ? 'Not permitted' : 'Page not found';
  const heading = el('h1', { id: 'page-title', tabindex: '-1', 'data-testid': 'page-title' }, title);
  const body = el('div', { class: 'page-body' });
  put(main, heading, body);
  document.title = `${title} · Cloacina`;
  heading.focus();

  if (!page) {
    body.append(el('p', null, name === 'forbidden'
      ? 'This key may not open this page (it needs the admin role).'
      : 'Nothing lives at this address. ', el('a', { href: '#/overview' }, 'Go to the overview.')));
    main.dataset.ready = '1';
    return;
  }
  const { signal } = current.controller;
  const cleanups = current.cleanups;
  const ctx = {
    root: body,
    heading,
    params: found.params,
    query,
    signal,
    /** Runs when the user leaves the page (stop timers, close sockets). */
    onLeave: (fn) => cleanups.push(fn),
    setTitle: (text) => {
      put(heading, text);
      document.title = `${text} · Cloacina`;
    },
    /** Rewrites the hash's query without re-rendering (filters, pages). */
    setQuery: (params) => {
      const search = new URLSearchParams(params).toString();
      const base = `#/${segments.map(encodeURIComponent).join('/')}`;
      history.replaceState(null, '', search ? `${base}?${search}` : base);
    },
    app: { signIn, signOut, reloadTenants, go },
    isCurrent: () => token === generation,
  };
  try {
    await page.render(ctx);
  } catch (error) {
    if (api.isAbort(error) || token !== generation) return;
    body.append(errorBox(error, 'page-error'));
    main.dataset.error = '1';
  }
  if (token === generation) main.dataset.ready = '1';
}

// ---- session ----------------------------------------------------------

/** Validates `key` with /v1/auth/me, then keeps it; throws when refused. */
async function signIn(key) {
  const me = await api.get('/v1/auth/me', { key, quiet401: true });
  api.setKey(key);
  session.me = me;
  await reloadTenants();
  const next = sessionStorage.getItem(NEXT);
  sessionStorage.removeItem(NEXT);
  go(next && next !== '#/login' ? next : '#/overview');
}

/** A name the server accepts for a tenant (host/database/src/tenant.rs). */
const TENANT_NAME = /^[a-z][a-z0-9_]{0,47}$/;
function tenantNameProblem(name) {
  if (!name) return 'Enter a tenant name.';
  if (!TENANT_NAME.test(name)) return 'A tenant name is 1 to 48 lower-case letters, digits and _, starting with a letter.';
  if (name.startsWith('pg_')) return 'Names starting with pg_ are reserved.';
  return null;
}

/** A global key without god mode may not list tenants: it names one. */
const typesTenant = () => Boolean(session.me && !session.me.tenant_id && !isGod());

/** The tenants the switcher offers: the key's own, every tenant (god), or typed. */
async function reloadTenants() {
  const me = session.me;
  let tenants;
  if (me.tenant_id) {
    tenants = [me.tenant_id];
  } else if (isGod()) {
    try {
      const list = await api.get('/v1/tenants');
      tenants = list.items.map((tenant) => tenant.name);
    } catch (error) {
      if (error.status === 401) throw error;
      if (error.status !== 403) showGlobalError(error);
      tenants = [];
    }
    if (!tenants.includes('public')) tenants.unshift('public');
  } else {
    // A global key that is not god mode may not list tenants, but may open
    // any of them: the one typed last in this tab, else public.
    const wanted = rememberedTenant();
    tenants = wanted && wanted !== 'public' && !tenantNameProblem(wanted) ? ['public', wanted] : ['public'];
  }
  session.tenants = tenants;
  const wanted = rememberedTenant();
  rememberTenant(tenants.includes(wanted) ? wanted : tenants.includes('public') ? 'public' : tenants[0]);
  fillTenantSelect();
}

function fillTenantSelect() {
  const select = $('#tenant-select');
  const typed = typesTenant();
  select.closest('label').hidden = typed;
  tenantForm.hidden = !typed;
  if (typed) {
    tenantInput.value = session.tenant;
    tenantInput.setCustomValidity('');
  }
  put(select, session.tenants.map((name) => el('option', { value: name, selected: name === session.tenant }, name)));
  select.value = session.tenant;
  select.disabled = session.tenants.length < 2;
}

/** Shows another tenant: a detail page belongs to the old one, so its list instead. */
function switchTenant(name) {
  rememberTenant(name);
  const { segments } = parseHash();
  if (segments.length > 1) go(`#/${segments[0]}`);
  else navigate();
}

// The typed tenant (global keys without god mode), next to the select.
const tenantInput = el('input', {
  id: 'tenant-input', type: 'text', class: 'tenant-input', required: true, autocomplete: 'off',
  spellcheck: 'false', maxlength: '48', size: '12', 'data-testid': 'tenant-input',
});
const tenantForm = el('form', { class: 'tenant-picker', 'aria-label': 'Tenant', hidden: true },
  el('label', { for: 'tenant-input' }, el('span', null, 'Tenant')), tenantInput,
  el('button', { type: 'submit', class: 'btn btn-small', 'data-testid': 'tenant-apply' }, 'Show'));
tenantForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = tenantInput.value.trim();
  const problem = tenantNameProblem(name);
  tenantInput.setCustomValidity(problem || '');
  if (problem) {
    tenantInput.reportValidity();
    return;
  }
  session.tenants = name === 'public' ? ['public'] : ['public', name];
  switchTenant(name);
  fillTenantSelect();
});
tenantInput.addEventListener('input', () => tenantInput.setCustomValidity(''));

function signOut(message) {
  api.clearKey();
  forgetSession();
  login.setNotice(message);
  updateChrome(null);
  go('#/login');
}

/** Shows or hides the signed-in chrome and marks the current nav item. */
function updateChrome(nav) {
  const signedIn = Boolean(session.me);
  for (const node of document.querySelectorAll('.signed-in')) node.hidden = !signedIn;
  $('#nav-admin-item').hidden = !signedIn || !isAdmin();
  for (const link of document.querySelectorAll('#nav a[data-route]')) {
    if (link.dataset.route === nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (signedIn) {
    const me = session.me;
    const scope = me.tenant_id ? `tenant ${me.tenant_id}` : isGod() ? 'god mode' : 'global';
    put($('#whoami'), el('span', { class: 'who-name' }, me.name), ' ', el('span', { class: 'who-role' }, `${me.permissions} · ${scope}`));
  }
}

function showGlobalError(error) {
  const box = $('#global-error');
  put(box, errorBox(error, 'global-error-message'),
    el('button', { type: 'button', class: 'btn btn-small', on: { click: () => { box.hidden = true; } } }, 'Dismiss'));
  box.hidden = false;
}

// ---- start ------------------------------------------------------------

async function boot() {
  api.setUnauthorizedHandler(() => {
    if (session.me || api.getKey()) signOut('The server refused the key (invalid, revoked or expired). Sign in again.');
  });
  $('#logout').addEventListener('click', () => signOut('Signed out.'));
  $('#tenant-select').addEventListener('change', (event) => switchTenant(event.target.value));
  $('#tenant-select').closest('label').after(tenantForm);
  $('#skip-link').addEventListener('click', () => {
    const heading = $('#page-title');
    if (heading) heading.focus();
  });
  window.addEventListener('hashchange', () => navigate());

  const key = api.getKey();
  if (key) {
    try {
      session.me = await api.get('/v1/auth/me', { quiet401: true });
      await reloadTenants();
    } catch (error) {
      if (error.status === 401) {
        signOut('The stored key was refused (invalid or revoked). Sign in again.');
        return;
      }
      // The server could not say who we are: show why, offer to retry.
      main.dataset.page = 'boot-error';
      put(main, el('h1', { id: 'page-title', tabindex: '-1' }, 'Cannot reach the server'),
        errorBox(error, 'page-error'),
        el('button', { type: 'button', class: 'btn', on: { click: () => location.reload() } }, 'Retry'));
      main.dataset.ready = '1';
      main.dataset.error = '1';
      return;
    }
  }
  navigate();
}

boot();
