import { describe, expect, it } from 'vitest';
import {
  auc,
  averagePrecision,
  binaryCurve,
  downsampleCurve,
  downsampleIndices,
  oneVsRest,
  prCurve,
  rocAuc,
  rocAucOneVsRest,
  rocCurve,
} from '../../../src/evaluation/metrics/index.ts';
import { mulberry32, randomPredictions } from './random.ts';

// Seven scores with two ties (0.8: a positive and a negative; 0.6: the same); 4 positives, 3 negatives.
const scores = [0.9, 0.8, 0.8, 0.7, 0.6, 0.6, 0.3];
const positive = [1, 1, 0, 1, 0, 1, 0];

/** AUC as the Mann–Whitney U statistic: the chance a random positive outscores a random negative, ties ½. */
function mannWhitneyAuc(s: readonly number[], pos: readonly number[]): number {
  const order = s.map((_, i) => i).sort((a, b) => s[a] - s[b]);
  const rank = new Array<number>(s.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && s[order[j + 1]] === s[order[i]]) j++;
    for (let k = i; k <= j; k++) rank[order[k]] = (i + j) / 2 + 1; // ties share their mean rank
    i = j + 1;
  }
  const nPos = pos.filter((v) => v === 1).length;
  const nNeg = pos.length - nPos;
  const rankSum = rank.reduce((a, r, i) => a + (pos[i] === 1 ? r : 0), 0);
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

describe('ROC curve and AUC', () => {
  it('takes tied scores as one threshold', () => {
    expect(binaryCurve(scores, positive)).toEqual({ tps: [1, 2, 3, 4, 4], fps: [0, 1, 1, 2, 3], thresholds: [0.9, 0.8, 0.7, 0.6, 0.3] });
  });

  it('matches the hand computation (and scikit-learn 1.2 roc_curve)', () => {
    const c = rocCurve(scores, positive, false);
    expect(c).not.toBeNull();
    expect(c?.fpr).toEqual([0, 0, 1 / 3, 1 / 3, 2 / 3, 1]);
    expect(c?.tpr).toEqual([0, 0.25, 0.5, 0.75, 1, 1]);
    expect(c?.thresholds).toEqual([Infinity, 0.9, 0.8, 0.7, 0.6, 0.3]);
    // Trapezoids: 1/3·(1/4+1/2)/2 + 1/3·(3/4+1)/2 + 1/3·1 = 3/4; U = 9 of 12 pairs.
    expect(rocAuc(scores, positive)).toBeCloseTo(0.75, 12);
    expect(mannWhitneyAuc(scores, positive)).toBeCloseTo(0.75, 12);
  });

  it('drops points on a straight segment only when asked', () => {
    const s = [0.9, 0.8, 0.7, 0.1];
    const p = [1, 1, 1, 0];
    expect(rocCurve(s, p, false)?.tpr).toEqual([0, 1 / 3, 2 / 3, 1, 1]);
    // The point at 0.8 lies between its neighbours on fpr = 0; scikit-learn drops exactly it.
    const dropped = rocCurve(s, p, true);
    expect(dropped?.fpr).toEqual([0, 0, 0, 1]);
    expect(dropped?.tpr).toEqual([0, 1 / 3, 1, 1]);
    expect(dropped?.thresholds).toEqual([Infinity, 0.9, 0.7, 0.1]);
  });

  it('equals the Mann–Whitney rank-sum statistic on random tied data', () => {
    const rand = mulberry32(7);
    for (let trial = 0; trial < 20; trial++) {
      const n = 20 + Math.floor(rand() * 400);
      const pos = Array.from({ length: n }, () => (rand() < 0.3 ? 1 : 0));
      pos[0] = 1;
      pos[1] = 0;
      // Scores on a coarse grid, shifted for positives: many ties, within and across classes.
      const s = pos.map((v) => Math.round((rand() + 0.3 * v) * 10) / 10);
      expect(rocAuc(s, pos)).toBeCloseTo(mannWhitneyAuc(s, pos), 12);
      const full = rocCurve(s, pos, false);
      expect(full && auc(full.fpr, full.tpr)).toBeCloseTo(mannWhitneyAuc(s, pos), 12);
    }
  });

  it('is 1 for a perfect ranking, 0 for a reversed one, ½ for constant scores', () => {
    expect(rocAuc([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])).toBe(1);
    expect(rocAuc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0])).toBe(0);
    expect(rocAuc([0.5, 0.5, 0.5], [1, 0, 1])).toBe(0.5);
  });

  it('is undefined without positives or without negatives', () => {
    expect(rocCurve([0.2, 0.4], [0, 0])).toBeNull();
    expect(rocCurve([0.2, 0.4], [1, 1])).toBeNull();
    expect(rocAuc([0.3], [1])).toBeNull();
    expect(rocCurve([], [])).toBeNull();
  });

  it('integrates either direction of x and refuses a non-monotonic one', () => {
    expect(auc([0, 0.5, 1], [0, 1, 1])).toBeCloseTo(0.75, 12);
    expect(auc([1, 0.5, 0], [1, 1, 0])).toBeCloseTo(0.75, 12);
    expect(() => auc([0, 1, 0.5], [0, 1, 1])).toThrow(/neither increasing nor decreasing/);
    expect(() => auc([0], [0])).toThrow(/at least 2/);
  });

  it('averages the one-vs-rest AUCs of the classes that have one', () => {
    const { probs, targets } = randomPredictions(11, 150, 4);
    const { macro, perClass } = rocAucOneVsRest(probs, targets, 4);
    const expected = [0, 1, 2, 3].map((k) => {
      const { scores: s, positive: p } = oneVsRest(probs, targets, 4, k);
      return mannWhitneyAuc(Array.from(s), Array.from(p));
    });
    perClass.forEach((v, k) => expect(v).toBeCloseTo(expected[k], 12));
    expect(macro).toBeCloseTo(expected.reduce((a, b) => a + b, 0) / 4, 12);
    // Class 2 has no images: no AUC, and the macro mean is over classes 0 and 1.
    const absent = rocAucOneVsRest(Float64Array.from([0.8, 0.1, 0.1, 0.3, 0.6, 0.1, 0.5, 0.4, 0.1]), [0, 1, 0], 3);
    expect(absent.perClass[2]).toBeNull();
    expect(absent.perClass[0]).toBe(1);
    expect(absent.perClass[1]).toBe(1);
    expect(absent.macro).toBe(1);
  });

  it('gives both classes the binary AUC when C = 2', () => {
    const { probs, targets } = randomPredictions(12, 100, 2);
    const { perClass } = rocAucOneVsRest(probs, targets, 2);
    const s1 = Array.from({ length: 100 }, (_, i) => probs[i * 2 + 1]);
    expect(perClass[1]).toBeCloseTo(mannWhitneyAuc(s1, targets), 12);
    expect(perClass[0]).toBeCloseTo(perClass[1] ?? NaN, 12);
  });
});

