import { binaryCurve } from '../../evaluation/metrics/binary-curve.ts';
import { downsampleCurve } from '../../evaluation/metrics/downsample.ts';
import { averagePrecisionOf, prCurve } from '../../evaluation/metrics/pr.ts';
import { MAX_CURVE_POINTS } from '../../evaluation/metrics/schema.ts';

/**
 * Multi-label metrics: pure functions over `scores` [N×C] (sigmoid probabilities, row-major) and
 * `targets` [N×C] (multi-hot rows, 1 = the label is present). Definitions follow scikit-learn's
 * (`average_precision_score`, `precision_recall_fscore_support`, `hamming_loss`, `accuracy_score` on
 * indicator matrices). A value that is undefined for the data is null, never NaN. Precision,
 * recall and F1 use scikit-learn's `zero_division=0`: a ratio whose denominator is 0 (no
 * prediction, no positive) counts as 0, and a class's 0 takes part in the macro average.
 */

/** The decision threshold of the headline figures (P/R/F1, hamming loss, exact match, predicted labels). */
export const DEFAULT_THRESHOLD = 0.5;

export interface MultiLabelInput {
  scores: ArrayLike<number>;
  targets: ArrayLike<number>;
  n: number;
  c: number;
}

function check({ scores, targets, n, c }: MultiLabelInput): void {
  if (scores.length !== n * c) throw new Error(`multilabel metrics: ${scores.length} scores for ${n}×${c}`);
  if (targets.length !== n * c) throw new Error(`multilabel metrics: ${targets.length} targets for ${n}×${c}`);
}

/** Column `k` of a row-major [n×c] matrix. */
export function column(m: ArrayLike<number>, n: number, c: number, k: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = m[i * c + k];
  return out;
}

const ratio = (a: number, b: number): number => (b === 0 ? 0 : a / b);
/** F1 = 2·tp / (2·tp + fp + fn), the harmonic mean of P and R without their zero divisions. */
const f1Of = (tp: number, fp: number, fn: number): number => ratio(2 * tp, 2 * tp + fp + fn);

export interface Counts {
  tp: number;
  fp: number;
  fn: number;
}

/** Per class true/false positives and false negatives when a label is predicted at score ≥ threshold. */
export function countsAt(input: MultiLabelInput, threshold = DEFAULT_THRESHOLD): Counts[] {
  check(input);
  const { scores, targets, n, c } = input;
  const out: Counts[] = Array.from({ length: c }, () => ({ tp: 0, fp: 0, fn: 0 }));
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < c; k++) {
      const pred = scores[i * c + k] >= threshold;
      const pos = targets[i * c + k] > 0.5;
      if (pred && pos) out[k].tp++;
      else if (pred) out[k].fp++;
      else if (pos) out[k].fn++;
    }
  }
  return out;
}

export interface Prf {
  precision: number;
  recall: number;
  f1: number;
}

export interface ClassPrf extends Prf {
  /** Images where the label is present. */
  support: number;
}

export function prfOf({ tp, fp, fn }: Counts): Prf {
  return { precision: ratio(tp, tp + fp), recall: ratio(tp, tp + fn), f1: f1Of(tp, fp, fn) };
}

/** Per-class precision, recall, F1 and support at `threshold`. */
export function perClassPrf(input: MultiLabelInput, threshold = DEFAULT_THRESHOLD): ClassPrf[] {
  return countsAt(input, threshold).map((k) => ({ ...prfOf(k), support: k.tp + k.fn }));
}

/** Micro average: the counts pooled over every (image, class) cell, then one P/R/F1. */
export function microPrf(input: MultiLabelInput, threshold = DEFAULT_THRESHOLD): Prf {
  const total = countsAt(input, threshold).reduce((a, k) => ({ tp: a.tp + k.tp, fp: a.fp + k.fp, fn: a.fn + k.fn }), { tp: 0, fp: 0, fn: 0 });
  return prfOf(total);
}

/**
 * Macro average: the unweighted mean of the per-class P, R and F1 over every class (scikit-learn's
 * `average='macro'` on an indicator matrix: a class with no positive and no prediction counts 0).
 * The macro F1 is the mean of the class F1s, not the F1 of the mean P and R. Zeros when c = 0.
 */
export function macroPrf(input: MultiLabelInput, threshold = DEFAULT_THRESHOLD): Prf {
  const per = perClassPrf(input, threshold);
  const mean = (f: (p: Prf) => number) => (per.length === 0 ? 0 : per.reduce((a, p) => a + f(p), 0) / per.length);
  return { precision: mean((p) => p.precision), recall: mean((p) => p.recall), f1: mean((p) => p.f1) };
}

/**
 * Average precision per class, as scikit-learn's `average_precision_score`: AP = Σ_n (R_n − R_{n−1})·P_n
 * over the step PR curve with one threshold per distinct score. Null for a class with no positive.
 */
