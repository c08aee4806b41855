// The HTTP API client. The key lives in sessionStorage only (gone when the
// tab closes; never a cookie) and goes out as `Authorization: Bearer`.
// Failures become Error objects with .status, .code (and .reason for a
// refused upload); a 401 hands over to the unauthorized handler (main.js
// sends the user to #/login).

const KEY = 'cloacina.key';

export const getKey = () => sessionStorage.getItem(KEY);
export const setKey = (key) => sessionStorage.setItem(KEY, key);
export const clearKey = () => sessionStorage.removeItem(KEY);

let onUnauthorized = () => { location.hash = '#/login'; };
/** main.js decides what a 401 does. */
export function setUnauthorizedHandler(handler) { onUnauthorized = handler; }

/** An API failure. */
export class ApiError extends Error {
  constructor(message, { status = 0, code = 'network_error', reason, body } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.reason = reason;
    this.body = body;
  }
}

/** True for the error of a request aborted on purpose (navigation). */
export const isAbort = (error) => error && error.name === 'AbortError';

/**
 * Builds a path whose interpolated values are URL-encoded:
 * path`/v1/tenants/${tenant}/workflows/${name}`.
 */
export function path(strings, ...values) {
  return strings.reduce((out, s, i) => out + s + (i < values.length ? encodeURIComponent(values[i]) : ''), '');
}

/** A query string from an object, skipping empty values: '?a=1&b=x'. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/**
 * One request. options: json (a body sent as JSON), form (a FormData),
 * signal, key (another key than the stored one: the login check), and
 * quiet401 (a 401 is only thrown, not handed to the handler).
 */
export async function request(method, url, { json, form, signal, key, quiet401 = false } = {}) {
  const headers = { Accept: 'application/json' };
  const bearer = key ?? getKey();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form) {
    body = form; // the browser sets the multipart boundary
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body, signal, credentials: 'omit', cache: 'no-store' });
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new ApiError(`cannot reach the server (${error.message})`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const message = (data && data.error) || `${response.status} ${response.statusText || 'error'}`;
    const error = new ApiError(message, {
      status: response.status,
      code: (data && data.code) || `http_${response.status}`,
      reason: data && data.reason,
      body: data,
    });
    if (response.status === 401 && !quiet401) onUnauthorized(error);
    throw error;
  }
  return data;
}

export const get = (url, options) => request('GET', url, options);
export const post = (url, json, options) => request('POST', url, { ...options, json });
export const del = (url, options) => request('DELETE', url, options);
