import { badInput } from '../../kernel/errors.ts';
import { binaryCurve } from './binary-curve.ts';

export interface RocCurve {
  fpr: number[];
  tpr: number[];
  /** thresholds[0] is +Infinity: the point (0, 0) where nothing is called positive. */
  thresholds: number[];
}

/**
 * The ROC curve of one binary problem, as scikit-learn's `roc_curve`: one point per distinct
 * score, preceded by (0, 0). With `dropIntermediate` (the default, as there) points that lie on a
 * straight segment between their neighbours are dropped — they change neither the plot nor the AUC.
 * Null when the truth has no positives or no negatives (the rates would divide by zero).
 */
export function rocCurve(scores: ArrayLike<number>, positive: ArrayLike<number>, dropIntermediate = true): RocCurve | null {
  let { tps, fps, thresholds } = binaryCurve(scores, positive);
  if (tps.length === 0) return null;
  const p = tps[tps.length - 1];
  const negatives = fps[fps.length - 1];
  if (p === 0 || negatives === 0) return null;
  if (dropIntermediate && tps.length > 2) {
    // A point is kept where the second difference of fps or tps is non-zero: a corner.
    const keep: number[] = [0];
    for (let i = 1; i < tps.length - 1; i++) {
      if (fps[i + 1] - 2 * fps[i] + fps[i - 1] !== 0 || tps[i + 1] - 2 * tps[i] + tps[i - 1] !== 0) keep.push(i);
    }
    keep.push(tps.length - 1);
    tps = keep.map((i) => tps[i]);
    fps = keep.map((i) => fps[i]);
    thresholds = keep.map((i) => thresholds[i]);
  }
  return {
    fpr: [0, ...fps.map((v) => v / negatives)],
    tpr: [0, ...tps.map((v) => v / p)],
    thresholds: [Number.POSITIVE_INFINITY, ...thresholds],
  };
}

/**
 * Area under a curve by the trapezoidal rule; x must be monotonic (either direction, as in
 * scikit-learn's `auc`, a decreasing x gives the same positive area).
 */
export function auc(x: readonly number[], y: readonly number[]): number {
  if (x.length !== y.length) throw badInput(`auc: x has ${x.length} points, y has ${y.length}`);
  if (x.length < 2) throw badInput('auc: at least 2 points are needed');
  let rising = true;
  let falling = true;
  for (let i = 1; i < x.length; i++) {
    if (x[i] < x[i - 1]) rising = false;
    if (x[i] > x[i - 1]) falling = false;
  }
  if (!rising && !falling) throw badInput('auc: x is neither increasing nor decreasing');
  let area = 0;
  for (let i = 1; i < x.length; i++) area += ((x[i] - x[i - 1]) * (y[i] + y[i - 1])) / 2;
  return rising ? area : -area;
}

/** ROC AUC of one binary problem; null where the ROC curve is undefined. */
export function rocAuc(scores: ArrayLike<number>, positive: ArrayLike<number>): number | null {
  const curve = rocCurve(scores, positive, true);
  return curve === null ? null : auc(curve.fpr, curve.tpr);
}
