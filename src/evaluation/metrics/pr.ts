import { binaryCurve } from './binary-curve.ts';

export interface PrCurve {
  /** In increasing threshold order, as scikit-learn: recall falls towards the final (recall 0, precision 1). */
  precision: number[];
  recall: number[];
  thresholds: number[];
}

/**
 * The precision–recall curve of one binary problem, as scikit-learn's `precision_recall_curve`
 * (≥ 1.1): one point per distinct score, in increasing threshold order, then the point
 * (recall 0, precision 1) that has no threshold. Null when there are no positives (recall undefined).
 */
export function prCurve(scores: ArrayLike<number>, positive: ArrayLike<number>): PrCurve | null {
  const { tps, fps, thresholds } = binaryCurve(scores, positive);
  if (tps.length === 0) return null;
  const p = tps[tps.length - 1];
  if (p === 0) return null;
  const precision: number[] = [];
  const recall: number[] = [];
  for (let i = tps.length - 1; i >= 0; i--) {
    const called = tps[i] + fps[i];
    precision.push(called === 0 ? 0 : tps[i] / called);
    recall.push(tps[i] / p);
  }
  precision.push(1);
  recall.push(0);
  return { precision, recall, thresholds: [...thresholds].reverse() };
}

/**
 * Average precision AP = Σ_n (R_n − R_{n−1}) · P_n over thresholds — the step-wise area under the PR
 * curve, without the optimistic interpolation of the trapezoidal rule (scikit-learn's
 * `average_precision_score`). Null when there are no positives.
 */
export function averagePrecision(scores: ArrayLike<number>, positive: ArrayLike<number>): number | null {
  const curve = prCurve(scores, positive);
  return curve === null ? null : averagePrecisionOf(curve);
}

/** Average precision of a curve already computed (recall decreasing, as prCurve returns it). */
export function averagePrecisionOf(curve: PrCurve): number {
  let ap = 0;
  for (let i = 0; i < curve.recall.length - 1; i++) ap += (curve.recall[i] - curve.recall[i + 1]) * curve.precision[i];
  return ap;
}
