import { describe, expect, it } from 'vitest';
import {
  accuracy,
  argmaxRows,
  balancedAccuracy,
  cohenKappa,
  confusionFromProbs,
  confusionMatrix,
  macroAverage,
  perClassScores,
  presentClasses,
  reportedTopK,
  topKAccuracy,
  weightedAverage,
} from '../../../src/evaluation/metrics/index.ts';
import { randomPredictions, rows } from './random.ts';

// Six images, three classes; argmax predictions 0,1,1,1,0,2 against targets 0,0,1,1,2,2.
const probs = rows([
  [0.6, 0.3, 0.1],
  [0.2, 0.7, 0.1],
  [0.1, 0.8, 0.1],
  [0.3, 0.4, 0.3],
  [0.5, 0.1, 0.4],
  [0.1, 0.2, 0.7],
]);
const targets = [0, 0, 1, 1, 2, 2];

describe('confusion matrix and accuracy', () => {
  it('counts true class by row and predicted class by column', () => {
    expect(Array.from(argmaxRows(probs, 3))).toEqual([0, 1, 1, 1, 0, 2]);
    expect(confusionFromProbs(probs, targets, 3)).toEqual([
      [1, 1, 0],
      [0, 2, 0],
      [1, 0, 1],
    ]);
    expect(accuracy(probs, targets, 3)).toBeCloseTo(4 / 6, 12);
  });

  it('breaks argmax ties towards the lower class index', () => {
    expect(Array.from(argmaxRows(rows([[0.4, 0.4, 0.2], [0.2, 0.4, 0.4]]), 3))).toEqual([0, 1]);
  });

  it('refuses inputs whose shapes disagree or that hold bad values', () => {
    expect(() => accuracy(new Float32Array(5), [0, 1], 3)).toThrow(/expected 2 images × 3 classes/);
    expect(() => accuracy(new Float32Array(6), [0, 3], 3)).toThrow(/not a class index/);
    expect(() => accuracy(new Float32Array(6), [0, 1.5], 3)).toThrow(/not a class index/);
    expect(() => accuracy(Float32Array.from([NaN, 0, 0, 0, 0, 1]), [0, 1], 3)).toThrow(/NaN, not in \[0, 1\]/);
    expect(() => accuracy(Float32Array.from([2.5, -1, 0, 0, 0, 1]), [0, 1], 3)).toThrow(/2.5, not in \[0, 1\]/);
    expect(() => accuracy(new Float32Array(0), [], 0)).toThrow(/positive integer/);
  });
});

describe('per-class precision, recall, F1 and their averages', () => {
  it('matches the hand computation on the six-image case', () => {
    const s = perClassScores(confusionFromProbs(probs, targets, 3));
    // class 0: TP 1, FP 1, FN 1; class 1: TP 2, FP 1, FN 0; class 2: TP 1, FP 0, FN 1.
    expect(s[0]).toEqual({ precision: 0.5, recall: 0.5, f1: 0.5, support: 2 });
    expect(s[1].precision).toBeCloseTo(2 / 3, 12);
    expect(s[1].recall).toBe(1);
    expect(s[1].f1).toBeCloseTo(0.8, 12);
    expect(s[2].precision).toBe(1);
    expect(s[2].recall).toBe(0.5);
    expect(s[2].f1).toBeCloseTo(2 / 3, 12);
    const m = macroAverage(confusionFromProbs(probs, targets, 3));
    expect(m.precision).toBeCloseTo(13 / 18, 12);
    expect(m.recall).toBeCloseTo(2 / 3, 12);
    expect(m.f1).toBeCloseTo(59 / 90, 12);
  });

  it('gives macro-F1 of a known confusion matrix', () => {
    const cm = [
      [5, 2, 0],
      [3, 3, 2],
      [0, 1, 11],
    ];
    // F1 = 2TP / (2TP + FP + FN): 10/15, 6/14, 22/25.
    const f1 = [10 / 15, 6 / 14, 22 / 25];
    expect(perClassScores(cm).map((s) => s.f1)).toEqual(f1.map((v) => expect.closeTo(v, 12)));
    expect(macroAverage(cm).f1).toBeCloseTo((f1[0] + f1[1] + f1[2]) / 3, 12);
    // Supports 7, 8, 12.
    expect(weightedAverage(cm).f1).toBeCloseTo((7 * f1[0] + 8 * f1[1] + 12 * f1[2]) / 27, 12);
    expect(weightedAverage(cm).recall).toBeCloseTo(19 / 27, 12); // weighted recall is accuracy
    expect(weightedAverage(cm).precision).toBeCloseTo((7 * (5 / 8) + 8 * (3 / 6) + 12 * (11 / 13)) / 27, 12);
  });

  it('scores a class that is never predicted as 0, not NaN, and keeps it in the macro average', () => {
    const cm = confusionMatrix([0, 1, 2, 2], [0, 1, 1, 0], 3);
    const s = perClassScores(cm);
    expect(s[2]).toEqual({ precision: 0, recall: 0, f1: 0, support: 2 });
    expect(presentClasses(cm)).toEqual([0, 1, 2]);
    // class 0: P 1/2 R 1; class 1: P 1/2 R 1; class 2: 0, 0.
    expect(macroAverage(cm).precision).toBeCloseTo(1 / 3, 12);
    expect(macroAverage(cm).recall).toBeCloseTo(2 / 3, 12);
  });

  it('leaves a class with neither support nor predictions out of the averages', () => {
    const cm = confusionMatrix([0, 0, 1], [0, 1, 1], 3);
    expect(perClassScores(cm)[2]).toEqual({ precision: 0, recall: 0, f1: 0, support: 0 });
    expect(presentClasses(cm)).toEqual([0, 1]);
    // class 0: P 1, R 1/2, F1 2/3; class 1: P 1/2, R 1, F1 2/3.
    expect(macroAverage(cm)).toEqual({ precision: 0.75, recall: 0.75, f1: expect.closeTo(2 / 3, 12) });
  });

  it('counts a class that is predicted but has no support in macro, not in weighted', () => {
    const cm = confusionMatrix([0, 0, 0, 1], [0, 0, 2, 1], 3);
    const s = perClassScores(cm);
    expect(s[2]).toEqual({ precision: 0, recall: 0, f1: 0, support: 0 });
    expect(macroAverage(cm).precision).toBeCloseTo((1 + 1 + 0) / 3, 12);
    expect(weightedAverage(cm).precision).toBeCloseTo(1, 12);
    expect(weightedAverage(cm).recall).toBeCloseTo(0.75, 12);
  });
});

