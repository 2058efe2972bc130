import type { Graph, Node } from '../onnx/ir.ts';

/**
 * Small whole-graph edits the ONNX import needs: who produces a value, what a value depends on,
 * renaming a value everywhere.
 */

export function producers(g: Graph): Map<string, Node> {
  const m = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) m.set(o, n);
  return m;
}

/** The nodes `targets` depend on (themselves included), in graph order. */
export function ancestorNodes(g: Graph, targets: string[]): Node[] {
  const prod = producers(g);
  const needed = new Set<Node>();
  const stack = [...targets];
  while (stack.length) {
    const v = stack.pop()!;
    const n = prod.get(v);
    if (!n || needed.has(n)) continue;
    needed.add(n);
    for (const i of n.inputs) if (i) stack.push(i);
  }
  return g.nodes.filter((n) => needed.has(n));
}

/** Renames value `from` to `to` in node inputs/outputs, graph inputs/outputs and initializers. */
export function renameValue(g: Graph, from: string, to: string): void {
  if (from === to) return;
  for (const n of g.nodes) {
    n.inputs = n.inputs.map((i) => (i === from ? to : i));
    n.outputs = n.outputs.map((o) => (o === from ? to : o));
  }
  for (const v of [...g.inputs, ...g.outputs]) if (v.name === from) v.name = to;
  const t = g.initializers.get(from);
  if (t) {
    g.initializers.delete(from);
    g.initializers.set(to, t);
  }
}

/** Every value name used in the graph. */
export function valueNames(g: Graph): Set<string> {
  const s = new Set<string>(g.initializers.keys());
  for (const v of [...g.inputs, ...g.outputs]) s.add(v.name);
  for (const n of g.nodes) for (const v of [...n.inputs, ...n.outputs]) if (v) s.add(v);
  return s;
}

/** A deep-enough copy to edit: new node and value-info objects, the same tensor data. */
export function cloneGraph(g: Graph): Graph {
  return {
    name: g.name,
    nodes: g.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } })),
    inputs: g.inputs.map((v) => ({ ...v, shape: v.shape ? [...v.shape] : undefined })),
    outputs: g.outputs.map((v) => ({ ...v, shape: v.shape ? [...v.shape] : undefined })),
    initializers: new Map(g.initializers),
    valueInfo: g.valueInfo.map((v) => ({ ...v })),
  };
}
