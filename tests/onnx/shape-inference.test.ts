import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/kernel/errors.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { decodeModel } from '../../src/onnx/codec.ts';
import { attr, f32, i64, type Dim } from '../../src/onnx/ir.ts';
import * as op from '../../src/onnx/ops.ts';
import { broadcastShapes, inferShapes } from '../../src/onnx/shape-inference.ts';
import { interopFixtures } from './fixtures.ts';
import { compareWithOrt } from './ort-check.ts';

function rand(dims: number[], seed = 1) {
  let s = seed;
  const n = dims.reduce((a, b) => a * b, 1);
  return f32(dims, Array.from({ length: n }, () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1));
}

/** One graph using every op in issue 3 through ops.ts, on a symbolic batch. */
function zoo() {
  const b = new GraphBuilder();
  const x = b.input('x', 'float32', ['N', 4, 8, 8]);
  const w = (name: string, dims: number[]) => b.initializer(name, rand(dims, name.length * 7 + dims.length));
  const c1 = op.conv(b, x, w('w1', [6, 4, 3, 3]), w('b1', [6]), { pads: [1, 1, 1, 1], strides: [2, 2] });
  const dw = op.conv(b, c1, w('wdw', [6, 1, 3, 3]), undefined, { pads: [2, 2, 2, 2], dilations: [2, 2], group: 6 });
  const ct = op.convTranspose(b, dw, w('wt', [6, 3, 3, 3]), w('bt', [3]), { strides: [2, 2], pads: [1, 1, 1, 1], outputPadding: [1, 1] });
  const ctg = op.convTranspose(b, dw, w('wtg', [6, 1, 2, 2]), undefined, { strides: [2, 2], group: 3 });
  const varc = b.initializer('var', f32([3], [0.5, 1, 2]));
  const bn = op.batchNorm(b, ct, w('sc', [3]), w('bb', [3]), w('mu', [3]), varc, { epsilon: 1e-5 });
  const acts = [op.relu(b, bn), op.leakyRelu(b, bn, 0.1), op.clip(b, bn, 0, 6), op.clip(b, bn, undefined, 1), op.sigmoid(b, bn),
    op.hardSigmoid(b, bn, { alpha: 1 / 6, beta: 0.5 }), op.hardSwish(b, bn), op.tanh(b, bn), op.neg(b, bn), op.erf(b, bn),
    op.exp(b, bn), op.log(b, op.sigmoid(b, bn)), op.sqrt(b, op.relu(b, bn))];
  op.sum(b, acts);
  op.add(b, ctg, bn);
  const sl = op.slice(b, x, [0, 0], [7, 7], [2, 3]);
  op.slice(b, x, [-1, 6], [-9, 0], [2, 3], [-2, -3]);
  op.maxPool(b, x, { kernelShape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
  op.maxPoolWithIndices(b, sl, { kernelShape: [2, 2], strides: [2, 2], ceilMode: true });
  // ceil_mode where the last window would start in the padding and is dropped (5 → 3, not 4).
  const sl5 = op.slice(b, x, [0, 0], [5, 5], [2, 3]);
  op.maxPool(b, sl5, { kernelShape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: true });
  op.averagePool(b, sl5, { kernelShape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: true });
  op.averagePool(b, sl, { kernelShape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], countIncludePad: true, ceilMode: true });
  const gap = op.globalAveragePool(b, x);
  const fl = op.flatten(b, gap);
  // N·4 cannot be written as one dim: the only value the symbolic run may leave unknown.
  const flat2 = op.flatten(b, x, 2);
  const gm = op.gemm(b, fl, w('wg', [5, 4]), w('bg', [5]), { transB: true });
  const mm = op.matmul(b, fl, w('wm', [4, 5]));
  op.matmul(b, op.reshape(b, x, [0, 4, 64]), w('wm3', [64, 3]));
  op.matmul(b, w('v1', [8]), x);
  op.mul(b, gm, mm);
  op.div(b, mm, b.initializer('two', f32([], [2])));
  op.sub(b, x, w('bvec', [4, 1, 1]));
  op.pow(b, x, b.initializer('p2', f32([], [2])));
  op.reshape(b, x, [0, -1]);
  op.transpose(b, x, [0, 2, 3, 1]);
  const cc = op.concat(b, [x, sl.length ? op.pad(b, sl, [0, 0, 0, 0, 0, 0, 1, 1]) : x], 1);
  op.split(b, cc, [3, 5], 1);
  op.split(b, cc, { parts: 2 }, 2);
  op.pad(b, x, [0, 0, 1, 2, 0, 0, 2, 1], 'reflect');
  op.pad(b, x, [0, 0, 1, 1, 0, 0, 1, 1], 'constant', 3);
  op.softmax(b, gm, -1);
  op.logSoftmax(b, gm, 1);
  op.reduceMean(b, x, [2, 3], true);
  op.reduceMean(b, x);
  op.reduceSum(b, x, [1], false);
  op.reduceSum(b, x);
  op.reduceMax(b, x, [-1], false);
  op.argMax(b, gm, -1);
  op.resize(b, x, { scales: [1, 1, 2, 2], mode: 'nearest' });
  op.resize(b, x, { sizes: [2, 4, 5, 5], mode: 'linear' });
  op.identity(b, x);
  op.dropout(b, x);
  // Torch-style shape arithmetic on the symbolic batch: Shape → Gather → Unsqueeze → Concat → Reshape.
  const shp = op.shape(b, x);
  const n0 = op.gather(b, shp, b.initializer('zero', i64([], [0])), 0);
  const target = op.concat(b, [op.unsqueeze(b, n0, [0]), op.constInts(b, [-1])], 0);
  op.reshape(b, x, target);
  const dim = (k: number) => op.gather(b, shp, b.initializer(`d${k}`, i64([], [k])), 0);
  const hw = op.div(b, op.mul(b, op.mul(b, dim(2), dim(3)), b.initializer('four', i64([], [4]))), b.initializer('i2', i64([], [2])));
  op.reshape(b, x, op.concat(b, [op.unsqueeze(b, n0, [0]), op.constInts(b, [2]), op.unsqueeze(b, hw, [0])], 0));
  op.shape(b, x, { start: 1, end: -1 });
  op.constantOfShape(b, shp, 1.5);
  op.squeeze(b, op.unsqueeze(b, x, [0, -1]), [0, 5]);
  op.squeeze(b, gap, [2, 3]);
  const xi = op.cast(b, x, 'int64');
  const eq = op.equal(b, xi, b.initializer('zi', i64([], [0])));
  op.where(b, eq, x, op.neg(b, x));
  op.greater(b, x, gap);
  op.expand(b, w('bvec2', [4, 1, 1]), [2, 1, 8, 8]);
  op.constant(b, f32([2, 2], [1, 2, 3, 4]));
  op.oneHot(b, op.argMax(b, gm, 1), 5);
  op.reduceSumSquare(b, x, [1]);
  const d2s = b.op('DepthToSpace', [x], { blocksize: attr.int(2), mode: attr.string('CRD') });
  b.op('SpaceToDepth', [d2s], { blocksize: attr.int(2) });
  b.output(bn, 'float32');
  return { model: b.toModel(), feeds: { x: rand([2, 4, 8, 8], 42) }, flat2 };
}

describe('inferShapes agrees with onnxruntime', () => {
  it('on a graph using every op helper, with a symbolic batch', async () => {
    const { model, feeds, flat2 } = zoo();
    const { mismatches, compared, unknown, inferred } = await compareWithOrt(model, feeds);
    expect(mismatches).toEqual([]);
    expect(unknown).toEqual([flat2]);
    expect(compared).toBeGreaterThan(80);
    // The symbolic batch passes through conv, pooling and the torch-style reshape.
    const outOf = (opType: string) => model.graph.nodes.filter((n) => n.opType === opType).map((n) => inferred.get(n.outputs[0])?.shape);
    expect(outOf('Conv')[0]).toEqual(['N', 6, 4, 4]);
    expect(outOf('Reshape')).toContainEqual(['N', 256]);
    expect(outOf('Reshape')).toContainEqual(['N', 2, 128]);
    expect(outOf('Flatten')[0]).toEqual(['N', 4]);
  });

  it('on the same graph with a concrete input shape', async () => {
    const { model, feeds } = zoo();
    const { mismatches, unknown } = await compareWithOrt(model, feeds, { inputs: { x: [2, 4, 8, 8] } });
    expect(mismatches).toEqual([]);
    expect(unknown).toEqual([]);
  });

  for (const fx of interopFixtures()) {
    it(`on every intermediate of ${fx.file}`, async () => {
      const model = decodeModel(fx.bytes);
      const { mismatches, compared, unknown } = await compareWithOrt(model, { [fx.input_name]: f32(fx.input.shape, fx.input.data) });
      expect(mismatches).toEqual([]);
      expect(unknown).toEqual([]);
      expect(compared).toBeGreaterThanOrEqual(model.graph.nodes.filter((n) => n.opType !== 'Constant').length);
    });
  }
});

describe('inferShapes on indexing ops', () => {
  it('GatherElements, ScatterElements, ScatterND, NonZero, CastLike', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 5]);
    const idx = b.initializer('idx', i64([2, 2], [0, 4, 1, 3]));
    b.op('GatherElements', [x, idx], { axis: attr.int(1) });
    b.op('ScatterElements', [x, idx, b.initializer('upd', f32([2, 2], [1, 2, 3, 4]))], { axis: attr.int(1) });
    b.op('ScatterND', [x, b.initializer('nd', i64([1, 1], [0])), b.initializer('row', f32([1, 5], [9, 9, 9, 9, 9]))]);
    const nz = b.op('NonZero', [op.greater(b, x, b.initializer('z', f32([], [0])))]);
    b.op('CastLike', [nz, x]);
    b.output(x, 'float32');
    const { mismatches, unknown, inferred } = await compareWithOrt(b.toModel(), { x: rand([2, 5], 3) });
    expect(mismatches).toEqual([]);
    expect(unknown.sort()).toEqual([nz, b.graph.nodes[b.graph.nodes.length - 1].outputs[0]].sort());
    expect(inferred.get(nz)?.shape).toEqual([2, null]);
  });
});

