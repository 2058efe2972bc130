import { describe, expect, it } from 'vitest';
import { backward } from '../../src/autodiff/index.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { f32, i64, type TensorData } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';
import { appendLoss, type LossSpec } from '../../src/training/losses.ts';
import { expectClose, loadOpCase, toF32, values } from './helpers.ts';

/** The loss and d loss / d logits for logits [N, C], through the graph and onnxruntime. */
async function lossAndGrad(spec: LossSpec, logits: TensorData, target: TensorData): Promise<{ loss: number; grad: number[] }> {
  const b = new GraphBuilder();
  const [n, c] = logits.dims;
  b.input('logits', 'float32', [n, c]);
  b.input('target', target.dtype, target.dims);
  const loss = appendLoss(b, spec, 'logits', 'target', c);
  const grad = backward(b, { loss, wrt: ['logits'] }).get('logits') ?? '';
  b.output(loss, 'float32', []);
  b.output(grad, 'float32', [n, c]);
  const s = await createSession(b.toModel(), { threads: 1 });
  const out = await s.run({ logits, target });
  await s.release();
  expect(out[loss].dims).toEqual([]);
  return { loss: values(out[loss])[0], grad: values(out[grad]) };
}

/** Central differences of a float64 reference loss: an independent check of every gradient. */
function numericGrad(f: (x: number[]) => number, x: number[], h = 1e-6): number[] {
  return x.map((_, i) => {
    const up = [...x];
    const down = [...x];
    up[i] += h;
    down[i] -= h;
    return (f(up) - f(down)) / (2 * h);
  });
}

/** PyTorch's CrossEntropyLoss as documented: (1−ε)·weighted NLL mean + ε/C·weighted smooth term, both over Σ w_y. */
function torchCrossEntropy(x: number[], n: number, c: number, y: number[], eps: number, w: number[]): number {
  let nll = 0;
  let smooth = 0;
  let wsum = 0;
  for (let i = 0; i < n; i++) {
    const row = x.slice(i * c, i * c + c);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
    nll += -w[y[i]] * (row[y[i]] - lse);
    smooth += row.reduce((a, v, j) => a - w[j] * (v - lse), 0);
    wsum += w[y[i]];
  }
  return (1 - eps) * (nll / wsum) + (eps / c) * (smooth / wsum);
}

const LOGITS = [0.3, -1.2, 2.5, 0.1, 0.7, -0.4, 1.9, -2.2, 0.05, 0.6, -0.8, 1.1];
const TARGET_IDX = [2, 0, 1];

describe('cross-entropy', () => {
  it('matches PyTorch with label smoothing 0.1 (loss and gradient)', async () => {
    const fx = loadOpCase('cross_entropy_label_smoothing.json');
    const target = i64([fx.target.length], fx.target as number[]);
    const r = await lossAndGrad({ kind: 'cross_entropy', labelSmoothing: 0.1 }, toF32(fx.inputs.X), target);
    expectClose([r.loss], fx.output.data, 1e-5, 'loss');
    expectClose(r.grad, fx.grads.X.data, 1e-4, 'dX');
  });

  it('without smoothing is the mean negative log-likelihood', async () => {
    const r = await lossAndGrad({ kind: 'cross_entropy' }, f32([3, 4], LOGITS), i64([3], TARGET_IDX));
    const ref = (x: number[]) => torchCrossEntropy(x, 3, 4, TARGET_IDX, 0, [1, 1, 1, 1]);
    expectClose([r.loss], [ref(LOGITS)], 1e-6, 'loss');
    expectClose(r.grad, numericGrad(ref, LOGITS), 1e-4, 'dX');
  });

  it('with class weights and smoothing follows PyTorch’s weighted-mean semantics', async () => {
    const w = [0.5, 2, 1, 3];
    const r = await lossAndGrad({ kind: 'cross_entropy', labelSmoothing: 0.2, classWeights: w }, f32([3, 4], LOGITS), i64([3], TARGET_IDX));
    const ref = (x: number[]) => torchCrossEntropy(x, 3, 4, TARGET_IDX, 0.2, w);
    expectClose([r.loss], [ref(LOGITS)], 1e-6, 'loss');
    expectClose(r.grad, numericGrad(ref, LOGITS), 1e-4, 'dX');
  });

  it('refuses a weight list of the wrong length', () => {
    const b = new GraphBuilder();
    expect(() => appendLoss(b, { kind: 'cross_entropy', classWeights: [1, 2] }, 'x', 't', 3)).toThrow(/2 class weights for 3 classes/);
  });
});

describe('BCE with logits', () => {
  it('matches PyTorch (loss and gradient)', async () => {
    const fx = loadOpCase('bce_with_logits.json');
    const t = fx.target as number[][];
    const r = await lossAndGrad({ kind: 'bce_with_logits' }, toF32(fx.inputs.X), f32([t.length, t[0].length], t.flat()));
    expectClose([r.loss], fx.output.data, 1e-5, 'loss');
    expectClose(r.grad, fx.grads.X.data, 1e-4, 'dX');
  });

  it('stays finite and exact for logits of ±100', async () => {
    const r = await lossAndGrad({ kind: 'bce_with_logits' }, f32([1, 4], [100, -100, 100, -100]), f32([1, 4], [1, 0, 0, 1]));
    // ≈ 0, 0, 100, 100 → mean 50; gradients (σ(x) − t)/4 = 0, 0, 0.25, −0.25
    expectClose([r.loss], [50], 1e-6, 'loss');
    expectClose(r.grad, [0, 0, 0.25, -0.25], 1e-6, 'dX');
  });
});

describe('regression losses', () => {
  const pred = [0.5, -1, 2, 0.2, 3, -0.1];
  const tgt = [0, -1.5, 0.5, 0.25, 1, 0.4];

  it('MSE', async () => {
    const ref = (x: number[]) => x.reduce((a, v, i) => a + (v - tgt[i]) ** 2, 0) / x.length;
    const r = await lossAndGrad({ kind: 'mse' }, f32([2, 3], pred), f32([2, 3], tgt));
    expectClose([r.loss], [ref(pred)], 1e-6, 'loss');
    expectClose(r.grad, numericGrad(ref, pred), 1e-4, 'dX');
  });

  for (const beta of [1, 0.3, 0]) {
    it(`smooth L1, beta ${beta}`, async () => {
      const ref = (x: number[]) =>
        x.reduce((a, v, i) => {
          const d = Math.abs(v - tgt[i]);
          return a + (d < beta ? (0.5 * d * d) / beta : d - 0.5 * beta);
        }, 0) / x.length;
      const r = await lossAndGrad({ kind: 'smooth_l1', beta }, f32([2, 3], pred), f32([2, 3], tgt));
      expectClose([r.loss], [ref(pred)], 1e-6, 'loss');
      expectClose(r.grad, numericGrad(ref, pred), 1e-4, 'dX');
    });
  }
});
