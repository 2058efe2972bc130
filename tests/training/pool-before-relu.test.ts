import { describe, expect, it } from 'vitest';
import { backward } from '../../src/autodiff/index.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { attr, f32 } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';
import { poolBeforeRelu } from '../../src/training/pool-before-relu.ts';

const DIMS = [1, 2, 6, 6];

/** x → Relu → MaxPool 3×3/2 pad 1 → ·r → Σ: the loss, and the graph's value names. */
function stem(rewrite: boolean) {
  const b = new GraphBuilder();
  const x = b.input('x', 'float32', DIMS);
  const pooled = b.op('MaxPool', [b.op('Relu', [x])], { kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) });
  const r = b.initializer('r', f32([1, 2, 3, 3], Array.from({ length: 18 }, (_, i) => (i % 5) - 1.5)));
  const loss = b.op('ReduceSum', [b.op('Mul', [pooled, r])], { keepdims: attr.int(0) });
  const rewritten = rewrite ? poolBeforeRelu(b) : 0;
  const dx = backward(b, { loss, wrt: [x] }).get(x) as string;
  b.output(pooled, 'float32');
  b.output(dx, 'float32');
  return { b, pooled, dx, rewritten };
}

async function run(rewrite: boolean, xs: number[]) {
  const { b, pooled, dx, rewritten } = stem(rewrite);
  const s = await createSession(b.toModel(), { threads: 1 });
  const out = await s.run({ x: f32(DIMS, xs) });
  await s.release();
  return { pooled: Array.from(out[pooled].data as Float32Array), dx: Array.from(out[dx].data as Float32Array), rewritten, nodes: b.graph.nodes };
}

describe('poolBeforeRelu', () => {
  it('gives the same pooled values and the same input gradient, bit for bit', async () => {
    // channel 0: windows wholly negative, ties at 0 after the ReLU, ties among positive values;
    // channel 1: a smooth ramp crossing zero
    const c0 = [
      -1, -2, -3, -1, -2, -0.5,
      -4, -1, -2, -3, -1, -2,
      2, 2, -1, 0, 0, 0,
      2, -5, 1, -0, 0, -3,
      -1, -1, -1, 3, 3, 1,
      -2, -1, -3, 3, -7, 2,
    ];
    const c1 = Array.from({ length: 36 }, (_, i) => (i - 17) / 7);
    const xs = [...c0, ...c1];
    const before = await run(false, xs);
    const after = await run(true, xs);
    expect(after.rewritten).toBe(1);
    expect(after.pooled).toEqual(before.pooled);
    // equal as numbers; where the gradient is zero its sign may differ (dY·0 against a 0 never written)
    const unsigned = (v: number[]) => v.map((e) => e + 0);
    expect(unsigned(after.dx)).toEqual(unsigned(before.dx));
    expect(after.dx.some((v) => v !== 0)).toBe(true);
    // the ReLU now reads the pool
    const relu = after.nodes.find((n) => n.opType === 'Relu');
    const pool = after.nodes.find((n) => n.opType === 'MaxPool');
    expect(relu?.inputs[0]).toBe(pool?.outputs[0]);
    expect(after.nodes.indexOf(pool!)).toBeLessThan(after.nodes.indexOf(relu!));
  });

  it('leaves a ReLU with another reader, and a pool asked for its Indices', () => {
    const shared = new GraphBuilder();
    const a = shared.op('Relu', [shared.input('x', 'float32', DIMS)]);
    shared.output(shared.op('Add', [shared.op('MaxPool', [a], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) }), shared.op('MaxPool', [a], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) })]), 'float32');
    expect(poolBeforeRelu(shared)).toBe(0);

    const indexed = new GraphBuilder();
    const [y, i] = indexed.opN('MaxPool', [indexed.op('Relu', [indexed.input('x', 'float32', DIMS)])], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) }, 2);
    indexed.output(y, 'float32');
    indexed.output(i, 'int64');
    expect(poolBeforeRelu(indexed)).toBe(0);

    const exposed = new GraphBuilder();
    const r = exposed.op('Relu', [exposed.input('x', 'float32', DIMS)]);
    exposed.output(exposed.op('MaxPool', [r], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) }), 'float32');
    exposed.output(r, 'float32');
    expect(poolBeforeRelu(exposed)).toBe(0);
  });
});
