import { describe, expect, it } from 'vitest';
import { backward, decomposeBatchNormForTraining } from '../../src/autodiff/index.ts';
import { AppError } from '../../src/kernel/errors.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { inferShapes } from '../../src/onnx/shape-inference.ts';
import { type TensorData, attr, f32 } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';

async function run(b: GraphBuilder, feeds: Record<string, TensorData>, outputs: string[]): Promise<Record<string, number[]>> {
  for (const o of outputs) b.output(o, 'float32');
  const s = await createSession(b.toModel(), { threads: 1 });
  const r = await s.run(feeds, outputs);
  await s.release();
  return Object.fromEntries(outputs.map((o) => [o, Array.from(r[o].data as Float32Array)]));
}

describe('backward engine', () => {
  it('sums the gradients of a value used twice: d/dx Σ x·x + x = 2x + 1', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [3]);
    const loss = b.op('ReduceSum', [b.op('Add', [b.op('Mul', [x, x]), x])], { keepdims: attr.int(0) });
    const g = backward(b, { loss, wrt: [x] }).get(x) as string;
    const r = await run(b, { x: f32([3], [1, -2, 0.5]) }, [g]);
    expect(r[g]).toEqual([3, -3, 2]);
  });

  it('sums a broadcast gradient unexpanded: squeeze-excite, x·σ(mean(x)), writes no full-size Expand', async () => {
    const [c, hw] = [2, 4];
    const xs = [0.5, -1, 2, 0.25, -0.75, 1.5, 0.1, -2];
    const rs = [1, 2, -1, 0.5, -0.5, 1, 3, -2];
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [1, c, 2, 2]);
    const r = b.initializer('r', f32([1, c, 2, 2], rs));
    const gate = b.op('Sigmoid', [b.op('GlobalAveragePool', [x])]);
    const loss = b.op('ReduceSum', [b.op('Mul', [b.op('Mul', [x, gate]), r])], { keepdims: attr.int(0) });
    const before = b.graph.nodes.length;
    const g = backward(b, { loss, wrt: [x] }).get(x) as string;
    const out = await run(b, { x: f32([1, c, 2, 2], xs) }, [g]);
    // dL/dx = r·s + Σ(r·x)·s(1−s)/HW per channel, s = σ(mean x)
    const expected = xs.map((_, i) => {
      const ch = Math.floor(i / hw);
      const part = (v: number[]) => v.slice(ch * hw, ch * hw + hw);
      const s = 1 / (1 + Math.exp(-part(xs).reduce((a, v) => a + v, 0) / hw));
      const dot = part(xs).reduce((a, v, j) => a + v * part(rs)[j], 0);
      return rs[i] * s + dot * s * (1 - s) / hw;
    });
    out[g].forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
    const live = new Set(b.graph.nodes.flatMap((n) => n.inputs).concat(g));
    const poolExpands = b.graph.nodes.slice(before).filter((n) => n.opType === 'Expand' && n.name.startsWith('GlobalAveragePool'));
    expect(poolExpands).toHaveLength(1);
    expect(live.has(poolExpands[0].outputs[0])).toBe(false);
  });

  it('never meets an [N, C, 1, 1] value with a rank-0 scalar in a squeeze-excite backward', () => {
    // onnxruntime broadcasts that pair one element at a time (576×144×1×1: 0.80 against 0.012 ms)
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 8, 4, 4]);
    const w1 = b.input('w1', 'float32', [4, 8, 1, 1]);
    const w2 = b.input('w2', 'float32', [8, 4, 1, 1]);
    const squeezed = b.op('Relu', [b.op('Conv', [b.op('GlobalAveragePool', [x]), w1])]);
    const gate = b.op('HardSigmoid', [b.op('Conv', [squeezed, w2])], { alpha: attr.float(1 / 6), beta: attr.float(0.5) });
    const loss = b.op('ReduceSum', [b.op('Mul', [x, gate])], { keepdims: attr.int(0) });
    const before = b.graph.nodes.length;
    backward(b, { loss, wrt: [x, w1, w2] });
    const shapes = inferShapes(b.graph);
    const elementwise = new Set(['Mul', 'Div', 'Add', 'Sub', 'Greater', 'Less', 'Equal']);
    const mixed = b.graph.nodes.slice(before).filter((n) => {
      if (!elementwise.has(n.opType)) return false;
      const shaped = n.inputs.map((i) => shapes.get(i)?.shape ?? []);
      const unitTail = shaped.some((d) => d.length === 4 && d[2] === 1 && d[3] === 1);
      return unitTail && shaped.some((d) => d.length === 0);
    });
    expect(mixed.map((n) => `${n.opType} ${n.name}`)).toEqual([]);
  });

  it('masks ReLU exactly: 0 at and below zero, 1 for any positive value (denormal or huge)', async () => {
    const b = new GraphBuilder();
    const xs = [-2, -0, 0, 1e-40, 0.3, 5, 3e38];
    const x = b.input('x', 'float32', [xs.length]);
    const r = b.initializer('r', f32([xs.length], [1, 2, 3, 4, 5, 6, 7]));
    const loss = b.op('ReduceSum', [b.op('Mul', [b.op('Relu', [x]), r])], { keepdims: attr.int(0) });
    const g = backward(b, { loss, wrt: [x] }).get(x) as string;
    const out = await run(b, { x: f32([xs.length], xs) }, [g]);
    expect(out[g].map((v) => v + 0)).toEqual([0, 0, 0, 4, 5, 6, 7]);
  });

  it("gives HardSwish PyTorch's gradient at and around its band edges ±3", async () => {
    const b = new GraphBuilder();
    const below3 = Math.fround(3 - 2 ** -22);
    const above3 = Math.fround(3 + 2 ** -21);
    const xs = [-4, -above3, -3, -below3, -1e-30, 0, 1.5, below3, 3, above3, 1e30];
    const x = b.input('x', 'float32', [xs.length]);
    const loss = b.op('ReduceSum', [b.op('HardSwish', [x])], { keepdims: attr.int(0) });
    const g = backward(b, { loss, wrt: [x] }).get(x) as string;
    const out = await run(b, { x: f32([xs.length], xs) }, [g]);
    // torch's hardswish_backward: 0 below −3, x/3 + 1/2 on [−3, 3], 1 above
    const expected = xs.map((v) => (v < -3 ? 0 : v <= 3 ? Math.fround(v / 3 + 0.5) : 1));
    out[g].forEach((v, i) => expect(v, `x = ${xs[i]}`).toBeCloseTo(expected[i], 6));
  });

  it('reduces training batch norm over the spatial axes, then the batch, never (N, H, W) at once', () => {
    // onnxruntime takes a slower path for a reduction over (0, 2, 3): 32×128×28×28 6.9 against 0.8 ms
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [4, 8, 5, 5]);
    for (const name of ['s', 'bias']) b.input(name, 'float32', [8]);
    const rm = b.initializer('rm', f32([8], new Array<number>(8).fill(0)));
    const rv = b.initializer('rv', f32([8], new Array<number>(8).fill(1)));
    const y = b.opN('BatchNormalization', [x, 's', 'bias', rm, rv], { training_mode: attr.int(1) }, 3)[0];
    const loss = b.op('ReduceSum', [b.op('Mul', [y, y])], { keepdims: attr.int(0) });
    decomposeBatchNormForTraining(b);
    backward(b, { loss, wrt: [x, 's', 'bias'] });
    const axesOf = (n: (typeof b.graph.nodes)[number]) => (n.attrs.axes?.value as number[] | undefined)
      ?? [...(b.graph.initializers.get(n.inputs[1] ?? '')?.data ?? [])].map(Number);
    const reductions = b.graph.nodes.filter((n) => n.opType === 'ReduceSum' || n.opType === 'ReduceMean');
    expect(reductions.length).toBeGreaterThanOrEqual(8);
    for (const n of reductions) expect(axesOf(n), n.name).not.toEqual([0, 2, 3]);
  });

  it("reads the centre tap of a stride-1 'same' conv's weight gradient from X itself, and copies the other eight", async () => {
    // 32×64×56×56: each window Slice is a 26 MB copy; the centre one is X
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 8, 6, 6]);
    const w = b.input('w', 'float32', [8, 8, 3, 3]);
    const y = b.op('Conv', [x, w], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) });
    const loss = b.op('ReduceSum', [b.op('Mul', [y, y])], { keepdims: attr.int(0) });
    const before = b.graph.nodes.length;
    const dw = backward(b, { loss, wrt: [w] }).get(w) as string;
    const added = b.graph.nodes.slice(before);
    expect(added.filter((n) => n.opType === 'Slice')).toHaveLength(8);
    const products = added.filter((n) => n.opType === 'MatMul' && n.inputs.some((i) => added.some((r) => r.opType === 'Reshape' && r.outputs[0] === i && r.inputs[0] === x)));
    expect(products).toHaveLength(1);
    // and the gradient is still right: against finite differences of the loss
    const xs = Array.from({ length: 2 * 8 * 36 }, (_, i) => Math.sin(i * 0.7));
    const ws = Array.from({ length: 8 * 8 * 9 }, (_, i) => Math.cos(i * 0.3) * 0.2);
    const out = await run(b, { x: f32([2, 8, 6, 6], xs), w: f32([8, 8, 3, 3], ws) }, [dw, loss]);
    const lossAt = async (wv: number[]) => {
      const c = new GraphBuilder();
      c.input('x', 'float32', [2, 8, 6, 6]);
      c.input('w', 'float32', [8, 8, 3, 3]);
      const yy = c.op('Conv', ['x', 'w'], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) });
      const l = c.op('ReduceSum', [c.op('Mul', [yy, yy])], { keepdims: attr.int(0) });
      return (await run(c, { x: f32([2, 8, 6, 6], xs), w: f32([8, 8, 3, 3], wv) }, [l]))[l][0];
    };
    for (const k of [4, 4 + 9 * 3, 100, 4 + 9 * 50]) {
      const h = 1e-2;
      const [up, down] = [ws.slice(), ws.slice()];
      up[k] += h;
      down[k] -= h;
      expect(out[dw][k], `dW[${k}]`).toBeCloseTo(((await lossAt(up)) - (await lossAt(down))) / (2 * h), 1);
    }
  });

  it('emits no backward nodes for a frozen subgraph', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const frozenW = b.initializer('frozen_w', f32([3, 3], new Array(9).fill(0.5)));
    const w = b.initializer('w', f32([3, 2], new Array(6).fill(0.1)));
    const features = b.op('Relu', [b.op('MatMul', [x, frozenW])]);
    const loss = b.op('ReduceSum', [b.op('MatMul', [features, w])], { keepdims: attr.int(0) });
    const before = b.graph.nodes.length;
    const grads = backward(b, { loss, wrt: [w] });
    const added = b.graph.nodes.slice(before);
    expect(grads.size).toBe(1);
    // the loss seed, ReduceSum's broadcast, and MatMul's dB: nothing for Relu or the frozen MatMul
    expect(added.some((n) => n.name.startsWith('Relu'))).toBe(false);
    expect(added.flatMap((n) => n.inputs)).not.toContain(frozenW);
    expect(added.flatMap((n) => n.inputs)).not.toContain(x);
  });

  it('stops at comparison ops and seeds with a given loss gradient', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [4]);
    b.input('seed', 'float32', [4]);
    // y = where(x < 0, 0, x): the condition carries no gradient
    const y = b.op('Where', [b.op('Less', [x, b.initializer('zero', f32([], [0]))]), b.initializer('z', f32([], [0])), x]);
    const g = backward(b, { loss: y, wrt: [x], lossGrad: 'seed' }).get(x) as string;
    const r = await run(b, { x: f32([4], [-1, 2, -3, 4]), seed: f32([4], [10, 20, 30, 40]) }, [g]);
    expect(r[g]).toEqual([0, 20, 0, 40]);
  });

  it('gives zeros for a wrt value the loss does not depend on', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2]);
    const unused = b.input('unused', 'float32', [3]);
    const loss = b.op('ReduceSum', [x], { keepdims: attr.int(0) });
    const g = backward(b, { loss, wrt: [x, unused] }).get(unused) as string;
    const r = await run(b, { x: f32([2], [1, 2]), unused: f32([3], [1, 2, 3]) }, [g]);
    expect(r[g]).toEqual([0, 0, 0]);
  });

  it('fails loudly, naming op and node, for an op without a rule', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2]);
    const y = b.op('Sin', [x], {}, 'my_sine');
    expect(() => backward(b, { loss: y, wrt: [x] })).toThrowError(/Sin.*my_sine/);
    try {
      backward(b, { loss: y, wrt: [x] });
    } catch (e) {
      expect(e).toBeInstanceOf(AppError);
      expect((e as AppError).code).toBe('UNSUPPORTED_OP');
    }
  });

  it('un-broadcasts over a symbolic batch dimension at run time', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 3]);
    const bias = b.input('bias', 'float32', [3]);
    const loss = b.op('ReduceSum', [b.op('Mul', [b.op('Add', [x, bias]), x])], { keepdims: attr.int(0) });
    const grads = backward(b, { loss, wrt: [bias] });
    const g = grads.get(bias) as string;
    // d/dbias Σ (x + bias)·x = Σ_n x
    const r = await run(b, { x: f32([2, 3], [1, 2, 3, 4, 5, 6]), bias: f32([3], [0, 0, 0]) }, [g]);
    expect(r[g]).toEqual([5, 7, 9]);
  });

  it('un-broadcasts at run time where symbolic dims leave broadcasting open', async () => {
    const b = new GraphBuilder();
    const a = b.input('a', 'float32', ['A', 3]);
    const c = b.input('c', 'float32', ['B', 3]);
    const loss = b.op('ReduceSum', [b.op('Mul', [a, c])], { keepdims: attr.int(0) });
    const grads = backward(b, { loss, wrt: [a, c] });
    const [ga, gc] = [grads.get(a) as string, grads.get(c) as string];
    const r = await run(b, { a: f32([1, 3], [1, 2, 3]), c: f32([2, 3], [1, 1, 1, 2, 2, 2]) }, [ga, gc]);
    expect(r[ga]).toEqual([3, 3, 3]);
    expect(r[gc]).toEqual([1, 2, 3, 1, 2, 3]);
  });

  it('sends MaxPool gradients to the first maximum of each window on ties, as PyTorch, without Indices', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 1, 5, 5]);
    const y = b.op('MaxPool', [x], { kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) });
    const weights = b.initializer('r', f32([1, 1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]));
    const loss = b.op('ReduceSum', [b.op('Mul', [y, weights])], { keepdims: attr.int(0) });
    const g = backward(b, { loss, wrt: [x] }).get(x) as string;
    expect(b.graph.nodes.find((n) => n.opType === 'MaxPool')?.outputs).toHaveLength(1);
    const r = await run(b, { x: f32([2, 1, 5, 5], new Array(50).fill(0)) }, [g]);
    // all-equal input: output (i, j) routes its gradient to its window's first in-bounds cell
    const expected = new Array(25).fill(0);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) expected[Math.max(0, 2 * i - 1) * 5 + Math.max(0, 2 * j - 1)] += 3 * i + j + 1;
    expect(r[g]).toEqual([...expected, ...expected]);
  });

  it('differentiates pooling and convolution with a symbolic batch dimension', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 1, 4, 4]);
    const w = b.initializer('w', f32([1, 1, 1, 1], [2]));
    const pooled = b.op('AveragePool', [b.op('Conv', [x, w])], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) });
    const loss = b.op('ReduceSum', [pooled], { keepdims: attr.int(0) });
    const g = backward(b, { loss, wrt: [x] }).get(x) as string;
    const r = await run(b, { x: f32([3, 1, 4, 4], new Array(48).fill(1)) }, [g]);
    // each input element: weight 2, averaged over a 2×2 window
    expect(r[g]).toEqual(new Array(48).fill(0.5));
  });

  it('differentiates training-mode Dropout through the mask it asks the forward node for', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [1000]);
    const ratio = b.initializer('ratio', f32([], [0.25]));
    const training = b.initializer('training', { dtype: 'bool', dims: [], data: Uint8Array.of(1) });
    const y = b.op('Dropout', [x, ratio, training], { seed: attr.int(3) });
    const loss = b.op('ReduceSum', [y], { keepdims: attr.int(0) });
    const g = backward(b, { loss, wrt: [x] }).get(x) as string;
    const dropout = b.graph.nodes.find((n) => n.opType === 'Dropout');
    expect(dropout?.outputs).toHaveLength(2);
    const r = await run(b, { x: f32([1000], new Array(1000).fill(1)) }, [g, y]);
    // dX = mask/(1−p) = y where x is all ones
    expect(r[g]).toEqual(r[y]);
    const kept = r[g].filter((v) => v !== 0).length;
    expect(kept).toBeGreaterThan(650);
    expect(kept).toBeLessThan(850);
  });
});