describe('balanced accuracy and Cohen kappa', () => {
  it('matches the hand computation on the six-image case', () => {
    const cm = confusionFromProbs(probs, targets, 3);
    expect(balancedAccuracy(cm)).toBeCloseTo((0.5 + 1 + 0.5) / 3, 12);
    // p_o = 4/6; marginals rows 2,2,2 and columns 2,3,1 give p_e = 12/36; κ = (2/3 − 1/3)/(2/3).
    expect(cohenKappa(cm)).toBeCloseTo(0.5, 12);
  });

  it('averages recall only over classes with support', () => {
    expect(balancedAccuracy(confusionMatrix([0, 0, 0, 1], [0, 0, 2, 1], 3))).toBeCloseTo((2 / 3 + 1) / 2, 12);
  });

  it('agrees with κ = (p_o − p_e)/(1 − p_e) computed from the label pairs on random data', () => {
    for (const seed of [1, 2, 3]) {
      const { probs: p, targets: t } = randomPredictions(seed, 300, 5);
      const pred = argmaxRows(p, 5);
      const n = t.length;
      const po = t.filter((v, i) => v === pred[i]).length / n;
      let pe = 0;
      for (let k = 0; k < 5; k++) pe += (t.filter((v) => v === k).length / n) * (Array.from(pred).filter((v) => v === k).length / n);
      expect(cohenKappa(confusionMatrix(t, pred, 5))).toBeCloseTo((po - pe) / (1 - pe), 12);
    }
  });

  it('is 1 for perfect agreement, negative below chance, and null when undefined', () => {
    expect(cohenKappa(confusionMatrix([0, 1, 2], [0, 1, 2], 3))).toBe(1);
    // Always wrong on two balanced classes: p_o = 0, p_e = 1/2.
    expect(cohenKappa(confusionMatrix([0, 1], [1, 0], 2))).toBe(-1);
    expect(cohenKappa(confusionMatrix([1, 1], [1, 1], 2))).toBeNull();
    expect(cohenKappa([[0]])).toBeNull();
  });
});

describe('top-k accuracy', () => {
  it('counts the true class among the k highest scores', () => {
    const p = rows([
      [0.1, 0.4, 0.3, 0.2], // target 3 ranks third
      [0.7, 0.1, 0.1, 0.1], // target 0 ranks first
      [0.1, 0.2, 0.3, 0.4], // target 0 ranks fourth
    ]);
    const t = [3, 0, 0];
    expect(topKAccuracy(p, t, 4, 1)).toBeCloseTo(1 / 3, 12);
    expect(topKAccuracy(p, t, 4, 2)).toBeCloseTo(1 / 3, 12);
    expect(topKAccuracy(p, t, 4, 3)).toBeCloseTo(2 / 3, 12);
    expect(topKAccuracy(p, t, 4, 4)).toBe(1);
  });

  it('ranks ties as argmax does, so top-1 equals accuracy', () => {
    const flat = rows([[0.25, 0.25, 0.25, 0.25]]);
    expect(topKAccuracy(flat, [0], 4, 1)).toBe(1);
    expect(topKAccuracy(flat, [3], 4, 3)).toBe(0);
    for (const seed of [4, 5]) {
      const { probs: p, targets: t } = randomPredictions(seed, 200, 6, 1);
      expect(topKAccuracy(p, t, 6, 1)).toBe(accuracy(p, t, 6));
    }
  });

  it('reports k = 3 and 5 only when there are more classes than k', () => {
    expect(reportedTopK(2)).toEqual([]);
    expect(reportedTopK(3)).toEqual([]);
    expect(reportedTopK(4)).toEqual([3]);
    expect(reportedTopK(6)).toEqual([3, 5]);
    expect(() => topKAccuracy(probs, targets, 3, 0)).toThrow(/positive integer/);
  });
});
