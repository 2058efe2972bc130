import { AppError } from '../kernel/errors.ts';
import type { Graph, Model, Node } from './ir.ts';

/**
 * Whole-graph helpers: ordering, producer/consumer maps, dead-node elimination, renaming and
 * cloning. All pure: they return new graphs/models and never mutate their argument.
 */

/** Node of each value name ('' and graph inputs/initializers have none). */
export function producers(graph: Graph): Map<string, Node> {
  const m = new Map<string, Node>();
  for (const n of graph.nodes) for (const o of n.outputs) if (o !== '') m.set(o, n);
  return m;
}

/** Nodes reading each value name, in node order (a node reading a value twice appears once). */
export function consumers(graph: Graph): Map<string, Node[]> {
  const m = new Map<string, Node[]>();
  for (const n of graph.nodes) {
    for (const i of new Set(n.inputs)) {
      if (i === '') continue;
      const list = m.get(i);
      if (list) list.push(n);
      else m.set(i, [n]);
    }
  }
  return m;
}

/**
 * Nodes in an order where every input is produced before it is read. Stable: already-sorted
 * graphs keep their order. Throws on a cycle or on a value nothing produces.
 */
export function topoSort(graph: Graph): Node[] {
  const available = new Set<string>(['', ...graph.inputs.map((v) => v.name), ...graph.initializers.keys()]);
  const prod = producers(graph);
  for (const n of graph.nodes) {
    for (const i of n.inputs) {
      if (!available.has(i) && !prod.has(i)) throw new AppError('BAD_INPUT', `graph '${graph.name}': node '${n.name}' reads '${i}', which nothing produces`);
    }
  }
  const index = new Map(graph.nodes.map((n, i) => [n, i]));
  const missing = new Map<Node, number>();
  const waiting = new Map<string, Node[]>();
  const ready: number[] = [];
  for (const n of graph.nodes) {
    const deps = new Set(n.inputs.filter((i) => !available.has(i)));
    missing.set(n, deps.size);
    for (const d of deps) {
      const list = waiting.get(d);
      if (list) list.push(n);
      else waiting.set(d, [n]);
    }
    if (deps.size === 0) ready.push(index.get(n)!);
  }
  const out: Node[] = [];
  // A min-heap on original position would be O(n log n); the sorted insert below is fine for the
  // few thousand nodes of a training graph and keeps the code short.
  ready.sort((a, b) => a - b);
  while (ready.length > 0) {
    const n = graph.nodes[ready.shift()!];
    out.push(n);
    for (const o of n.outputs) {
      if (o === '' || available.has(o)) continue;
      available.add(o);
      for (const c of waiting.get(o) ?? []) {
        const left = missing.get(c)! - 1;
        missing.set(c, left);
        if (left === 0) insertSorted(ready, index.get(c)!);
      }
    }
  }
  if (out.length !== graph.nodes.length) {
    const stuck = graph.nodes.find((n) => !out.includes(n));
    throw new AppError('BAD_INPUT', `graph '${graph.name}' has a cycle (at node '${stuck?.name}')`);
  }
  return out;
}

function insertSorted(a: number[], v: number): void {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  a.splice(lo, 0, v);
}

/**
 * Removes nodes whose outputs do not reach a graph output (or `keep`), then initializers and
 * value infos nothing reads. Graph inputs stay: they are the model's interface.
 */
export function eliminateDeadNodes(graph: Graph, keep: Iterable<string> = []): Graph {
  const prod = producers(graph);
  const live = new Set<string>([...graph.outputs.map((v) => v.name), ...keep]);
  const liveNodes = new Set<Node>();
  const stack = [...live];
  while (stack.length > 0) {
    const n = prod.get(stack.pop()!);
    if (!n || liveNodes.has(n)) continue;
    liveNodes.add(n);
    for (const i of n.inputs) if (i !== '' && !live.has(i)) (live.add(i), stack.push(i));
  }
  const nodes = graph.nodes.filter((n) => liveNodes.has(n));
  const read = new Set<string>([...live]);
  return {
    ...graph,
    nodes,
    initializers: new Map([...graph.initializers].filter(([k]) => read.has(k))),
    valueInfo: graph.valueInfo.filter((v) => read.has(v.name)),
  };
}

/** Renames values everywhere they appear: node inputs/outputs, graph interface, initializers, value infos. */
export function renameValues(graph: Graph, mapping: ReadonlyMap<string, string> | Record<string, string>): Graph {
  const map = mapping instanceof Map ? mapping : new Map(Object.entries(mapping));
  const r = (name: string) => (name === '' ? '' : map.get(name) ?? name);
  return {
    ...graph,
    nodes: graph.nodes.map((n) => ({ ...n, inputs: n.inputs.map(r), outputs: n.outputs.map(r) })),
    inputs: graph.inputs.map((v) => ({ ...v, name: r(v.name) })),
    outputs: graph.outputs.map((v) => ({ ...v, name: r(v.name) })),
    initializers: new Map([...graph.initializers].map(([k, t]) => [r(k), t])),
    valueInfo: graph.valueInfo.map((v) => ({ ...v, name: r(v.name) })),
  };
}

/** Prefixes every value and node name except those in `except` (e.g. to merge two graphs). */
export function prefixNames(graph: Graph, prefix: string, except: Iterable<string> = []): Graph {
  const skip = new Set(except);
  const mapping = new Map<string, string>();
  const add = (name: string) => {
    if (name !== '' && !skip.has(name)) mapping.set(name, prefix + name);
  };
  graph.inputs.forEach((v) => add(v.name));
  graph.outputs.forEach((v) => add(v.name));
  for (const k of graph.initializers.keys()) add(k);
  for (const n of graph.nodes) [...n.inputs, ...n.outputs].forEach(add);
  const renamed = renameValues(graph, mapping);
  return { ...renamed, nodes: renamed.nodes.map((n) => ({ ...n, name: prefix + n.name })) };
}

/** Names of every value in the graph: inputs, initializers and node outputs. */
export function valueNames(graph: Graph): Set<string> {
  const s = new Set<string>([...graph.inputs.map((v) => v.name), ...graph.initializers.keys()]);
  for (const n of graph.nodes) for (const o of n.outputs) if (o !== '') s.add(o);
  return s;
}

/** A deep copy, typed arrays included, so the copy can be edited freely. */
export function cloneModel(model: Model): Model {
  return structuredClone(model);
}
export function cloneGraph(graph: Graph): Graph {
  return structuredClone(graph);
}