export function averagePrecisions(input: MultiLabelInput): (number | null)[] {
  check(input);
  const { scores, targets, n, c } = input;
  return Array.from({ length: c }, (_, k) => {
    const curve = prCurve(column(scores, n, c, k), column(targets, n, c, k));
    return curve === null ? null : clampUnit(averagePrecisionOf(curve));
  });
}

/** Macro mAP: the mean AP over the classes that have a positive; null when none has. */
export function meanAveragePrecision(input: MultiLabelInput): number | null {
  return meanDefined(averagePrecisions(input));
}

export function meanDefined(xs: readonly (number | null)[]): number | null {
  const ok = xs.filter((x): x is number => x !== null);
  return ok.length === 0 ? null : ok.reduce((a, x) => a + x, 0) / ok.length;
}

export interface PrCurvePoints {
  precision: number[];
  recall: number[];
  average_precision: number;
}

/**
 * Class `k`'s precision–recall curve (scikit-learn's `precision_recall_curve`, recall decreasing),
 * downsampled to at most `maxPoints` points for storage; the AP is taken on the full curve. Null
 * when the class has no positive.
 */
export function classPrCurve(input: MultiLabelInput, k: number, maxPoints = MAX_CURVE_POINTS): PrCurvePoints | null {
  check(input);
  const { scores, targets, n, c } = input;
  const curve = prCurve(column(scores, n, c, k), column(targets, n, c, k));
  if (curve === null) return null;
  const [recall, precision] = downsampleCurve(curve.recall, curve.precision, maxPoints);
  return { precision, recall, average_precision: clampUnit(averagePrecisionOf(curve)) };
}

/**
 * The decision threshold that maximises class `k`'s F1 on these images, suggested for deployment:
 * candidates are the distinct scores (a label is predicted at score ≥ threshold); among equal F1s
 * the higher threshold wins (fewer false positives for the same F1). DEFAULT_THRESHOLD when the
 * class has no positive (F1 is 0 at every threshold, so nothing here can pick one).
 */
export function maxF1Threshold(scores: ArrayLike<number>, positive: ArrayLike<number>): number {
  const { tps, fps, thresholds } = binaryCurve(scores, Array.from(positive, (t) => (t > 0.5 ? 1 : 0)));
  const p = tps.length === 0 ? 0 : tps[tps.length - 1];
  if (p === 0) return DEFAULT_THRESHOLD;
  let best = -1;
  let at = DEFAULT_THRESHOLD;
  // thresholds decrease along the curve, so a strictly greater F1 is needed to move to a lower one
  for (let j = 0; j < thresholds.length; j++) {
    const f1 = f1Of(tps[j], fps[j], p - tps[j]);
    if (f1 > best) {
      best = f1;
      at = thresholds[j];
    }
  }
  return at;
}

/** maxF1Threshold of every class. */
export function maxF1Thresholds(input: MultiLabelInput): number[] {
  check(input);
  const { scores, targets, n, c } = input;
  return Array.from({ length: c }, (_, k) => maxF1Threshold(column(scores, n, c, k), column(targets, n, c, k)));
}

/** The fraction of (image, class) cells predicted wrong at `threshold`; null when there are none. */
export function hammingLoss(input: MultiLabelInput, threshold = DEFAULT_THRESHOLD): number | null {
  check(input);
  const { scores, targets, n, c } = input;
  if (n * c === 0) return null;
  let wrong = 0;
  for (let i = 0; i < n * c; i++) if (scores[i] >= threshold !== targets[i] > 0.5) wrong++;
  return wrong / (n * c);
}

/** Whether each image's predicted label set equals its true set at `threshold`. */
export function exactMatches(input: MultiLabelInput, threshold = DEFAULT_THRESHOLD): boolean[] {
  check(input);
  const { scores, targets, n, c } = input;
  return Array.from({ length: n }, (_, i) => {
    for (let k = 0; k < c; k++) if (scores[i * c + k] >= threshold !== targets[i * c + k] > 0.5) return false;
    return true;
  });
}

/** Exact-match ratio (scikit-learn's subset accuracy); null when there are no images. */
export function exactMatchRatio(input: MultiLabelInput, threshold = DEFAULT_THRESHOLD): number | null {
  if (input.n === 0) return null;
  const m = exactMatches(input, threshold);
  return m.filter(Boolean).length / m.length;
}

/** Mean number of labels per image: true, and predicted at `threshold`; null when there are no images. */
export function labelCardinality(input: MultiLabelInput, threshold = DEFAULT_THRESHOLD): { true: number | null; predicted: number | null } {
  check(input);
  const { scores, targets, n, c } = input;
  if (n === 0) return { true: null, predicted: null };
  let t = 0;
  let p = 0;
  for (let i = 0; i < n * c; i++) {
    if (targets[i] > 0.5) t++;
    if (scores[i] >= threshold) p++;
  }
  return { true: t / n, predicted: p / n };
}

/** Logistic sigmoid, written so neither branch exponentiates a large positive number. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** Float sums can land a hair outside [0, 1]; schemas bound these to the unit interval. */
function clampUnit(x: number): number {
  return Math.min(1, Math.max(0, x));
}