describe('inferShapes details', () => {
  it('broadcasts like numpy and keeps symbols', () => {
    expect(broadcastShapes([2, 1, 4], [3, 1])).toEqual([2, 3, 4]);
    expect(broadcastShapes(['N', 3], [1, 3])).toEqual(['N', 3]);
    expect(broadcastShapes(['N', 3], ['M', 3])).toEqual([null, 3]);
    expect(broadcastShapes([null, 3], [5, 1])).toEqual([5, 3]);
    expect(() => broadcastShapes([2], [3])).toThrow();
  });

  it('leaves unknown ops out, fills from value_info, and throws in strict mode', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 3]);
    const y = b.op('MysteryOp', [x]);
    const z = op.relu(b, y);
    const u = op.relu(b, b.op('OtherMystery', [x]));
    b.graph.valueInfo.push({ name: y, dtype: 'float32', shape: ['N', 7] });
    const shapes = inferShapes(b.graph);
    expect(shapes.get(z)).toEqual({ dtype: 'float32', shape: ['N', 7] });
    expect(shapes.has(u)).toBe(false);
    expect(() => inferShapes(b.graph, { strict: true })).toThrowError(AppError);
  });

  it('solves Reshape −1 by cancelling symbolic dims', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 'T', 6]);
    const sh = op.shape(b, x);
    const nt = op.gather(b, sh, b.initializer('i01', i64([2], [0, 1])));
    const r1 = op.reshape(b, x, op.concat(b, [nt, op.constInts(b, [2, -1])], 0));
    const r2 = op.reshape(b, x, [-1, 6]);
    const shapes = inferShapes(b.graph);
    expect(shapes.get(r1)?.shape).toEqual(['N', 'T', 2, 3]);
    expect(shapes.get(r2)?.shape).toEqual([null, 6]);
  });

  it('knows training-mode BatchNormalization statistics outputs', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 3, 4, 4]);
    const p = (n: string) => b.initializer(n, f32([3], [1, 1, 1]));
    const [y, m, v] = op.batchNormTrain(b, x, p('s'), p('b'), p('m'), p('v'), { momentum: 0.9 });
    const shapes = inferShapes(b.graph);
    expect(shapes.get(y)?.shape).toEqual(['N', 3, 4, 4]);
    expect(shapes.get(m)?.shape).toEqual([3]);
    expect(shapes.get(v)?.shape as Dim[]).toEqual([3]);
  });
});

