import { z } from 'zod';
import type { GraphBuilder } from '../onnx/builder.ts';
import { attr, type DataType, type Dim, f32 } from '../onnx/ir.ts';
import { constant, constScalar, oneHot } from '../onnx/ops.ts';

/**
 * Losses appended to a model's graph. Each is composed only of ops that already have gradient
 * rules (LogSoftmax, Relu, Exp, Log, arithmetic, ReduceMean), so autodiff needs no rule of its own
 * for a loss. Absolute values are written as Relu(z) + Relu(-z) for the same reason; its gradient
 * at 0 is 0, as PyTorch's sign(0).
 */

export const lossSpecSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('cross_entropy'),
    labelSmoothing: z.number().min(0).max(1).default(0),
    /** Per-class weights, PyTorch's `weight=`: the mean divides by the summed weights of the targets. */
    classWeights: z.array(z.number().nonnegative()).optional(),
  }),
  z.object({
    kind: z.literal('bce_with_logits'),
    /** Per-output weights of the positive term, PyTorch's `pos_weight=` (broadcast over the batch). */
    posWeight: z.array(z.number().nonnegative()).optional(),
    /** Targets pulled towards ½: t' = t·(1 − ε) + ε/2 (PyTorch's BCE has none; this is the usual form). */
    labelSmoothing: z.number().min(0).max(1).default(0),
  }),
  z.object({ kind: z.literal('mse') }),
  z.object({ kind: z.literal('smooth_l1'), beta: z.number().nonnegative().default(1) }),
  /** PyTorch's HuberLoss(delta) = delta · SmoothL1Loss(beta = delta); delta must be positive, as there. */
  z.object({ kind: z.literal('huber'), delta: z.number().positive().default(1) }),
]);
export type LossSpec = z.input<typeof lossSpecSchema>;

export interface LossTarget {
  dtype: DataType;
  shape: Dim[];
}

/** The `target` input a loss expects for logits of shape `[N, C]`. */
export function lossTarget(spec: LossSpec, logitsShape: Dim[]): LossTarget {
  return spec.kind === 'cross_entropy'
    ? { dtype: 'int64', shape: [logitsShape[0] ?? 'N'] }
    : { dtype: 'float32', shape: [...logitsShape] };
}

/** Appends `spec` over `logits` ([N, C]) and `target`; returns the scalar loss value's name. */
export function appendLoss(b: GraphBuilder, spec: LossSpec, logits: string, target: string, numClasses: number): string {
  const s = lossSpecSchema.parse(spec);
  switch (s.kind) {
    case 'cross_entropy':
      return crossEntropy(b, logits, target, numClasses, s.labelSmoothing, s.classWeights);
    case 'bce_with_logits':
      return bceWithLogits(b, logits, target, numClasses, s.labelSmoothing, s.posWeight);
    case 'mse': {
      const d = b.op('Sub', [logits, target]);
      return meanAll(b, b.op('Mul', [d, d]));
    }
    case 'smooth_l1':
      return smoothL1(b, logits, target, s.beta);
    case 'huber':
      return huber(b, logits, target, s.delta);
  }
}

function meanAll(b: GraphBuilder, x: string): string {
  return b.op('ReduceMean', [x], { keepdims: attr.int(0) });
}

function abs(b: GraphBuilder, x: string): string {
  return b.op('Add', [b.op('Relu', [x]), b.op('Relu', [b.op('Neg', [x])])]);
}

/**
 * PyTorch's CrossEntropyLoss(weight=w, label_smoothing=ε), reduction mean:
 *   (1-ε)·Σ_i -w_{y_i}·logp_{i,y_i} / Σ_i w_{y_i}  +  (ε/C)·Σ_i Σ_c -w_c·logp_{i,c} / Σ_i w_{y_i}
 * which is one sum with the smoothed target q = (1-ε)·onehot + ε/C:
 *   -Σ_i Σ_c q_{i,c}·w_c·logp_{i,c} / Σ_i w_{y_i}      (w ≡ 1 gives the plain mean over N).
 * Both sums are taken as means over [N, C] so their ratio needs no batch size.
 */
