import { badInput } from '../kernel/errors.ts';
import { FORMATS, getFormat, type FormatName } from './formats/index.ts';

/**
 * Compares a variant's primary outputs with the reference (the training engine's eval graph with
 * the task's post-processing, on the same images) and decides pass/fail per variant. The
 * tolerances, with their reasons, live with each format (src/export/formats/) per kind of output:
 * - `probabilities`: a distribution over classes (softmax) — argmax agreement means something;
 * - `scores`: independent scores in [0, 1] (sigmoid per label) — no argmax, absolute errors;
 * - `values`: numbers in their own units (regression) — errors measured in each output's scale
 *   (the target's standard deviation), so a tolerance reads the same for millimetres or kilograms.
 */

export type Variant = FormatName;
export type OutputKind = 'probabilities' | 'scores' | 'values';

export interface Tolerance {
  maxAbsError?: number;
  maxRmse?: number;
  minCosine?: number;
  minArgmaxAgreement?: number;
}

/** The `probabilities` tolerance of every format (classification's). */
export const TOLERANCES = Object.fromEntries(FORMATS.map((f) => [f.name, f.tolerances.probabilities.tolerance])) as Record<Variant, Tolerance>;

export interface Comparison {
  count: number;
  max_abs_error: number;
  rmse: number;
  /** Mean over images of the cosine similarity of the two output vectors. */
  cosine: number;
  /** Fraction of images whose top class is the same; null where the outputs are not a distribution. */
  argmax_agreement: number | null;
}

export interface Validation extends Comparison {
  passed: boolean;
  tolerance: Tolerance;
  /** Which criteria failed, readable. Empty when passed. */
  failures: string[];
}

export interface CompareOptions {
  /** Compute argmax agreement (default true). */
  argmax?: boolean;
  /** Per-output scale the differences are divided by (default 1 each). */
  scale?: readonly number[];
}

function argmax(a: ArrayLike<number>, from: number, n: number): number {
  let best = from;
  for (let i = from + 1; i < from + n; i++) if (a[i] > a[best]) best = i;
  return best - from;
}

/** `reference` and `actual` are row-major [count, numOutputs]. */
export function compareOutputs(reference: ArrayLike<number>, actual: ArrayLike<number>, numClasses: number, opts: CompareOptions = {}): Comparison {
  if (reference.length !== actual.length) throw badInput(`outputs differ in size: ${reference.length} vs ${actual.length}`);
  if (numClasses < 1 || reference.length % numClasses !== 0) throw badInput(`${reference.length} values are not rows of ${numClasses}`);
  const count = reference.length / numClasses;
  if (count === 0) throw badInput('nothing to compare');
  const scale = opts.scale;
  if (scale && scale.length !== numClasses) throw badInput(`${scale.length} scales for ${numClasses} outputs`);
  const withArgmax = opts.argmax ?? true;
  let maxAbs = 0;
  let sq = 0;
  let cosSum = 0;
  let agree = 0;
  // a NaN anywhere must fail the max-abs criterion, and `d > maxAbs` is false for NaN
  let nan = false;
  for (let r = 0; r < count; r++) {
    const at = r * numClasses;
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let i = at; i < at + numClasses; i++) {
      const s = scale ? scale[i - at] : 1;
      const a = reference[i] / s;
      const b = actual[i] / s;
      const d = Math.abs(a - b);
      if (d > maxAbs) maxAbs = d;
      else if (Number.isNaN(d)) nan = true;
      sq += d * d;
      dot += a * b;
      na += a * a;
      nb += b * b;
    }
    // two zero vectors are identical; one zero vector is orthogonal to anything
    cosSum += na === 0 && nb === 0 ? 1 : na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
    if (withArgmax && argmax(reference, at, numClasses) === argmax(actual, at, numClasses)) agree++;
  }
  return {
    count,
    max_abs_error: nan ? NaN : maxAbs,
    rmse: Math.sqrt(sq / reference.length),
    cosine: cosSum / count,
    argmax_agreement: withArgmax ? agree / count : null,
  };
}

export function judge(c: Comparison, tolerance: Tolerance): Validation {
  const failures: string[] = [];
  const t = tolerance;
  if (t.maxAbsError !== undefined && !(c.max_abs_error <= t.maxAbsError)) failures.push(`max abs error ${c.max_abs_error} > ${t.maxAbsError}`);
  if (t.maxRmse !== undefined && !(c.rmse <= t.maxRmse)) failures.push(`rmse ${c.rmse} > ${t.maxRmse}`);
  if (t.minCosine !== undefined && !(c.cosine >= t.minCosine)) failures.push(`cosine ${c.cosine} < ${t.minCosine}`);
  if (t.minArgmaxAgreement !== undefined && !(c.argmax_agreement !== null && c.argmax_agreement >= t.minArgmaxAgreement)) {
    failures.push(`argmax agreement ${c.argmax_agreement} < ${t.minArgmaxAgreement}`);
  }
  return { ...c, passed: failures.length === 0, tolerance: t, failures };
}

/**
 * Validates one variant's outputs. `kind` picks the format's tolerance (default `probabilities`);
 * `scale` (for `values`) is each output's scale, the differences are measured in.
 */
export function validateVariant(
  variant: Variant,
  reference: ArrayLike<number>,
  actual: ArrayLike<number>,
  numClasses: number,
  kind: OutputKind = 'probabilities',
  scale?: readonly number[],
): Validation {
  const c = compareOutputs(reference, actual, numClasses, { argmax: kind === 'probabilities', ...(kind === 'values' && scale ? { scale } : {}) });
  return judge(c, getFormat(variant).tolerances[kind].tolerance);
}

/**
 * The kind of a task's primary output, read from the manifest postprocessing the task wrote (its
 * declared meaning, DESIGN §8): a softmax is a distribution, a sigmoid gives independent scores,
 * anything else (regression's `values_output`) is values.
 */
export function outputKindOf(postprocessing: Record<string, unknown>): OutputKind {
  if (postprocessing.activation === 'softmax') return 'probabilities';
  if (postprocessing.activation === 'sigmoid') return 'scores';
  return 'values';
}

/**
 * Each output's scale for `values`: the standard deviation of its targets on the validation images
 * (so a tolerance is relative to the target's spread), else of the reference outputs, else 1.
 */
export function valueScales(targets: readonly (readonly number[])[], reference: ArrayLike<number>, k: number): number[] {
  const std = (get: (i: number) => number, n: number) => {
    if (n < 2) return 0;
    let m = 0;
    for (let i = 0; i < n; i++) m += get(i);
    m /= n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += (get(i) - m) ** 2;
    return Math.sqrt(ss / n);
  };
  const n = reference.length / k;
  return Array.from({ length: k }, (_, j) => {
    const t = targets.length === n && targets.every((r) => r.length === k) ? std((i) => targets[i][j], n) : 0;
    if (Number.isFinite(t) && t > 1e-12) return t;
    const o = std((i) => reference[i * k + j], n);
    return Number.isFinite(o) && o > 1e-12 ? o : 1;
  });
}
