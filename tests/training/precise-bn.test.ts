import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/datasets/prng.ts';
import { createModel } from '../../src/models/index.ts';
import { attr, f32, WRITE_IR_VERSION, WRITE_OPSET, type Model, type TensorData } from '../../src/onnx/ir.ts';
import { Trainer } from '../../src/training/trainer.ts';

/**
 * "Precise BN" (Trainer.recalibrateBatchNorm): running statistics recomputed as the cumulative
 * average of each batch's statistics over a pass, as torch.optim.swa_utils.update_bn does.
 */

const C = 3;
const HW = 4;

/** input [N,3,4,4] → BatchNormalization → GlobalAveragePool → Flatten → Gemm → logits [N,2]: the BN's input is the batch itself. */
function bnModel(): Model {
  const init = new Map<string, TensorData>([
    ['bn.weight', f32([C], [1, 1, 1])],
    ['bn.bias', f32([C], [0, 0, 0])],
    ['bn.running_mean', f32([C], [0, 0, 0])],
    ['bn.running_var', f32([C], [1, 1, 1])],
    ['fc.weight', f32([2, C], [1, -1, 0.5, -0.5, 1, 0.25])],
    ['fc.bias', f32([2], [0, 0])],
    ['flat.shape', { dtype: 'int64', dims: [2], data: BigInt64Array.from([0n, -1n]) }],
  ]);
  return {
    irVersion: WRITE_IR_VERSION,
    opsetImports: [{ domain: '', version: WRITE_OPSET }],
    producerName: 'test',
    metadata: {},
    graph: {
      name: 'bn',
      inputs: [{ name: 'input', dtype: 'float32', shape: ['N', C, HW, HW] }],
      outputs: [{ name: 'logits', dtype: 'float32', shape: ['N', 2] }],
      initializers: init,
      valueInfo: [],
      nodes: [
        { name: 'bn', opType: 'BatchNormalization', domain: '', inputs: ['input', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var'], outputs: ['y'], attrs: { epsilon: attr.float(1e-5), momentum: attr.float(0.9) } },
        { name: 'gap', opType: 'GlobalAveragePool', domain: '', inputs: ['y'], outputs: ['pooled'], attrs: {} },
        { name: 'flat', opType: 'Reshape', domain: '', inputs: ['pooled', 'flat.shape'], outputs: ['feats'], attrs: {} },
        { name: 'fc', opType: 'Gemm', domain: '', inputs: ['feats', 'fc.weight', 'fc.bias'], outputs: ['logits'], attrs: { transB: attr.int(1) } },
      ],
    },
  };
}

function randomBatch(n: number, seed: number, shift: number[]): TensorData {
  const rnd = mulberry32(seed);
  const data = new Float32Array(n * C * HW * HW);
  for (let i = 0; i < n; i++) for (let c = 0; c < C; c++) for (let p = 0; p < HW * HW; p++) data[(i * C + c) * HW * HW + p] = shift[c] + (rnd() - 0.5) * (c + 1) * 2;
  return f32([n, C, HW, HW], data);
}

/** Per channel: the batch mean and unbiased variance over (N, H, W), in float64. */
function batchStats(t: TensorData): { mean: number[]; varU: number[] } {
  const [n, c, h, w] = t.dims;
  const d = t.data as Float32Array;
  const m = n * h * w;
  const mean: number[] = [];
  const varU: number[] = [];
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    for (let i = 0; i < n; i++) for (let p = 0; p < h * w; p++) s += d[(i * c + ch) * h * w + p];
    const mu = s / m;
    let ss = 0;
    for (let i = 0; i < n; i++) for (let p = 0; p < h * w; p++) ss += (d[(i * c + ch) * h * w + p] - mu) ** 2;
    mean.push(mu);
    varU.push(ss / (m - 1));
  }
  return { mean, varU };
}

async function* iterate(batches: TensorData[]): AsyncIterable<TensorData> {
  yield* batches;
}

const opts = { loss: { kind: 'cross_entropy' as const }, trainable: ['fc.weight', 'fc.bias', 'bn.weight', 'bn.bias'], optimizer: { kind: 'sgd' as const, momentum: 0.9, weightDecay: 0 }, threads: 1, nchwc: false };

describe('precise batch-norm statistics', () => {
  it('equal the cumulative average of the batch means and unbiased variances over the pass', async () => {
    const trainer = await Trainer.create(bnModel(), opts);
    try {
      const batches = [randomBatch(8, 1, [3, -2, 0.5]), randomBatch(8, 2, [2, -1, 0]), randomBatch(5, 3, [4, 0, 1])];
      // one image alone has no variance: it is skipped, not averaged in
      const used = await trainer.recalibrateBatchNorm(iterate([...batches, randomBatch(1, 4, [100, 100, 100])]));
      expect(used).toBe(3);
      const per = batches.map(batchStats);
      const st = trainer.getState().bnStats;
      const mean = Array.from(st['bn.running_mean'].data as Float32Array);
      const varU = Array.from(st['bn.running_var'].data as Float32Array);
      for (let c = 0; c < C; c++) {
        expect(mean[c]).toBeCloseTo(per.reduce((a, p) => a + p.mean[c], 0) / per.length, 5);
        expect(varU[c]).toBeCloseTo(per.reduce((a, p) => a + p.varU[c], 0) / per.length, 4);
      }
      // the parameters and the step are untouched
      expect(trainer.stepCount).toBe(0);
      expect(Array.from(trainer.getState().params['fc.weight'].data as Float32Array)).toEqual([1, -1, 0.5, -0.5, 1, 0.25]);
    } finally {
      await trainer.release();
    }
  });

  it('a model without batch norm is left as it is', async () => {
    const m = bnModel();
    const g = m.graph;
    g.nodes = g.nodes.filter((n) => n.opType !== 'BatchNormalization');
    g.nodes[0].inputs[0] = 'input';
    for (const k of ['bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var']) g.initializers.delete(k);
    const trainer = await Trainer.create(m, { ...opts, trainable: ['fc.weight', 'fc.bias'] });
    try {
      expect(trainer.hasBatchNorm).toBe(false);
      expect(await trainer.recalibrateBatchNorm(iterate([randomBatch(4, 1, [0, 0, 0])]))).toBe(0);
    } finally {
      await trainer.release();
    }
  });

  it('fixes a collapse: evaluation answers as the weights do once the statistics describe them again', async () => {
    const spec = createModel('small_cnn', { numClasses: 4, inputSize: 32, seed: 5 });
    const trainer = await Trainer.create(spec.model, { ...opts, trainable: spec.params, nchwc: true });
    try {
      const rnd = mulberry32(9);
      const images = f32([16, 3, 32, 32], Float32Array.from({ length: 16 * 3 * 32 * 32 }, () => rnd() * 2 - 1));
      // What the weights answer with batch statistics (a step at lr 0 leaves the parameters as they are).
      const target: TensorData = { dtype: 'int64', dims: [16], data: new BigInt64Array(16) };
      const live = (await trainer.step(images, target, 0)).logits.data as Float32Array;
      // The collapse: statistics far from what the layers see (as an exponential average over a
      // few hundred steps of a fast-changing model leaves them) saturate every image the same way.
      const s = trainer.getState();
      for (const [k, t] of Object.entries(s.bnStats)) {
        s.bnStats[k] = f32(t.dims, Float32Array.from(t.data as Float32Array, () => (k.endsWith('running_var') ? 1e-4 : 50)));
      }
      trainer.setState(s);
      const gap = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
      const scale = live.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const collapsed = (await trainer.evaluate(images)).data as Float32Array;
      // every image gets the same answer (the collapse), where the weights tell them apart
      const rowSpread = (d: Float32Array) => gap(d, Float32Array.from(d, (_, i) => d[i % 4]));
      expect(rowSpread(collapsed)).toBeLessThan(1e-6);
      expect(rowSpread(live)).toBeGreaterThan(0.05 * scale);
      expect(await trainer.recalibrateBatchNorm(iterate([images]))).toBe(1);
      // One batch: the running statistics are that batch's (variance unbiased, n ≥ 1024 values
      // per channel), so evaluation reproduces the batch-statistics answer.
      const fixed = (await trainer.evaluate(images)).data as Float32Array;
      expect(gap(fixed, live)).toBeLessThan(0.01 * scale + 1e-4);
    } finally {
      await trainer.release();
    }
  });
});
