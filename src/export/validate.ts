import { badInput } from '../core/errors.ts';

/**
 * Compares a variant's class probabilities with the reference (the training engine's eval graph
 * on the same images) and decides pass/fail per variant.
 *
 * Tolerances, and why:
 * - fp32 is the same arithmetic reordered by folding batch-norm: max |Δp| ≤ 1e-4 and every argmax
 *   equal. Anything beyond float32 rounding is a bug, not a precision trade-off.
 * - fp16 rounds every weight and activation to 11 significant bits (relative error ~5e-4 per op):
 *   mean per-image cosine ≥ 0.999 and argmax agreement ≥ 99%.
 * - int8 rounds each weight to 1/254 of its channel's range: mean cosine ≥ 0.99 and argmax
 *   agreement ≥ 95%; images whose top two classes are within the quantization noise may flip,
 *   so exact agreement is not required.
 */

export type Variant = 'fp32' | 'fp16' | 'int8';

export interface Tolerance {
  maxAbsError?: number;
  minCosine?: number;
  minArgmaxAgreement: number;
}

export const TOLERANCES: Record<Variant, Tolerance> = {
  fp32: { maxAbsError: 1e-4, minArgmaxAgreement: 1 },
  fp16: { minCosine: 0.999, minArgmaxAgreement: 0.99 },
  int8: { minCosine: 0.99, minArgmaxAgreement: 0.95 },
};

export interface Comparison {
  count: number;
  max_abs_error: number;
  rmse: number;
  /** Mean over images of the cosine similarity of the two probability vectors. */
  cosine: number;
  /** Fraction of images whose top class is the same. */
  argmax_agreement: number;
}

export interface Validation extends Comparison {
  passed: boolean;
  tolerance: Tolerance;
  /** Which criteria failed, readable. Empty when passed. */
  failures: string[];
}

function argmax(a: ArrayLike<number>, from: number, n: number): number {
  let best = from;
  for (let i = from + 1; i < from + n; i++) if (a[i] > a[best]) best = i;
  return best - from;
}

/** `reference` and `actual` are row-major [count, numClasses]. */
export function compareOutputs(reference: ArrayLike<number>, actual: ArrayLike<number>, numClasses: number): Comparison {
  if (reference.length !== actual.length) throw badInput(`outputs differ in size: ${reference.length} vs ${actual.length}`);
  if (numClasses < 1 || reference.length % numClasses !== 0) throw badInput(`${reference.length} values are not rows of ${numClasses}`);
  const count = reference.length / numClasses;
  if (count === 0) throw badInput('nothing to compare');
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
      const a = reference[i];
      const b = actual[i];
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
    if (argmax(reference, at, numClasses) === argmax(actual, at, numClasses)) agree++;
  }
  return {
    count,
    max_abs_error: nan ? NaN : maxAbs,
    rmse: Math.sqrt(sq / reference.length),
    cosine: cosSum / count,
    argmax_agreement: agree / count,
  };
}

export function judge(c: Comparison, tolerance: Tolerance): Validation {
  const failures: string[] = [];
  const t = tolerance;
  if (t.maxAbsError !== undefined && !(c.max_abs_error <= t.maxAbsError)) failures.push(`max abs error ${c.max_abs_error} > ${t.maxAbsError}`);
  if (t.minCosine !== undefined && !(c.cosine >= t.minCosine)) failures.push(`cosine ${c.cosine} < ${t.minCosine}`);
  if (!(c.argmax_agreement >= t.minArgmaxAgreement)) failures.push(`argmax agreement ${c.argmax_agreement} < ${t.minArgmaxAgreement}`);
  return { ...c, passed: failures.length === 0, tolerance: t, failures };
}

export function validateVariant(variant: Variant, reference: ArrayLike<number>, actual: ArrayLike<number>, numClasses: number): Validation {
  return judge(compareOutputs(reference, actual, numClasses), TOLERANCES[variant]);
}
