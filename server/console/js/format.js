// Formatting of times, durations, states and JSON for display.
import { el } from './dom.js';

const ms = (iso) => (iso ? Date.parse(iso) : NaN);

/** A duration in milliseconds as '850 ms', '4.2 s', '3 min 5 s', '2 h 10 min', '3 d 4 h'. */
export function duration(millis) {
  if (!Number.isFinite(millis)) return '—';
  if (millis < 0) millis = 0;
  if (millis < 1000) return `${Math.round(millis)} ms`;
  const s = millis / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** Time between two RFC 3339 stamps (to: now when absent). */
export function between(from, to) {
  const start = ms(from);
  const end = to ? ms(to) : Date.now();
  return duration(end - start);
}

/** A <time> element: local date and time, the exact stamp as tooltip. */
export function time(iso) {
  if (!iso) return '—';
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  return el('time', { datetime: iso, title: iso }, at.toLocaleString());
}

/** The first 8 characters of an id, the whole id as tooltip. */
export function shortId(id) {
  return el('span', { class: 'mono', title: id }, String(id).slice(0, 8));
}

/** A state as lowercase token: 'Running' -> 'running'. */
export const stateOf = (status) => String(status || 'unknown').toLowerCase();

/** A coloured state badge; data-state carries the lowercase state. */
export function badge(status, attrs = {}, text) {
  const state = stateOf(status);
  return el('span', { class: 'badge', 'data-state': state, ...attrs }, text ?? state.replace(/_/g, ' '));
}

/** JSON as pretty text; text that is JSON is parsed first. */
export function pretty(value) {
  if (typeof value === 'string') {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

/** JSON on one line, shortened to `max` characters. */
export function compact(value, max = 160) {
  let text = typeof value === 'string' ? value : JSON.stringify(value);
  if (text === undefined || text === null) return '';
  try {
    text = JSON.stringify(JSON.parse(text));
  } catch { /* not JSON text: shown as is */ }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Yes/No for booleans. */
export const yesNo = (value) => (value ? 'yes' : 'no');

/** A byte count in binary units: '812 B', '4.2 KiB', '13 MiB'. */
export function bytes(count) {
  if (!Number.isFinite(count) || count < 0) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 10 ? 0 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/** A configured span of time, exactly where it is round: '500 ms', '1.5 s', '30 s', '2 min', '1 h 30 min'. */
export function span(millis) {
  if (!Number.isFinite(millis) || millis < 0) return '—';
  if (millis < 1000) return `${millis} ms`;
  if (millis < 60000) return `${+(millis / 1000).toFixed(1)} s`;
  const parts = [];
  let rest = Math.round(millis / 1000);
  for (const [size, unit] of [[86400, 'd'], [3600, 'h'], [60, 'min'], [1, 's']]) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)} ${unit}`);
      rest %= size;
    }
  }
  return parts.slice(0, 2).join(' ');
}

/** How far a stamp is from now: 'in 4 min', '2 h 5 min ago', 'now'. */
export function relative(iso, now = Date.now()) {
  const at = ms(iso);
  if (!Number.isFinite(at)) return '';
  const delta = at - now;
  if (Math.abs(delta) < 1000) return 'now';
  const text = duration(Math.abs(delta)).replace(/^(\d+)\.\d s$/, '$1 s');
  return delta > 0 ? `in ${text}` : `${text} ago`;
}

/**
 * A stamp as relative text with the absolute local time after it:
 * 'in 4 min (12/05/2025, 14:00:00)'. The relative part is a span with
 * data-relative, which refreshRelative() brings up to date.
 */
export function when(iso) {
  if (!iso) return '—';
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  return el('span', { class: 'when' },
    el('span', { 'data-relative': iso }, relative(iso)), ' (', time(iso), ')');
}

/** Updates every data-relative span under `root` to the current time. */
export function refreshRelative(root) {
  const now = Date.now();
  for (const node of root.querySelectorAll('[data-relative]')) {
    node.textContent = relative(node.dataset.relative, now);
  }
}
