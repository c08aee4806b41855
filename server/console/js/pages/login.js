// Sign in with an API key: checked with GET /v1/auth/me, then kept in
// sessionStorage (main.js signIn).
import { el, errorBox, busy } from '../dom.js';

export const title = 'Sign in';

// A message for the next render (signed out, key refused).
let notice = null;
export function setNotice(text) { notice = text; }

export async function render({ root, app }) {
  const input = el('input', {
    id: 'login-key', type: 'password', name: 'key', required: true, autocomplete: 'off',
    spellcheck: 'false', 'data-testid': 'login-key', 'aria-describedby': 'login-help',
  });
  const submit = el('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'login-submit' }, 'Sign in');
  // Its errors are role=alert (errorBox): announced without aria-live here.
  const result = el('div');
  const form = el('form', { class: 'card form login', 'data-testid': 'login-form', novalidate: true },
    el('label', { for: 'login-key' }, 'API key'),
    input,
    el('p', { id: 'login-help', class: 'hint' },
      'The key stays in this browser tab (sessionStorage) and is sent only to this server.'),
    el('div', { class: 'actions' }, submit),
    result);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    result.replaceChildren();
    const key = input.value.trim();
    if (!key) {
      result.append(errorBox(new Error('Enter an API key.'), 'login-error'));
      input.focus();
      return;
    }
    try {
      await busy(submit, 'Checking…', () => app.signIn(key));
    } catch (error) {
      const shown = error.status === 401 ? Object.assign(new Error('The server refused this key (unknown or revoked).'), { code: error.code }) : error;
      result.append(errorBox(shown, 'login-error'));
      input.focus();
      input.select();
    }
  });
  if (notice) {
    root.append(el('p', { class: 'alert alert-info', role: 'status', 'data-testid': 'login-notice' }, notice));
    notice = null;
  }
  root.append(form);
}
