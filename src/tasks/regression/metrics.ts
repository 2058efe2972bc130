import { badInput } from '../../kernel/errors.ts';

/**
 * Regression metrics for one target: pure functions over the true and predicted values (same
 * length, in the target's own units). Definitions follow scikit-learn's (`mean_absolute_error`,
 * `root_mean_squared_error`, `r2_score`, `median_absolute_error`, `max_error`); where a metric is
 * undefined it is null — never NaN, which JSON cannot carry. plan/regression.md holds the formulas.
 */

function checkPair(truth: ArrayLike<number>, pred: ArrayLike<number>): number {
  if (truth.length !== pred.length) throw badInput(`regression metrics: ${truth.length} true values, ${pred.length} predicted`);
  return truth.length;
}

/** Mean absolute error: Σ|ŷ − y| / n; null for no values. */
export function meanAbsoluteError(truth: ArrayLike<number>, pred: ArrayLike<number>): number | null {
  const n = checkPair(truth, pred);
  if (n === 0) return null;
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.abs(pred[i] - truth[i]);
  return s / n;
}

/** Root mean squared error: √(Σ(ŷ − y)² / n); null for no values. */
export function rootMeanSquaredError(truth: ArrayLike<number>, pred: ArrayLike<number>): number | null {
  const n = checkPair(truth, pred);
  if (n === 0) return null;
  let s = 0;
  for (let i = 0; i < n; i++) s += (pred[i] - truth[i]) ** 2;
  return Math.sqrt(s / n);
}

/**
 * Coefficient of determination as scikit-learn's r2_score: 1 − SS_res / SS_tot with
 * SS_res = Σ(y − ŷ)², SS_tot = Σ(y − ȳ)². Null when SS_tot is 0 (every true value equal, or fewer
 * than two values): scikit-learn returns NaN there (or a forced 0/1), which says nothing useful.
 * Constancy is tested on the values themselves, since ȳ of equal values can round off y.
 */
export function r2Score(truth: ArrayLike<number>, pred: ArrayLike<number>): number | null {
  const n = checkPair(truth, pred);
  if (n < 2) return null;
  let mean = 0;
  let constant = true;
  for (let i = 0; i < n; i++) {
    mean += truth[i];
    if (truth[i] !== truth[0]) constant = false;
  }
  if (constant) return null;
  mean /= n;
  let ssRes = 0;
  let ssTot = 0;
  for (let i = 0; i < n; i++) {
    ssRes += (truth[i] - pred[i]) ** 2;
    ssTot += (truth[i] - mean) ** 2;
  }
  return ssTot > 0 ? 1 - ssRes / ssTot : null;
}

/** The median of `xs` (the mean of the two middle values for an even count); null when empty. */
export function median(xs: ArrayLike<number>): number | null {
  const n = xs.length;
  if (n === 0) return null;
  const s = Float64Array.from(xs).sort();
  return n % 2 === 1 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** Median absolute error: median of |ŷ − y|; null for no values. */
export function medianAbsoluteError(truth: ArrayLike<number>, pred: ArrayLike<number>): number | null {
  const n = checkPair(truth, pred);
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) d[i] = Math.abs(pred[i] - truth[i]);
  return median(d);
}

/** Max error: max |ŷ − y| (the worst single image); null for no values. */
export function maxError(truth: ArrayLike<number>, pred: ArrayLike<number>): number | null {
  const n = checkPair(truth, pred);
  if (n === 0) return null;
  let m = 0;
  for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(pred[i] - truth[i]));
  return m;
}

/** Arithmetic mean; null when empty. */
export function mean(xs: ArrayLike<number>): number | null {
  if (xs.length === 0) return null;
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

export interface TargetMetrics {
  mae: number | null;
  rmse: number | null;
  r2: number | null;
  median_ae: number | null;
  max_error: number | null;
  /** The mean of the true values: the scale the errors are read against. */
  mean_target: number | null;
}

/** Every per-target metric at once. */
export function targetMetrics(truth: ArrayLike<number>, pred: ArrayLike<number>): TargetMetrics {
  return {
    mae: meanAbsoluteError(truth, pred),
    rmse: rootMeanSquaredError(truth, pred),
    r2: r2Score(truth, pred),
    median_ae: medianAbsoluteError(truth, pred),
    max_error: maxError(truth, pred),
    mean_target: mean(truth),
  };
}

/** The mean of the defined values (multi-output 'uniform_average'); null when none is defined. */
export function meanDefined(xs: readonly (number | null)[]): number | null {
  const d = xs.filter((x): x is number => x !== null);
  return d.length === 0 ? null : d.reduce((a, b) => a + b, 0) / d.length;
}

export const HISTOGRAM_BINS = 20;

export interface Histogram {
  /** bins + 1 increasing edges. */
  edges: number[];
  /** One count per bin; bin i holds edges[i] ≤ x < edges[i+1], the last bin also its right edge. */
  counts: number[];
}

/**
 * A histogram of `xs` in `bins` equal-width bins over [min, max], as numpy's `histogram`: the last
 * bin is closed on the right. When every value is equal (a perfect model's residuals are all 0) or
 * there are none, the range is widened to [v − 0.5, v + 0.5] (numpy's rule; [0, 1] when empty), so
 * the chart still has bins of non-zero width.
 */
export function histogram(xs: ArrayLike<number>, bins = HISTOGRAM_BINS): Histogram {
  if (!Number.isInteger(bins) || bins < 1) throw badInput(`histogram: bins must be a positive integer, got ${bins}`);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < xs.length; i++) {
    if (!Number.isFinite(xs[i])) throw badInput(`histogram: value ${xs[i]} at ${i} is not finite`);
    lo = Math.min(lo, xs[i]);
    hi = Math.max(hi, xs[i]);
  }
  if (xs.length === 0) [lo, hi] = [0, 1];
  else if (lo === hi) [lo, hi] = [lo - 0.5, hi + 0.5];
  const width = (hi - lo) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, i) => (i === bins ? hi : lo + i * width));
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < xs.length; i++) {
    // clamp: the maximum lands in the last bin, and rounding cannot push a value outside
    const k = Math.min(bins - 1, Math.max(0, Math.floor((xs[i] - lo) / width)));
    counts[k] += 1;
  }
  return { edges, counts };
}

export const MAX_SCATTER_POINTS = 500;

/**
 * At most `max` indices of `n`, evenly spread: index floor(k·n/max) for k = 0…max−1 (every index
 * when n ≤ max). Deterministic, so the same evaluation always draws the same scatter, and the
 * points keep the data's order (no random draw that would change between runs).
 */
export function evenIndices(n: number, max = MAX_SCATTER_POINTS): number[] {
  if (!Number.isInteger(max) || max < 1) throw badInput(`evenIndices: max must be a positive integer, got ${max}`);
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: max }, (_, k) => Math.floor((k * n) / max));
}

/** A predicted-vs-true scatter of at most `max` points, evenly subsampled. */
export function scatter(truth: ArrayLike<number>, pred: ArrayLike<number>, max = MAX_SCATTER_POINTS): { true: number[]; predicted: number[] } {
  const idx = evenIndices(checkPair(truth, pred), max);
  return { true: idx.map((i) => truth[i]), predicted: idx.map((i) => pred[i]) };
}