function crossEntropy(b: GraphBuilder, logits: string, target: string, c: number, eps: number, weights?: number[]): string {
  if (weights && weights.length !== c) throw new Error(`cross_entropy: ${weights.length} class weights for ${c} classes`);
  const logp = b.op('LogSoftmax', [logits], { axis: attr.int(1) });
  const q = oneHot(b, target, c, eps / c, 1 - eps + eps / c);
  if (!weights) {
    // mean over [N, C] times C = mean over N of the per-sample sum
    return b.op('Mul', [meanAll(b, b.op('Mul', [q, logp])), constScalar(b, -c)]);
  }
  const w = constant(b, f32([c], weights));
  const numer = meanAll(b, b.op('Mul', [b.op('Mul', [q, w]), logp]));
  const hot = oneHot(b, target, c);
  const denom = meanAll(b, b.op('Mul', [hot, w]));
  return b.op('Div', [b.op('Neg', [numer]), denom]);
}

/**
 * PyTorch's BCEWithLogitsLoss(pos_weight=p), reduction mean, on smoothed targets t' = t·(1−ε) + ε/2:
 *   ℓ = −[p·t'·log σ(x) + (1−t')·log(1−σ(x))] = p·t'·softplus(−x) + (1−t')·softplus(x)
 * and with softplus(−x) = softplus(x) − x this is
 *   ℓ = (1 + (p−1)·t')·softplus(x) − p·t'·x,     softplus(x) = max(x,0) + log(1 + e^{−|x|})
 * which never exponentiates a positive number (stable for any x); p ≡ 1 gives softplus(x) − t'·x.
 */
function bceWithLogits(b: GraphBuilder, x: string, t: string, c: number, eps: number, posWeight?: number[]): string {
  if (posWeight && posWeight.length !== c) throw new Error(`bce_with_logits: ${posWeight.length} positive weights for ${c} outputs`);
  const ts = eps === 0 ? t : b.op('Add', [b.op('Mul', [t, constScalar(b, 1 - eps)]), constScalar(b, eps / 2)]);
  const softplusNegAbs = b.op('Log', [b.op('Add', [b.op('Exp', [b.op('Neg', [abs(b, x)])]), constScalar(b, 1)])]);
  const softplus = b.op('Add', [b.op('Relu', [x]), softplusNegAbs]);
  if (!posWeight) return meanAll(b, b.op('Sub', [softplus, b.op('Mul', [x, ts])]));
  // p·t' is a [N, C] tensor (p broadcast as [C]); 1 + (p−1)·t' = 1 − t' + p·t'.
  const pt = b.op('Mul', [ts, constant(b, f32([c], posWeight))]);
  const coef = b.op('Add', [b.op('Sub', [constScalar(b, 1), ts]), pt]);
  return meanAll(b, b.op('Sub', [b.op('Mul', [coef, softplus]), b.op('Mul', [pt, x])]));
}

/**
 * PyTorch's SmoothL1Loss(beta): d = |x − t|; 0.5·d²/β where d < β, else d − 0.5·β. With
 * m = min(d, β) = d − relu(d − β) both branches are 0.5·m²/β + relu(d − β), no select needed.
 * β = 0 is plain L1, as in PyTorch.
 */
function smoothL1(b: GraphBuilder, x: string, t: string, beta: number): string {
  const d = abs(b, b.op('Sub', [x, t]));
  if (beta === 0) return meanAll(b, d);
  const excess = b.op('Relu', [b.op('Sub', [d, constScalar(b, beta)])]);
  const m = b.op('Sub', [d, excess]);
  const quad = b.op('Mul', [b.op('Mul', [m, m]), constScalar(b, 0.5 / beta)]);
  return meanAll(b, b.op('Add', [quad, excess]));
}

/**
 * PyTorch's HuberLoss(delta): d = |x − t|; 0.5·d² where d < δ, else δ·(d − 0.5·δ) — δ times
 * SmoothL1(β = δ). With m = min(d, δ) = d − relu(d − δ) both branches are 0.5·m² + δ·relu(d − δ).
 */
function huber(b: GraphBuilder, x: string, t: string, delta: number): string {
  const d = abs(b, b.op('Sub', [x, t]));
  const excess = b.op('Relu', [b.op('Sub', [d, constScalar(b, delta)])]);
  const m = b.op('Sub', [d, excess]);
  const quad = b.op('Mul', [b.op('Mul', [m, m]), constScalar(b, 0.5)]);
  return meanAll(b, b.op('Add', [quad, b.op('Mul', [excess, constScalar(b, delta)])]));
}
