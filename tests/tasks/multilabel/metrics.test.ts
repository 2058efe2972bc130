import { describe, expect, it } from 'vitest';
import {
  averagePrecisions,
  classPrCurve,
  exactMatchRatio,
  hammingLoss,
  labelCardinality,
  macroPrf,
  maxF1Threshold,
  maxF1Thresholds,
  meanAveragePrecision,
  microPrf,
  type MultiLabelInput,
  perClassPrf,
  sigmoid,
} from '../../../src/tasks/multilabel/metrics.ts';

/**
 * A hand case, 4 images × 4 labels. Label 3 has no positive (AP undefined; a false positive at 0.5).
 *
 *           scores                    targets          predicted at 0.5
 *   img0  [0.9, 0.2,  0.6,  0.7]     [1, 0, 1, 0]     [1, 0, 1, 1]
 *   img1  [0.8, 0.7,  0.1,  0.2]     [0, 1, 0, 0]     [1, 1, 0, 0]
 *   img2  [0.3, 0.4,  0.55, 0.1]     [1, 0, 0, 0]     [0, 0, 1, 0]
 *   img3  [0.1, 0.45, 0.2,  0.4]     [0, 0, 0, 0]     [0, 0, 0, 0]
 */
const CASE: MultiLabelInput = {
  scores: [0.9, 0.2, 0.6, 0.7, 0.8, 0.7, 0.1, 0.2, 0.3, 0.4, 0.55, 0.1, 0.1, 0.45, 0.2, 0.4],
  targets: [1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
  n: 4,
  c: 4,
};

const close = (a: number | null, b: number) => {
  expect(a).not.toBeNull();
  expect(a as number).toBeCloseTo(b, 12);
};

describe('average precision (scikit-learn average_precision_score)', () => {
  it('per class on the hand case; a label without positive is null and left out of mAP', () => {
    // Label 0, scores by decreasing value: 0.9 (pos), 0.8 (neg), 0.3 (pos), 0.1 (neg); 2 positives.
    //   threshold 0.9: P = 1/1, R = 1/2;  0.8: P = 1/2, R = 1/2;  0.3: P = 2/3, R = 1;  0.1: P = 2/4, R = 1
    //   AP = Σ (R_n − R_{n−1})·P_n = (1/2)·1 + 0·(1/2) + (1/2)·(2/3) + 0·(1/2) = 5/6
    // Label 1: the single positive (img1, 0.7) has the top score: AP = 1. Label 2: likewise (img0, 0.6).
    const ap = averagePrecisions(CASE);
    close(ap[0], 5 / 6);
    close(ap[1], 1);
    close(ap[2], 1);
    expect(ap[3]).toBeNull();
    // mAP = (5/6 + 1 + 1) / 3 = 17/18
    close(meanAveragePrecision(CASE), 17 / 18);
  });

  it('takes tied scores as one threshold (no optimistic interpolation)', () => {
    // scores [0.5, 0.5, 0.2], positives [1, 0, 1]: threshold 0.5 accepts both tied → P = 1/2, R = 1/2;
    // threshold 0.2: P = 2/3, R = 1.  AP = (1/2)·(1/2) + (1/2)·(2/3) = 7/12 (sklearn: 0.58333…)
    const ap = averagePrecisions({ scores: [0.5, 0.5, 0.2], targets: [1, 0, 1], n: 3, c: 1 });
    close(ap[0], 7 / 12);
  });

  it('mAP is null when no label has a positive, and for no images', () => {
    expect(meanAveragePrecision({ scores: [0.3, 0.9], targets: [0, 0], n: 1, c: 2 })).toBeNull();
    expect(meanAveragePrecision({ scores: [], targets: [], n: 0, c: 3 })).toBeNull();
  });
});

describe('precision, recall, F1 at 0.5 (zero_division = 0)', () => {
  it('per class', () => {
    // label 0: predicted [1,1,0,0] vs true [1,0,1,0] → tp 1, fp 1, fn 1: P 1/2, R 1/2, F1 1/2, support 2
    // label 1: predicted [0,1,0,0] vs true [0,1,0,0] → tp 1: P 1, R 1, F1 1, support 1
    // label 2: predicted [1,0,1,0] vs true [1,0,0,0] → tp 1, fp 1: P 1/2, R 1, F1 2/3, support 1
    // label 3: predicted [1,0,0,0], no positive → tp 0, fp 1: P 0, R 0/0 → 0, F1 0, support 0
    const per = perClassPrf(CASE);
    const want = [
      [1 / 2, 1 / 2, 1 / 2, 2],
      [1, 1, 1, 1],
      [1 / 2, 1, 2 / 3, 1],
      [0, 0, 0, 0],
    ];
    per.forEach((p, k) => {
      close(p.precision, want[k][0]);
      close(p.recall, want[k][1]);
      close(p.f1, want[k][2]);
      expect(p.support).toBe(want[k][3]);
    });
  });

  it('micro pools the cells; macro averages the classes, the empty one included as 0', () => {
    // pooled: tp 3, fp 3, fn 1 → P 3/6, R 3/4, F1 = 2·3 / (2·3 + 3 + 1) = 6/10
    const micro = microPrf(CASE);
    close(micro.precision, 1 / 2);
    close(micro.recall, 3 / 4);
    close(micro.f1, 0.6);
    // macro: P (1/2 + 1 + 1/2 + 0)/4 = 1/2; R (1/2 + 1 + 1 + 0)/4 = 5/8; F1 (1/2 + 1 + 2/3 + 0)/4 = 13/24
    const macro = macroPrf(CASE);
    close(macro.precision, 1 / 2);
    close(macro.recall, 5 / 8);
    close(macro.f1, 13 / 24);
  });

  it('no prediction and no positive is 0, never NaN', () => {
    const m = microPrf({ scores: [0.1, 0.2], targets: [0, 0], n: 1, c: 2 });
    expect(m).toEqual({ precision: 0, recall: 0, f1: 0 });
  });

  it('a score equal to the threshold is predicted', () => {
    expect(microPrf({ scores: [0.5], targets: [1], n: 1, c: 1 }, 0.5).recall).toBe(1);
  });
});

describe('set metrics', () => {
  it('hamming loss, exact match and label cardinality', () => {
    // wrong cells: label 0 twice (img1 extra, img2 missed), label 2 once (img2), label 3 once (img0) → 4/16
    close(hammingLoss(CASE), 0.25);
    // only img3 (nothing true, nothing predicted) matches exactly → 1/4
    close(exactMatchRatio(CASE), 0.25);
    // true labels 2 + 1 + 1 + 0 = 4 over 4 images; predicted 3 + 2 + 1 + 0 = 6 over 4
    expect(labelCardinality(CASE)).toEqual({ true: 1, predicted: 1.5 });
  });

  it('are null for no images', () => {
    const none = { scores: [], targets: [], n: 0, c: 2 };
    expect(hammingLoss(none)).toBeNull();
    expect(exactMatchRatio(none)).toBeNull();
    expect(labelCardinality(none)).toEqual({ true: null, predicted: null });
  });
});

describe('max-F1 threshold', () => {
  it('per class on the hand case', () => {
    // label 0 (2 positives), F1 = 2tp / (2tp + fp + fn) at each distinct score:
    //   0.9: 2/(2+0+1) = 2/3;  0.8: 2/(2+1+1) = 1/2;  0.3: 4/(4+1+0) = 4/5;  0.1: 4/(4+2) = 2/3 → 0.3
    // label 1: its positive has the top score 0.7 → F1 1 at 0.7; label 2 likewise at 0.6;
    // label 3: no positive → 0.5
    expect(maxF1Thresholds(CASE)).toEqual([0.3, 0.7, 0.6, 0.5]);
  });

  it('prefers the higher threshold on a tie', () => {
    // positives [1,0,0,1] at scores [0.9,0.8,0.7,0.6]: F1 at 0.9 = 2/3, 0.8 = 1/2, 0.7 = 2/5, 0.6 = 4/6 = 2/3
    expect(maxF1Threshold([0.9, 0.8, 0.7, 0.6], [1, 0, 0, 1])).toBe(0.9);
  });
});

describe('PR curve', () => {
  it('is scikit-learn’s precision_recall_curve for a small case', () => {
    // label 0: increasing thresholds 0.1, 0.3, 0.8, 0.9 then the final point (R 0, P 1)
    const curve = classPrCurve(CASE, 0);
    expect(curve).not.toBeNull();
    expect(curve?.recall).toEqual([1, 1, 0.5, 0.5, 0]);
    expect(curve?.precision.map((p) => Number(p.toFixed(12)))).toEqual([0.5, Number((2 / 3).toFixed(12)), 0.5, 1, 1]);
    close(curve?.average_precision ?? null, 5 / 6);
    expect(classPrCurve(CASE, 3)).toBeNull();
  });

  it('is downsampled to ≤ 200 points, its AP taken on the full curve', () => {
    let s = 12345;
    const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    const n = 2000;
    const targets = Array.from({ length: n }, () => (rnd() < 0.3 ? 1 : 0));
    const scores = targets.map((t) => Math.min(1, Math.max(0, 0.35 * t + 0.65 * rnd())));
    const input = { scores, targets, n, c: 1 };
    const curve = classPrCurve(input, 0);
    expect(curve?.precision.length).toBeLessThanOrEqual(200);
    expect(curve?.recall.length).toBe(curve?.precision.length);
    close(curve?.average_precision ?? null, averagePrecisions(input)[0] as number);
  });
});

it('sigmoid is stable at both ends', () => {
  expect(sigmoid(0)).toBe(0.5);
  expect(sigmoid(800)).toBe(1);
  expect(sigmoid(-800)).toBe(0);
  expect(sigmoid(-2)).toBeCloseTo(1 / (1 + Math.exp(2)), 15);
});
