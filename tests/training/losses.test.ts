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

/**
 * PyTorch's BCEWithLogitsLoss(pos_weight=p) as documented, term by term in float64 (log σ and
 * log(1 − σ) through log1p so the reference itself stays exact), on targets smoothed t' = t(1−ε) + ε/2.
 */
function torchBce(x: number[], t: number[], c: number, p: number[] | null, eps: number): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    const ts = t[i] * (1 - eps) + eps / 2;
    const logSig = -Math.log1p(Math.exp(-x[i]));
    const logOneMinusSig = -x[i] - Math.log1p(Math.exp(-x[i]));
    const w = p ? p[i % c] : 1;
    sum += -(w * ts * logSig + (1 - ts) * logOneMinusSig);
  }
  return sum / x.length;
}

describe('BCE with logits: pos_weight and label smoothing', () => {
  const x = [0.3, -1.2, 2.5, 0.1, 0.7, -0.4, 1.9, -2.2, 0.05, 0.6, -0.8, 1.1];
  const t = [1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0];
  const pw = [0.5, 3, 1, 2.5];

  for (const [what, p, eps] of [
    ['pos_weight', pw, 0],
    ['label smoothing 0.1', null, 0.1],
    ['pos_weight and label smoothing 0.2', pw, 0.2],
  ] as const) {
    it(`${what}: loss and gradient as PyTorch's formula`, async () => {
      const spec: LossSpec = { kind: 'bce_with_logits', labelSmoothing: eps, ...(p ? { posWeight: [...p] } : {}) };
      const r = await lossAndGrad(spec, f32([3, 4], x), f32([3, 4], t));
      const ref = (v: number[]) => torchBce(v, t, 4, p ? [...p] : null, eps);
      expectClose([r.loss], [ref(x)], 1e-6, 'loss');
      expectClose(r.grad, numericGrad(ref, x), 1e-4, 'dX');
    });
  }

  it('pos_weight of ones and smoothing 0 is the plain loss', async () => {
    const plain = await lossAndGrad({ kind: 'bce_with_logits' }, f32([3, 4], x), f32([3, 4], t));
    const ones = await lossAndGrad({ kind: 'bce_with_logits', posWeight: [1, 1, 1, 1] }, f32([3, 4], x), f32([3, 4], t));
    expectClose([ones.loss], [plain.loss], 1e-6, 'loss');
    expectClose(ones.grad, plain.grad, 1e-6, 'dX');
  });

  it('stays finite with pos_weight for logits of ±100', async () => {
    // Per element: t=1 at x=100 → 0; t=0 at x=−100 → 0; t=0 at x=100 → 100; t=1 at x=−100 → p·100 = 300.
    // Mean 100; gradient (p·t·(σ−1) + (1−t)·σ)/4 = 0, 0, 0.25, 3·(−1)/4.
    const r = await lossAndGrad({ kind: 'bce_with_logits', posWeight: [2, 2, 2, 3] }, f32([1, 4], [100, -100, 100, -100]), f32([1, 4], [1, 0, 0, 1]));
    expectClose([r.loss], [100], 1e-6, 'loss');
    expectClose(r.grad, [0, 0, 0.25, -0.75], 1e-6, 'dX');
  });

  it('refuses a positive-weight list of the wrong length', () => {
    const b = new GraphBuilder();
    expect(() => appendLoss(b, { kind: 'bce_with_logits', posWeight: [1, 2] }, 'x', 't', 3)).toThrow(/2 positive weights for 3 outputs/);
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

  it('smooth L1 with beta 0 is exactly L1', async () => {
    const l1 = (x: number[]) => x.reduce((a, v, i) => a + Math.abs(v - tgt[i]), 0) / x.length;
    const r = await lossAndGrad({ kind: 'smooth_l1', beta: 0 }, f32([2, 3], pred), f32([2, 3], tgt));
    expectClose([r.loss], [l1(pred)], 1e-6, 'loss');
    // d|x − t|/dx = sign(x − t)/n: every residual here is non-zero
    expectClose(r.grad, pred.map((v, i) => Math.sign(v - tgt[i]) / pred.length), 1e-6, 'dX');
  });

  for (const delta of [1, 0.3, 2.5]) {
    it(`huber, delta ${delta} (PyTorch's HuberLoss: delta · SmoothL1(beta = delta))`, async () => {
      const ref = (x: number[]) =>
        x.reduce((a, v, i) => {
          const d = Math.abs(v - tgt[i]);
          return a + (d < delta ? 0.5 * d * d : delta * (d - 0.5 * delta));
        }, 0) / x.length;
      const r = await lossAndGrad({ kind: 'huber', delta }, f32([2, 3], pred), f32([2, 3], tgt));
      expectClose([r.loss], [ref(pred)], 1e-6, 'loss');
      expectClose(r.grad, numericGrad(ref, pred), 1e-4, 'dX');
    });
  }

  it('huber is delta times smooth L1 with beta = delta', async () => {
    const h = await lossAndGrad({ kind: 'huber', delta: 0.3 }, f32([2, 3], pred), f32([2, 3], tgt));
    const s = await lossAndGrad({ kind: 'smooth_l1', beta: 0.3 }, f32([2, 3], pred), f32([2, 3], tgt));
    expectClose([h.loss], [0.3 * s.loss], 1e-6, 'loss');
    expectClose(h.grad, s.grad.map((g) => 0.3 * g), 1e-6, 'dX');
  });

  it('huber refuses a delta of 0, as PyTorch', () => {
    const b = new GraphBuilder();
    expect(() => appendLoss(b, { kind: 'huber', delta: 0 }, 'x', 't', 3)).toThrow();
  });
});