describe('precision–recall curve and average precision', () => {
  it('matches the hand computation (and scikit-learn 1.2 precision_recall_curve)', () => {
    const c = prCurve(scores, positive);
    expect(c?.thresholds).toEqual([0.3, 0.6, 0.7, 0.8, 0.9]);
    expect(c?.precision).toEqual([4 / 7, 4 / 6, 3 / 4, 2 / 3, 1, 1]);
    expect(c?.recall).toEqual([1, 1, 0.75, 0.5, 0.25, 0]);
    // AP = ¼·(2/3 + 3/4 + 2/3 + 1) = 37/48 (scikit-learn: 0.7708333333333333).
    expect(averagePrecision(scores, positive)).toBeCloseTo(37 / 48, 12);
  });

  it('is 1 for a perfect ranking and the positive rate for constant scores', () => {
    expect(averagePrecision([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])).toBe(1);
    expect(averagePrecision([0.5, 0.5, 0.5, 0.5], [1, 0, 0, 0])).toBe(0.25);
  });

  it('is undefined without positives', () => {
    expect(prCurve([0.1, 0.2], [0, 0])).toBeNull();
    expect(averagePrecision([0.1, 0.2], [0, 0])).toBeNull();
  });
});

describe('curve downsampling', () => {
  it('keeps a short curve whole', () => {
    expect(downsampleIndices([0, 0.5, 1], [0, 1, 1], 200)).toEqual([0, 1, 2]);
  });

  it('keeps at most the asked number of points, in order, with both ends', () => {
    const rand = mulberry32(3);
    const pos = Array.from({ length: 5000 }, () => (rand() < 0.5 ? 1 : 0));
    const s = pos.map((v) => rand() + 0.5 * v);
    const full = rocCurve(s, pos, false);
    if (full === null) throw new Error('curve expected');
    const idx = downsampleIndices(full.fpr, full.tpr, 200);
    expect(idx).toHaveLength(200);
    expect(idx[0]).toBe(0);
    expect(idx[idx.length - 1]).toBe(full.fpr.length - 1);
    for (let i = 1; i < idx.length; i++) expect(idx[i]).toBeGreaterThan(idx[i - 1]);
    const [fpr, tpr] = downsampleCurve(full.fpr, full.tpr, 200);
    // The stored curve still traces the same area within a hundredth.
    expect(Math.abs(auc(fpr, tpr) - auc(full.fpr, full.tpr))).toBeLessThan(0.01);
  });

  it('keeps the corner of a step curve', () => {
    const xs = [...Array.from({ length: 500 }, () => 0), ...Array.from({ length: 500 }, (_, i) => (i + 1) / 500)];
    const ys = [...Array.from({ length: 500 }, (_, i) => (i + 1) / 500), ...Array.from({ length: 500 }, () => 1)];
    const [dx, dy] = downsampleCurve(xs, ys, 50);
    expect(dx.some((x, i) => x === 0 && dy[i] === 1)).toBe(true);
  });

  it('refuses mismatched or too-small requests', () => {
    expect(() => downsampleIndices([0, 1], [0], 10)).toThrow(/x has 2 points/);
    expect(() => downsampleIndices([0, 1], [0, 1], 2)).toThrow(/at least 3/);
  });
});
