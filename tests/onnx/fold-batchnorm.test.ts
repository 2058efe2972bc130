import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { decodeModel } from '../../src/onnx/codec.ts';
import { batchNormToInference, foldBatchNorm } from '../../src/onnx/fold-batchnorm.ts';
import { attr, f32, type Model, type TensorData } from '../../src/onnx/ir.ts';
import * as op from '../../src/onnx/ops.ts';
import { createSession } from '../../src/runtime/session.ts';
import { interopFixtures, maxAbsDiff } from './fixtures.ts';

function rand(dims: number[], seed: number, lo = -1, hi = 1) {
  let s = seed;
  const n = dims.reduce((a, b) => a * b, 1);
  return f32(dims, Array.from({ length: n }, () => lo + ((s = (s * 16807) % 2147483647) / 2147483647) * (hi - lo)));
}

async function runOnce(model: Model, feeds: Record<string, TensorData>) {
  const s = await createSession(model, { threads: 1 });
  const out = await s.run(feeds);
  await s.release();
  return out;
}
const countOps = (m: Model, opType: string) => m.graph.nodes.filter((n) => n.opType === opType).length;

describe('batch-norm folding on the PyTorch training-mode export', () => {
  const fx = interopFixtures().find((f) => f.exported_in_training_mode)!;

  it('matches PyTorch eval output after switching BN to inference and after folding', async () => {
    const model = decodeModel(fx.bytes);
    const feeds = { [fx.input_name]: f32(fx.input.shape, fx.input.data) };
    const expected = fx.expected_eval_output.data;
    // As exported, BN normalizes with batch statistics: far from eval output.
    const raw = (await runOnce(model, feeds))[fx.output_name];
    expect(maxAbsDiff(raw.data as Float32Array, expected)).toBeGreaterThan(1e-2);

    const inference = batchNormToInference(model);
    expect(countOps(inference, 'BatchNormalization')).toBe(3);
    const yi = (await runOnce(inference, feeds))[fx.output_name];
    expect(maxAbsDiff(yi.data as Float32Array, expected)).toBeLessThanOrEqual(1e-4);

    const folded = foldBatchNorm(inference);
    expect(countOps(folded, 'BatchNormalization')).toBe(0);
    expect(countOps(folded, 'Conv')).toBe(3);
    expect([...folded.graph.initializers.keys()].some((k) => k.includes('running_mean'))).toBe(false);
    const yf = (await runOnce(folded, feeds))[fx.output_name];
    expect(maxAbsDiff(yf.data as Float32Array, expected)).toBeLessThanOrEqual(1e-4);
    // The argument is untouched.
    expect(countOps(model, 'BatchNormalization')).toBe(3);
  });
});

describe('foldBatchNorm on built graphs', () => {
  function convBn(o: { group: number; bias: boolean; shareConvOutput?: boolean; trainingMode?: boolean }) {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 4, 6, 6]);
    const w = b.initializer('w', rand([8, 4 / o.group, 3, 3], 3));
    const c = op.conv(b, x, w, o.bias ? b.initializer('cb', rand([8], 5)) : undefined, { pads: [1, 1, 1, 1], group: o.group });
    const p = (n: string, seed: number, lo = -1, hi = 1) => b.initializer(n, rand([8], seed, lo, hi));
    const bnArgs = [c, p('gamma', 7, 0.5, 2), p('beta', 11), p('mean', 13), p('var', 17, 0.1, 3)] as const;
    let y: string;
    if (o.trainingMode) {
      y = op.batchNormTrain(b, ...bnArgs, { epsilon: 1e-3 })[0];
      b.graph.nodes[b.graph.nodes.length - 1].outputs = [y];
    } else y = op.batchNorm(b, ...bnArgs, { epsilon: 1e-3 });
    const r = op.relu(b, y);
    b.output(r, 'float32');
    if (o.shareConvOutput) b.output(op.neg(b, c), 'float32');
    return b.toModel();
  }
  const feeds = { x: rand([2, 4, 6, 6], 99, -2, 2) };

  for (const [label, o] of [['dense with bias', { group: 1, bias: true }], ['dense without bias', { group: 1, bias: false }],
    ['grouped', { group: 2, bias: true }], ['depthwise', { group: 4, bias: false }]] as const) {
    it(`folds a ${label} conv within 1e-4`, async () => {
      const model = convBn(o);
      const folded = foldBatchNorm(model);
      expect(countOps(folded, 'BatchNormalization')).toBe(0);
      expect([...folded.graph.initializers.keys()].sort()).toEqual(['Conv_bias_bnfolded', 'w_bnfolded']);
      const [a, b] = [await runOnce(model, feeds), await runOnce(folded, feeds)];
      const name = model.graph.outputs[0].name;
      expect(maxAbsDiff(b[name].data as Float32Array, a[name].data as Float32Array)).toBeLessThanOrEqual(1e-4);
    });
  }

  it('leaves BN alone when the conv output is read elsewhere or BN is in training mode', () => {
    expect(countOps(foldBatchNorm(convBn({ group: 1, bias: true, shareConvOutput: true })), 'BatchNormalization')).toBe(1);
    const training = convBn({ group: 1, bias: true, trainingMode: true });
    expect(countOps(foldBatchNorm(training), 'BatchNormalization')).toBe(1);
    const converted = batchNormToInference(training);
    expect(converted.graph.nodes.find((n) => n.opType === 'BatchNormalization')?.attrs.training_mode).toBeUndefined();
    expect(countOps(foldBatchNorm(converted), 'BatchNormalization')).toBe(0);
  });

  it('keeps BN whose statistics outputs are read', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3, 4, 4]);
    const p = (n: string) => b.initializer(n, f32([3], [1, 1, 1]));
    const c = op.conv(b, x, b.initializer('w', rand([3, 3, 1, 1], 1)));
    const [y, m] = op.batchNormTrain(b, c, p('s'), p('b'), p('m'), p('v'));
    b.output(y, 'float32');
    b.output(m, 'float32');
    const model = b.toModel();
    expect(batchNormToInference(model).graph.nodes[1].outputs).toHaveLength(3);
    expect(batchNormToInference(model).graph.nodes[1].attrs.training_mode).toEqual(attr.int(1));
    expect(countOps(foldBatchNorm(model), 'BatchNormalization')).toBe(1);
  });
});
