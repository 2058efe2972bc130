import { describe, expect, it } from 'vitest';
import { binOf, calibration, logLoss } from '../../../src/evaluation/metrics/index.ts';
import { rows } from './random.ts';

describe('log loss', () => {
  it('is the mean negative log-probability of the true class', () => {
    const p = rows([
      [0.7, 0.2, 0.1],
      [0.1, 0.8, 0.1],
      [0.3, 0.3, 0.4],
    ]);
    const expected = -(Math.log(0.7) + Math.log(0.8) + Math.log(0.3)) / 3;
    expect(logLoss(p, [0, 1, 0], 3)).toBeCloseTo(expected, 12);
    expect(expected).toBeCloseTo(0.594597099859626, 12); // scikit-learn 1.2 log_loss(eps=1e-15)
  });

  it('clips a zero probability to 1e-15 and renormalises the row, as scikit-learn', () => {
    // Row [1, 0] for class 1 costs −log(1e-15 / (1 − 1e-15 + 1e-15)); the second row costs log 2.
    const value = logLoss(rows([[1, 0], [0.5, 0.5]]), [1, 0], 2);
    expect(value).toBeCloseTo((-Math.log(1e-15) + Math.log(2)) / 2, 9);
    expect(value).toBeCloseTo(17.615961787735316, 9); // scikit-learn 1.2 log_loss(eps=1e-15)
    expect(Number.isFinite(logLoss(rows([[1, 0]]), [1], 2))).toBe(true);
  });

  it('is near 0 for confident right answers', () => {
    expect(logLoss(rows([[1, 0], [0, 1]]), [0, 1], 2)).toBeLessThan(1e-14);
  });
});

describe('expected calibration error', () => {
  it('weights each bin’s |accuracy − confidence| by its share of images', () => {
    // Four images at confidence 0.95 (bin 14), three right; two at 0.55 (bin 8), one right.
    const p = rows([
      [0.95, 0.05],
      [0.95, 0.05],
      [0.95, 0.05],
      [0.95, 0.05],
      [0.55, 0.45],
      [0.55, 0.45],
    ]);
    const { ece, bins } = calibration(p, [0, 0, 0, 1, 0, 1], 2);
    expect(ece).toBeCloseTo((4 / 6) * 0.2 + (2 / 6) * 0.05, 12);
    expect(bins).toHaveLength(15);
    expect(bins[14]).toEqual({ lower: 14 / 15, upper: 1, count: 4, mean_confidence: expect.closeTo(0.95, 12), accuracy: 0.75 });
    expect(bins[8]).toEqual({ lower: 8 / 15, upper: 9 / 15, count: 2, mean_confidence: expect.closeTo(0.55, 12), accuracy: 0.5 });
    expect(bins.filter((b) => b.count === 0).every((b) => b.mean_confidence === null && b.accuracy === null)).toBe(true);
    expect(bins.reduce((a, b) => a + b.count, 0)).toBe(6);
  });

  it('uses the predicted (max) probability, whichever class it is', () => {
    const { bins, ece } = calibration(rows([[0.2, 0.8]]), [1], 2);
    expect(bins[11].count).toBe(1); // 0.8 lies in (11/15, 12/15]
    expect(ece).toBeCloseTo(0.2, 12);
  });

  it('is 0 for a perfectly calibrated constant predictor', () => {
    // Confidence 0.75 and three quarters right.
    const p = rows([[0.75, 0.25], [0.75, 0.25], [0.75, 0.25], [0.75, 0.25]]);
    expect(calibration(p, [0, 0, 0, 1], 2).ece).toBeCloseTo(0, 12);
  });

  it('puts a confidence on a bin edge in the lower bin, (lower, upper]', () => {
    expect(binOf(0.2, 15)).toBe(2); // 0.2·15 is 3.0000000000000004 in floating point
    expect(binOf(0.6, 15)).toBe(8);
    expect(binOf(1, 15)).toBe(14);
    expect(binOf(0, 15)).toBe(0);
    expect(binOf(0.2000001, 15)).toBe(3);
  });
});
