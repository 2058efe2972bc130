import { z } from 'zod';
import type { GraphBuilder } from '../onnx/builder.ts';
import { attr } from '../onnx/ir.ts';
import { constScalar, reshape } from '../onnx/ops.ts';

/**
 * Optimizer updates appended as graph ops after the backward pass, following PyTorch 1.13's
 * single-tensor implementations (torch/optim/sgd.py, adam.py, adamw.py) operation for operation.
 * New parameters and new state are plain values the step graph exposes as outputs; the runner
 * feeds them back as the next step's inputs. State starts at zero, which for SGD's momentum
 * buffer with dampening 0 gives PyTorch's "first step copies the gradient" exactly.
 */

export const optimizerSpecSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('sgd'),
    momentum: z.number().min(0).default(0),
    nesterov: z.boolean().default(false),
    weightDecay: z.number().min(0).default(0),
  }),
  z.object({
    kind: z.enum(['adam', 'adamw']),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.999),
    eps: z.number().positive().default(1e-8),
    weightDecay: z.number().min(0).default(0),
  }),
]);
export type OptimizerSpec = z.input<typeof optimizerSpecSchema>;

export interface ParamGrad {
  param: string;
  grad: string;
  dims: number[];
  /** false for parameters excluded from weight decay (e.g. norms and biases in some recipes). */
  decay: boolean;
  /**
   * The parameter's learning rate as a multiple of `lr` (default 1): PyTorch's param groups, e.g.
   * a backbone trained at a tenth of the head's rate. Weight decay follows the group's rate, as in
   * PyTorch (AdamW decays by lr·wd of the group).
   */
  lrScale?: number;
}

export interface OptimizerState {
  /** A state value's input name, the parameter it belongs to, and the output holding its next value. */
  name: string;
  param: string;
  out: string;
  dims: number[];
}

export interface OptimizerUpdate {
  /** param input → updated param value */
  params: Record<string, string>;
  state: OptimizerState[];
}

/** Whether the optimizer needs the step count (bias correction) as a graph input. */
export function needsStep(spec: OptimizerSpec): boolean {
  return spec.kind !== 'sgd';
}

/**
 * Scalars reshaped to [1, …, 1] of a tensor's rank, one Reshape per (scalar, rank). onnxruntime
 * broadcasts a lower-rank scalar against a tensor ending in unit dims (the [O, C, 1, 1] weights of
 * 1×1 convs) one element at a time: a 576×144×1×1 Mul by a rank-0 scalar took 0.80 ms, by a
 * [1, 1, 1, 1] one 0.012 ms (2 threads). MobileNetV3-Small's update has 127 such Muls.
 */
function scalarsAtRank(b: GraphBuilder): (scalar: string, rank: number) => string {
  const made = new Map<string, string>();
  return (scalar, rank) => {
    if (rank === 0) return scalar;
    const key = `${scalar}\u0000${rank}`;
    let v = made.get(key);
    if (v === undefined) {
      v = reshape(b, scalar, new Array<number>(rank).fill(1));
      made.set(key, v);
    }
    return v;
  };
}

/**
 * Appends the update of every parameter. `lr` is a float scalar input; `step` (Adam/AdamW only)
 * is the 1-based count of the step being taken, as a float scalar input.
 */
