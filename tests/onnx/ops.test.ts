import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { f32, i64, type TensorData } from '../../src/onnx/ir.ts';
import * as op from '../../src/onnx/ops.ts';
import { inferShapes } from '../../src/onnx/shape-inference.ts';
import { createSession } from '../../src/runtime/session.ts';

/** Builds y = f(x) with the helper, runs it in onnxruntime, returns y's values and shape. */
async function apply(x: TensorData, f: (b: GraphBuilder, x: string) => string) {
  const b = new GraphBuilder();
  const xin = b.input('x', x.dtype, x.dims);
  const y = f(b, xin);
  const info = inferShapes(b.graph).get(y)!;
  b.output(y, info.dtype, info.shape);
  const s = await createSession(b.toModel(), { threads: 1 });
  const out = (await s.run({ x }))[y];
  await s.release();
  return { dims: out.dims, data: Array.from(out.data as ArrayLike<number | bigint>, Number) };
}

const x23 = f32([2, 3], [-2, -0.5, 0, 1, 3, 8]);

describe('op helpers compute what their opset-17 definitions say', () => {
  it('clip with one or both bounds', async () => {
    expect((await apply(x23, (b, x) => op.clip(b, x, 0, 6))).data).toEqual([0, 0, 0, 1, 3, 6]);
    expect((await apply(x23, (b, x) => op.clip(b, x, undefined, 1))).data).toEqual([-2, -0.5, 0, 1, 1, 1]);
    expect((await apply(x23, (b, x) => op.clip(b, x, -1))).data).toEqual([-1, -0.5, 0, 1, 3, 8]);
  });

  it('hardSigmoid with PyTorch parameters and hardSwish', async () => {
    const hs = await apply(x23, (b, x) => op.hardSigmoid(b, x, { alpha: 1 / 6, beta: 0.5 }));
    const ref = [-2, -0.5, 0, 1, 3, 8].map((v) => Math.min(1, Math.max(0, v / 6 + 0.5)));
    hs.data.forEach((v, i) => expect(v).toBeCloseTo(ref[i], 6));
    const sw = await apply(x23, (b, x) => op.hardSwish(b, x));
    sw.data.forEach((v, i) => expect(v).toBeCloseTo(ref[i] * [-2, -0.5, 0, 1, 3, 8][i], 6));
  });

  it('reductions: ReduceSum axes as input, ReduceMean axes as attribute', async () => {
    expect(await apply(x23, (b, x) => op.reduceSum(b, x, [1], false))).toEqual({ dims: [2], data: [-2.5, 12] });
    expect(await apply(x23, (b, x) => op.reduceSum(b, x))).toEqual({ dims: [1, 1], data: [9.5] });
    expect(await apply(x23, (b, x) => op.reduceMean(b, x, [0], true))).toEqual({ dims: [1, 3], data: [-0.5, 1.25, 4] });
    expect(await apply(x23, (b, x) => op.reduceMax(b, x, [-1], false))).toEqual({ dims: [2], data: [0, 8] });
  });

  it('split by sizes and into equal parts', async () => {
    const first = await apply(f32([5], [1, 2, 3, 4, 5]), (b, x) => op.split(b, x, [2, 3])[1]);
    expect(first).toEqual({ dims: [3], data: [3, 4, 5] });
    const half = await apply(f32([4], [1, 2, 3, 4]), (b, x) => op.split(b, x, { parts: 2 })[1]);
    expect(half).toEqual({ dims: [2], data: [3, 4] });
  });

  it('slice with negative steps, pad with a value, transpose, concat', async () => {
    expect(await apply(x23, (b, x) => op.slice(b, x, [-1], [-4], [1], [-2]))).toEqual({ dims: [2, 2], data: [0, -2, 8, 1] });
    expect(await apply(f32([2], [1, 2]), (b, x) => op.pad(b, x, [1, 2], 'constant', 9))).toEqual({ dims: [5], data: [9, 1, 2, 9, 9] });
    expect(await apply(x23, (b, x) => op.transpose(b, x, [1, 0]))).toEqual({ dims: [3, 2], data: [-2, 1, -0.5, 3, 0, 8] });
    expect((await apply(x23, (b, x) => op.concat(b, [x, x], 0))).dims).toEqual([4, 3]);
  });

  it('gemm with transB, alpha and a broadcast bias', async () => {
    const r = await apply(x23, (b, x) => op.gemm(b, x, b.initializer('w', f32([1, 3], [1, 1, 1])), b.initializer('c', f32([1], [10])), { transB: true, alpha: 2 }));
    expect(r).toEqual({ dims: [2, 1], data: [2 * -2.5 + 10, 2 * 12 + 10] });
  });

  it('oneHot, argMax, cast, constantOfShape, expand', async () => {
    expect(await apply(x23, (b, x) => op.oneHot(b, op.argMax(b, x, 1), 4))).toEqual({ dims: [2, 4], data: [0, 0, 1, 0, 0, 0, 1, 0] });
    expect(await apply(x23, (b, x) => op.cast(b, x, 'int64'))).toEqual({ dims: [2, 3], data: [-2, 0, 0, 1, 3, 8] });
    expect(await apply(x23, (b, x) => op.constantOfShape(b, op.shape(b, x), 7))).toEqual({ dims: [2, 3], data: [7, 7, 7, 7, 7, 7] });
    expect(await apply(f32([2, 1], [1, 2]), (b, x) => op.expand(b, x, [2, 2]))).toEqual({ dims: [2, 2], data: [1, 1, 2, 2] });
    expect(await apply(i64([2], [3, 4]), (b, x) => op.mul(b, x, op.constScalar(b, 2, 'int64')))).toEqual({ dims: [2], data: [6, 8] });
  });

  it('batchNormTrain returns the normalized batch and updated running statistics', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 1, 1, 2]);
    const p = (n: string, v: number) => b.initializer(n, f32([1], [v]));
    const [y, rm, rv] = op.batchNormTrain(b, x, p('s', 1), p('b', 0), p('m', 0), p('v', 1), { momentum: 0.9, epsilon: 0 });
    for (const o of [y, rm, rv]) b.output(o, 'float32');
    const s = await createSession(b.toModel(), { threads: 1 });
    const out = await s.run({ x: f32([2, 1, 1, 2], [1, 3, 5, 7]) });
    await s.release();
    // batch mean 4, biased variance 5; running = 0.9·old + 0.1·batch.
    expect(out[rm].data[0]).toBeCloseTo(0.4, 6);
    const yv = Array.from(out[y].data as Float32Array);
    yv.forEach((v, i) => expect(v).toBeCloseTo(([1, 3, 5, 7][i] - 4) / Math.sqrt(5), 5));
    // onnxruntime updates the running variance with the biased batch variance (0.9 + 0.1·5), where
    // PyTorch uses the unbiased one (0.9 + 0.1·20/3): exact training needs the decomposed form.
    expect(out[rv].data[0]).toBeCloseTo(1.4, 6);
  });
});
