// Draws a directed graph as SVG, laid out by dagre (vendor/dagre.js, an ES
// module). Used for workflow task graphs (nodes carry data-task and
// data-state) and computation graph topologies.
import { graphlib, layout } from '../vendor/dagre.js';
import { el, svg } from './dom.js';

// Must match `.dag text` in app.css: node sizes come from measured labels.
const FONT = '600 13px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const LABEL_FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const NODE_HEIGHT = 36;
let measure;
let ids = 0;

function textWidth(text, font = FONT) {
  measure ??= document.createElement('canvas').getContext('2d');
  if (!measure) return text.length * 8;
  measure.font = font;
  return measure.measureText(text).width;
}

const nodeTitle = (node, state) => (state ? `${node.label ?? node.id}: ${state}` : node.label ?? node.id);

/**
 * nodes: [{id, label?, state?, kind?}]; edges: [{from, to, label?}].
 * options.testid names each node (data-testid), options.dataKey its data
 * attribute holding the id (data-task by default), options.label the
 * graph's accessible name. Edges to ids not among the nodes add a node of
 * kind 'external'. Returns a scrollable box holding the SVG.
 */
export function renderDag(nodes, edges, { testid = 'dag-node', dataKey = 'task', label = 'Graph', rankdir = 'LR' } = {}) {
  if (!nodes.length) return el('p', { class: 'empty' }, 'No nodes to draw.');
  const g = new graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir, nodesep: 22, ranksep: 46, edgesep: 12, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  const all = new Map(nodes.map((node) => [node.id, node]));
  for (const edge of edges) {
    for (const end of [edge.from, edge.to]) {
      if (!all.has(end)) all.set(end, { id: end, kind: 'external' });
    }
  }
  for (const node of all.values()) {
    const width = Math.max(56, Math.ceil(textWidth(node.label ?? node.id)) + 28);
    g.setNode(node.id, { width, height: NODE_HEIGHT });
  }
  edges.forEach((edge, i) => {
    const value = edge.label
      ? { label: edge.label, width: Math.ceil(textWidth(edge.label, LABEL_FONT)) + 8, height: 16, labelpos: 'c' }
      : {};
    g.setEdge(edge.from, edge.to, value, String(i));
  });
  layout(g);

  const marker = `dag-arrow-${++ids}`;
  const { width, height } = g.graph();
  const drawnEdges = g.edges().map((e) => {
    const edge = g.edge(e);
    const points = edge.points || [];
    const d = points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
    return svg('g', { class: 'dag-edge', 'data-from': e.v, 'data-to': e.w },
      svg('path', { d, 'marker-end': `url(#${marker})` }),
      edge.label && Number.isFinite(edge.x)
        ? svg('text', { x: edge.x, y: edge.y, class: 'dag-edge-label', 'text-anchor': 'middle', 'dominant-baseline': 'central' }, edge.label)
        : null);
  });
  const drawnNodes = g.nodes().map((id) => {
    const box = g.node(id);
    const node = all.get(id);
    return svg('g', {
      class: ['dag-node', node.kind && `dag-${node.kind}`],
      'data-testid': testid,
      [`data-${dataKey}`]: id,
      'data-state': node.state,
      transform: `translate(${(box.x - box.width / 2).toFixed(1)},${(box.y - box.height / 2).toFixed(1)})`,
    },
    svg('title', null, nodeTitle(node, node.state)),
    svg('rect', { width: box.width, height: box.height, rx: 7, ry: 7 }),
    svg('text', { x: box.width / 2, y: box.height / 2, 'text-anchor': 'middle', 'dominant-baseline': 'central' }, node.label ?? id));
  });

  const drawing = svg('svg', {
    class: 'dag',
    width: Math.ceil(width),
    height: Math.ceil(height),
    viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`,
    role: 'img',
    'aria-label': label,
  },
  svg('defs', null,
    svg('marker', { id: marker, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'dag-arrow' }))),
  drawnEdges, drawnNodes);
  return el('div', { class: 'dag-wrap', tabindex: '0', role: 'region', 'aria-label': label }, drawing);
}

/** Sets each node's data-state (and tooltip) from a Map id -> state. */
export function setStates(root, states, dataKey = 'task', fallback = 'pending') {
  for (const node of root.querySelectorAll(`.dag-node[data-${dataKey}]`)) {
    if (node.classList.contains('dag-external')) continue;
    const id = node.getAttribute(`data-${dataKey}`);
    const state = states.get(id) ?? fallback;
    node.setAttribute('data-state', state);
    const title = node.querySelector('title');
    if (title) title.textContent = `${id}: ${state}`;
  }
}