export function appendOptimizer(
  b: GraphBuilder,
  spec: OptimizerSpec,
  entries: ParamGrad[],
  lr: string,
  step?: string,
): OptimizerUpdate {
  const s = optimizerSpecSchema.parse(spec);
  for (const e of entries) {
    if (e.lrScale !== undefined && !(e.lrScale > 0 && Number.isFinite(e.lrScale))) throw new Error(`lrScale of '${e.param}' must be positive, got ${e.lrScale}`);
  }
  /** The group's learning rate: `lr`, or `lr · scale` (one Mul per distinct scale). */
  const lrs = new Map<number, string>([[1, lr]]);
  const lrOf = (e: ParamGrad): string => {
    const k = e.lrScale ?? 1;
    let v = lrs.get(k);
    if (v === undefined) lrs.set(k, (v = b.op('Mul', [lr, constScalar(b, k)])));
    return v;
  };
  /** Per group, a value derived from its rate, made once. */
  const perGroup = (f: (groupLr: string) => string) => {
    const made = new Map<string, string>();
    return (e: ParamGrad): string => {
      const g = lrOf(e);
      let v = made.get(g);
      if (v === undefined) made.set(g, (v = f(g)));
      return v;
    };
  };
  const negLrOf = perGroup((g) => b.op('Neg', [g]));
  const at = scalarsAtRank(b);
  const update: OptimizerUpdate = { params: {}, state: [] };
  const stateInput = (e: ParamGrad, kind: string): string => {
    const name = b.fresh(`${e.param}.${kind}`);
    b.input(name, 'float32', e.dims);
    return name;
  };

  if (s.kind === 'sgd') {
    const wd = s.weightDecay > 0 ? constScalar(b, s.weightDecay) : '';
    const mom = s.momentum > 0 ? constScalar(b, s.momentum) : '';
    for (const e of entries) {
      const r = e.dims.length;
      // d_p = g + wd·p
      let dp = wd && e.decay ? b.op('Add', [e.grad, b.op('Mul', [e.param, at(wd, r)])]) : e.grad;
      if (mom) {
        // buf = momentum·buf + d_p (dampening 0); d_p = nesterov ? d_p + momentum·buf : buf
        const buf = stateInput(e, 'momentum_buffer');
        const bufOut = b.op('Add', [b.op('Mul', [buf, at(mom, r)]), dp]);
        update.state.push({ name: buf, param: e.param, out: bufOut, dims: e.dims });
        dp = s.nesterov ? b.op('Add', [dp, b.op('Mul', [bufOut, at(mom, r)])]) : bufOut;
      }
      // p = p − lr·d_p
      update.params[e.param] = b.op('Add', [e.param, b.op('Mul', [dp, at(negLrOf(e), r)])]);
    }
    return update;
  }

  if (!step) throw new Error(`${s.kind}: the step count input is required for bias correction`);
  const beta1 = constScalar(b, s.beta1);
  const beta2 = constScalar(b, s.beta2);
  const oneMinusBeta1 = constScalar(b, 1 - s.beta1);
  const oneMinusBeta2 = constScalar(b, 1 - s.beta2);
  const one = constScalar(b, 1);
  const eps = constScalar(b, s.eps);
  const wd = s.weightDecay > 0 ? constScalar(b, s.weightDecay) : '';
  // step_size = lr / (1 − β1^t);  bias_correction2_sqrt = sqrt(1 − β2^t)
  const bc1 = b.op('Sub', [one, b.op('Pow', [beta1, step])]);
  const bc2Sqrt = b.op('Sqrt', [b.op('Sub', [one, b.op('Pow', [beta2, step])])]);
  const negStepSizeOf = perGroup((g) => b.op('Neg', [b.op('Div', [g, bc1])]));
  // AdamW: p·(1 − lr·wd) before the Adam step
  const decayFactorOf = perGroup((g) => (s.kind === 'adamw' && wd ? b.op('Sub', [one, b.op('Mul', [g, wd])]) : ''));

  for (const e of entries) {
    const r = e.dims.length;
    // Adam: g = g + wd·p (L2 in the gradient)
    const g = s.kind === 'adam' && wd && e.decay ? b.op('Add', [e.grad, b.op('Mul', [e.param, at(wd, r)])]) : e.grad;
    const decayFactor = decayFactorOf(e);
    const p = decayFactor && e.decay ? b.op('Mul', [e.param, at(decayFactor, r)]) : e.param;
    const m = stateInput(e, 'exp_avg');
    const v = stateInput(e, 'exp_avg_sq');
    // m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
    const mOut = b.op('Add', [b.op('Mul', [m, at(beta1, r)]), b.op('Mul', [g, at(oneMinusBeta1, r)])]);
    const vOut = b.op('Add', [b.op('Mul', [v, at(beta2, r)]), b.op('Mul', [b.op('Mul', [g, g]), at(oneMinusBeta2, r)])]);
    update.state.push({ name: m, param: e.param, out: mOut, dims: e.dims }, { name: v, param: e.param, out: vOut, dims: e.dims });
    // p = p − step_size · m / (sqrt(v)/sqrt(bc2) + eps)
    const denom = b.op('Add', [b.op('Div', [b.op('Sqrt', [vOut]), at(bc2Sqrt, r)]), at(eps, r)]);
    update.params[e.param] = b.op('Add', [p, b.op('Mul', [b.op('Div', [mOut, denom]), at(negStepSizeOf(e), r)])]);
  }
  return update;
}

/**
 * PyTorch's clip_grad_norm_(max_norm), as ops between backward and the update:
 *   total = sqrt(Σ‖g‖²);  g ← g · min(max_norm / (total + 1e-6), 1)
 * Returns the clipped gradients (same order) and the total norm before clipping. `ranks`, each
 * gradient's rank, lets the scale meet it at that rank (scalarsAtRank).
 */
export function appendGradClip(b: GraphBuilder, grads: string[], maxNorm: number, ranks?: number[]): { grads: string[]; totalNorm: string } {
  if (grads.length === 0) throw new Error('clip: no gradients');
  const squares = grads.map((g) => b.op('ReduceSumSquare', [g], { keepdims: attr.int(0) }));
  const total = b.op('Sqrt', [squares.length === 1 ? squares[0] : b.op('Sum', squares)]);
  const coef = b.op('Div', [constScalar(b, maxNorm), b.op('Add', [total, constScalar(b, 1e-6)])]);
  const clamped = b.op('Min', [coef, constScalar(b, 1)]);
  const at = scalarsAtRank(b);
  return { grads: grads.map((g, i) => b.op('Mul', [g, at(clamped, ranks?.[i] ?? 0)])), totalNorm: total };
}
