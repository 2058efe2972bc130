import { describe, expect, it } from 'vitest';
import {
  evenIndices,
  histogram,
  maxError,
  mean,
  meanAbsoluteError,
  meanDefined,
  median,
  medianAbsoluteError,
  r2Score,
  rootMeanSquaredError,
  scatter,
  targetMetrics,
} from '../../../src/tasks/regression/metrics.ts';

/**
 * Hand-computed cases. The main one is scikit-learn's documentation example:
 *   y = [3, -0.5, 2, 7], ŷ = [2.5, 0, 2, 8]  →  ŷ − y = [-0.5, 0.5, 0, 1]
 *   MAE = (0.5 + 0.5 + 0 + 1) / 4 = 0.5
 *   MSE = (0.25 + 0.25 + 0 + 1) / 4 = 0.375, RMSE = √0.375
 *   ȳ = 11.5 / 4 = 2.875; SS_tot = 0.125² + 3.375² + 0.875² + 4.125² = 29.1875; SS_res = 1.5
 *   R² = 1 − 1.5 / 29.1875 (sklearn: 0.948…)
 *   |e| sorted = [0, 0.5, 0.5, 1] → median (0.5 + 0.5) / 2 = 0.5; max error 1
 */
const Y = [3, -0.5, 2, 7];
const P = [2.5, 0, 2, 8];

describe('regression metrics', () => {
  it('match the hand-computed (scikit-learn documentation) case', () => {
    expect(meanAbsoluteError(Y, P)).toBeCloseTo(0.5, 12);
    expect(rootMeanSquaredError(Y, P)).toBeCloseTo(Math.sqrt(0.375), 12);
    expect(r2Score(Y, P)).toBeCloseTo(1 - 1.5 / 29.1875, 12);
    expect(r2Score(Y, P)).toBeCloseTo(0.948608, 6);
    expect(medianAbsoluteError(Y, P)).toBe(0.5);
    expect(maxError(Y, P)).toBe(1);
    expect(mean(Y)).toBe(2.875);
    expect(targetMetrics(Y, P)).toEqual({
      mae: 0.5,
      rmse: Math.sqrt(0.375),
      r2: 1 - 1.5 / 29.1875,
      median_ae: 0.5,
      max_error: 1,
      mean_target: 2.875,
    });
  });

  it('R² is negative for a model worse than the mean, 1 for a perfect one', () => {
    // y = [1, 2, 3], ŷ = [3, 2, 1]: SS_res = 4 + 0 + 4 = 8, SS_tot = 1 + 0 + 1 = 2 → 1 − 4 = −3
    expect(r2Score([1, 2, 3], [3, 2, 1])).toBeCloseTo(-3, 12);
    expect(r2Score([1, 2, 3], [1, 2, 3])).toBe(1);
    // predicting the mean everywhere: SS_res = SS_tot → 0
    expect(r2Score([1, 2, 3], [2, 2, 2])).toBe(0);
  });

  it('R² is null, never NaN, for a constant target or fewer than two values', () => {
    expect(r2Score([2, 2, 2], [1, 2, 3])).toBeNull();
    expect(r2Score([2, 2, 2], [2, 2, 2])).toBeNull();
    // 0.1 + 0.1 + 0.1 = 0.30000000000000004, so ȳ ≠ 0.1: constancy must be tested on the values
    expect(r2Score([0.1, 0.1, 0.1], [0.2, 0.1, 0])).toBeNull();
    expect(r2Score([5], [4])).toBeNull();
    expect(r2Score([], [])).toBeNull();
  });

  it('every metric is null over no values, and mismatched lengths are refused', () => {
    expect(targetMetrics([], [])).toEqual({ mae: null, rmse: null, r2: null, median_ae: null, max_error: null, mean_target: null });
    expect(() => meanAbsoluteError([1, 2], [1])).toThrow(/2 true values, 1 predicted/);
  });

  it('median of odd and even counts; meanDefined skips nulls', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    // typed-array sort is numeric: 10 after 9, not after 1
    expect(median([10, 9, 1])).toBe(9);
    expect(median([])).toBeNull();
    expect(meanDefined([1, null, 3])).toBe(2);
    expect(meanDefined([null, null])).toBeNull();
  });

  it('histogram: equal bins, the maximum in the last (closed) bin, as numpy.histogram', () => {
    // numpy.histogram([0, 1, 2, 3, 4], bins=4) → counts [1, 1, 1, 2], edges [0, 1, 2, 3, 4]
    expect(histogram([0, 1, 2, 3, 4], 4)).toEqual({ edges: [0, 1, 2, 3, 4], counts: [1, 1, 1, 2] });
    // numpy.histogram([-1, -0.5, 0.5, 1], bins=2) → [2, 2], edges [-1, 0, 1]
    expect(histogram([-1, -0.5, 0.5, 1], 2)).toEqual({ edges: [-1, 0, 1], counts: [2, 2] });
    const h = histogram(Array.from({ length: 100 }, (_, i) => Math.sin(i)));
    expect(h.edges).toHaveLength(21);
    expect(h.counts).toHaveLength(20);
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(100);
    for (let i = 1; i < h.edges.length; i++) expect(h.edges[i]).toBeGreaterThan(h.edges[i - 1]);
  });

  it('histogram of all-equal residuals widens the range by ±0.5 (numpy), of none spans [0, 1]', () => {
    // numpy.histogram([5, 5, 5], bins=2) → counts [0, 3], edges [4.5, 5, 5.5]
    expect(histogram([5, 5, 5], 2)).toEqual({ edges: [4.5, 5, 5.5], counts: [0, 3] });
    const zeros = histogram([0, 0, 0, 0]);
    expect(zeros.edges[0]).toBe(-0.5);
    expect(zeros.edges[20]).toBe(0.5);
    expect(zeros.counts.reduce((a, b) => a + b, 0)).toBe(4);
    expect(histogram([], 2)).toEqual({ edges: [0, 0.5, 1], counts: [0, 0] });
    expect(() => histogram([1, Number.NaN])).toThrow(/not finite/);
  });

  it('scatter: every point up to 500, then 500 evenly spread, deterministic and in order', () => {
    expect(evenIndices(3, 500)).toEqual([0, 1, 2]);
    // n = 1000, max 500: floor(k·1000/500) = 2k
    expect(evenIndices(1000, 500)).toEqual(Array.from({ length: 500 }, (_, k) => 2 * k));
    const idx = evenIndices(1001, 500);
    expect(idx).toHaveLength(500);
    expect(idx[0]).toBe(0);
    expect(idx[499]).toBe(998); // floor(499 · 1001 / 500) = floor(998.998)
    for (let i = 1; i < idx.length; i++) expect(idx[i]).toBeGreaterThan(idx[i - 1]);
    const truth = Array.from({ length: 1234 }, (_, i) => i);
    const pred = truth.map((v) => v * 2);
    const s = scatter(truth, pred);
    expect(s.true).toHaveLength(500);
    expect(s.predicted).toEqual(s.true.map((v) => v * 2));
    expect(scatter(truth, pred)).toEqual(s);
    expect(scatter([1, 2], [3, 4])).toEqual({ true: [1, 2], predicted: [3, 4] });
  });
});
