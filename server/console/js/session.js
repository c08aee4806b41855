// Who is signed in and which tenant is shown: filled by main.js, read by
// the pages.

const TENANT = 'cloacina.tenant';

export const session = {
  /** GET /v1/auth/me: {id, name, permissions, tenant_id, is_admin, created_at, revoked}. */
  me: null,
  /** Tenants offered by the switcher. */
  tenants: [],
  /** The tenant the pages show. */
  tenant: 'public',
};

/** God mode: every tenant, and tenants themselves. */
export const isGod = () => Boolean(session.me && session.me.is_admin);
/** May create, change and delete (write or admin role). */
export const canWrite = () => isGod() || ['write', 'admin'].includes(session.me && session.me.permissions);
/** May manage keys (admin role). */
export const isAdmin = () => isGod() || (session.me && session.me.permissions === 'admin');

export function rememberTenant(name) {
  session.tenant = name;
  sessionStorage.setItem(TENANT, name);
}

export const rememberedTenant = () => sessionStorage.getItem(TENANT);

export function forgetSession() {
  session.me = null;
  session.tenants = [];
  session.tenant = 'public';
  sessionStorage.removeItem(TENANT);
}
