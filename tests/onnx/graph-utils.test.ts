import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/kernel/errors.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import {
  cloneModel, consumers, eliminateDeadNodes, prefixNames, producers, renameValues, topoSort, valueNames,
} from '../../src/onnx/graph-utils.ts';
import { f32 } from '../../src/onnx/ir.ts';
import * as op from '../../src/onnx/ops.ts';
import { createSession } from '../../src/runtime/session.ts';

/** x → a=Relu → b=Neg(a) → y=Add(a, b); plus a dead branch d=Exp(x) and an unused initializer. */
function diamond() {
  const g = new GraphBuilder();
  const x = g.input('x', 'float32', [3]);
  const a = op.relu(g, x);
  const bb = op.neg(g, a);
  const y = op.add(g, a, bb);
  const d = op.exp(g, x);
  g.initializer('unused', f32([1], [1]));
  g.graph.valueInfo.push({ name: d, dtype: 'float32', shape: [3] });
  g.output(y, 'float32', [3]);
  return { g: g.graph, x, a, bb, y, d };
}

describe('graph utilities', () => {
  it('maps producers and consumers', () => {
    const { g, a, bb, y } = diamond();
    expect(producers(g).get(bb)?.opType).toBe('Neg');
    expect(consumers(g).get(a)?.map((n) => n.opType)).toEqual(['Neg', 'Add']);
    expect(consumers(g).get(y)).toBeUndefined();
  });

  it('sorts topologically, stably, and detects cycles and missing values', () => {
    const { g } = diamond();
    expect(topoSort(g).map((n) => n.opType)).toEqual(['Relu', 'Neg', 'Add', 'Exp']);
    const shuffled = { ...g, nodes: [g.nodes[2], g.nodes[3], g.nodes[1], g.nodes[0]] };
    const order = topoSort(shuffled).map((n) => n.opType);
    expect(order.indexOf('Relu')).toBeLessThan(order.indexOf('Neg'));
    expect(order.indexOf('Neg')).toBeLessThan(order.indexOf('Add'));
    expect(order).toEqual(['Exp', 'Relu', 'Neg', 'Add']);
    const cyclic = { ...g, nodes: [{ ...g.nodes[0], inputs: [g.nodes[1].outputs[0]] }, g.nodes[1]] };
    expect(() => topoSort(cyclic)).toThrowError(/cycle/);
    const dangling = { ...g, nodes: [{ ...g.nodes[0], inputs: ['nowhere'] }] };
    expect(() => topoSort(dangling)).toThrowError(AppError);
  });

  it('eliminates dead nodes, unused initializers and their value infos, keeping inputs', () => {
    const { g, d } = diamond();
    const live = eliminateDeadNodes(g);
    expect(live.nodes.map((n) => n.opType)).toEqual(['Relu', 'Neg', 'Add']);
    expect(live.initializers.size).toBe(0);
    expect(live.valueInfo).toEqual([]);
    expect(live.inputs.map((v) => v.name)).toEqual(['x']);
    expect(g.nodes).toHaveLength(4); // pure
    expect(eliminateDeadNodes(g, [d]).nodes).toHaveLength(4);
  });

  it('renames values everywhere and prefixes names for merging', async () => {
    const { g, x, y, a } = diamond();
    const r = renameValues(g, { [x]: 'image', [y]: 'out', [a]: 'act' });
    expect(r.inputs[0].name).toBe('image');
    expect(r.outputs[0].name).toBe('out');
    expect(r.nodes[0].inputs).toEqual(['image']);
    expect(r.nodes[1].inputs).toEqual(['act']);
    expect(r.nodes[2].outputs).toEqual(['out']);
    const p = prefixNames(g, 'm/', [x]);
    expect(p.inputs[0].name).toBe('x');
    expect(p.outputs[0].name).toBe(`m/${y}`);
    expect(p.nodes.every((n) => n.name.startsWith('m/'))).toBe(true);
    expect(valueNames(p).has(`m/${a}`)).toBe(true);
    // The renamed graph still runs.
    const gb = new GraphBuilder(r);
    const s = await createSession(gb.toModel(), { threads: 1 });
    expect((await s.run({ image: f32([3], [-1, 2, 0]) })).out).toEqual(f32([3], [0, 0, 0]));
    await s.release();
  });

  it('clones deeply, typed arrays included', () => {
    const { g } = diamond();
    const m = new GraphBuilder(g).toModel({ k: 'v' });
    const c = cloneModel(m);
    expect(c).toEqual(m);
    (c.graph.initializers.get('unused')!.data as Float32Array)[0] = 5;
    c.graph.nodes[0].inputs[0] = 'changed';
    c.metadata.k = 'w';
    expect((m.graph.initializers.get('unused')!.data as Float32Array)[0]).toBe(1);
    expect(m.graph.nodes[0].inputs[0]).toBe('x');
    expect(m.metadata.k).toBe('v');
  });
});
