// Building elements without HTML strings: every string child becomes a
// text node, every attribute is set with setAttribute, so server data is
// escaped by construction. Never use innerHTML with data.

const SVG_NS = 'http://www.w3.org/2000/svg';

// Properties set as properties (they reflect state the attribute does not).
const PROPERTIES = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'multiple', 'readOnly']);

function apply(node, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'on') {
      for (const [type, handler] of Object.entries(value)) node.addEventListener(type, handler);
    } else if (name === 'class') {
      node.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    } else if (name === 'style') {
      // CSP forbids style attributes; CSSOM properties are allowed.
      for (const [property, v] of Object.entries(value)) node.style.setProperty(property, v);
    } else if (PROPERTIES.has(name) && !(node instanceof SVGElement)) {
      node[name] = value;
    } else {
      node.setAttribute(name, value === true ? '' : String(value));
    }
  }
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** el('a', {href: '#/x', class: 'btn', on: {click}}, 'text', child, [more]) */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  apply(node, attrs);
  append(node, children);
  return node;
}

/** The same for SVG elements. */
export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  apply(node, attrs);
  append(node, children);
  return node;
}

/** Replaces a node's children. */
export function put(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** A visible error (role=alert): the message and, when known, its code. */
export function errorBox(error, testid = 'error') {
  const code = error && error.code ? el('code', null, error.code) : null;
  return el('div', { class: 'alert alert-error', role: 'alert', 'data-testid': testid },
    el('strong', null, 'Error: '), error && error.message ? error.message : String(error),
    code ? [' ', code] : null);
}

/** A short informational note. */
export function note(text, testid) {
  return el('p', { class: 'note', 'data-testid': testid }, text);
}

/** A section with a heading (h2) and content. */
export function section(title, attrs, ...children) {
  return el('section', { class: 'card', ...attrs }, el('h2', null, title), ...children);
}

/**
 * A table that scrolls sideways inside its own box on narrow screens.
 * head: column titles; rows: <tr> elements. caption is read by screen readers.
 */
export function table({ caption, head, rows, testid, empty = 'Nothing yet.' }) {
  if (!rows.length) return el('p', { class: 'empty', 'data-testid': testid ? `${testid}-empty` : undefined }, empty);
  return el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption },
    el('table', { 'data-testid': testid },
      el('caption', { class: 'visually-hidden' }, caption),
      el('thead', null, el('tr', null, head.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', null, rows)));
}

/** A definition list from [term, value] pairs (values may be nodes). */
export function facts(pairs, attrs) {
  return el('dl', { class: 'facts', ...attrs },
    pairs.filter(Boolean).map(([term, value]) => [el('dt', null, term), el('dd', null, value ?? '—')]));
}

/** A button showing `busy` text while `action` runs; resolves with its result. */
export async function busy(button, text, action) {
  const original = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  button.textContent = text;
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = original;
  }
}