describe('inferShapes on older and newer opset forms', () => {
  it('opset 11: axes and split sizes as attributes', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 6, 4]);
    const u = b.op('Unsqueeze', [x], { axes: attr.ints([1]) });
    b.op('Squeeze', [u], { axes: attr.ints([1]) });
    b.opN('Split', [x], { axis: attr.int(1), split: attr.ints([2, 4]) }, 2);
    b.op('ReduceSum', [x], { axes: attr.ints([2]), keepdims: attr.int(0) });
    b.op('Pad', [x, op.constInts(b, [0, 1, 0, 0, 1, 2])]);
    b.output(x, 'float32');
    const model = b.toModel();
    model.opsetImports = [{ domain: '', version: 11 }];
    model.irVersion = 6;
    const { mismatches, unknown, compared } = await compareWithOrt(model, { x: rand([2, 6, 4]) });
    expect(mismatches).toEqual([]);
    expect(unknown).toEqual([]);
    expect(compared).toBe(8); // x, the Constant and the six outputs above
  });

  it('opset 18: reduction axes as inputs, Split num_outputs, Pad axes, Resize axes', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 8, 4, 4]);
    b.op('ReduceMean', [x, op.constInts(b, [2, 3])], { keepdims: attr.int(1) });
    b.op('ReduceMax', [x, op.constInts(b, [1])], { keepdims: attr.int(0) });
    b.opN('Split', [x], { axis: attr.int(1), num_outputs: attr.int(3) }, 3);
    b.op('Pad', [x, op.constInts(b, [1, 2]), '', op.constInts(b, [-1])]);
    b.op('Resize', [x, '', op.constant(b, f32([2], [2, 0.5]))], { axes: attr.ints([2, 3]), mode: attr.string('nearest') });
    b.output(x, 'float32');
    const model = b.toModel();
    model.opsetImports = [{ domain: '', version: 18 }];
    const { mismatches, unknown } = await compareWithOrt(model, { x: rand([2, 8, 4, 4]) });
    expect(mismatches).toEqual([]);
    expect(unknown).toEqual([]);
  });
});
