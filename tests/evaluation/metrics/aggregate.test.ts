import { describe, expect, it } from 'vitest';
import {
  aggregate,
  AggregateMetricsSchema,
  calibration,
  cohenKappa,
  confusionFromProbs,
  logLoss,
  MAX_CURVE_POINTS,
  rocAucOneVsRest,
  topKAccuracy,
} from '../../../src/evaluation/metrics/index.ts';
import { randomPredictions, rows } from './random.ts';

describe('aggregate', () => {
  it('returns the API shape, each figure equal to its own metric', () => {
    const labels = ['cat', 'dog', 'bird', 'fish', 'frog', 'newt'];
    const { probs, targets } = randomPredictions(21, 3000, 6);
    const a = aggregate({ probs, targets, labels });
    expect(Object.keys(a).sort()).toEqual(
      ['accuracy', 'balanced_accuracy', 'confusion_matrix', 'curves', 'ece', 'kappa', 'log_loss', 'macro', 'per_class', 'reliability', 'roc_auc', 'top_k', 'weighted'].sort(),
    );
    expect(AggregateMetricsSchema.parse(JSON.parse(JSON.stringify(a)))).toEqual(a);
    const cm = confusionFromProbs(probs, targets, 6);
    expect(a.confusion_matrix).toEqual({ labels, matrix: cm });
    expect(a.top_k).toEqual({ '3': topKAccuracy(probs, targets, 6, 3), '5': topKAccuracy(probs, targets, 6, 5) });
    expect(a.kappa).toBe(cohenKappa(cm));
    expect(a.log_loss).toBe(logLoss(probs, targets, 6));
    expect(a.ece).toBe(calibration(probs, targets, 6).ece);
    expect(a.reliability).toHaveLength(15);
    expect(Object.keys(a.per_class)).toEqual(labels);
    expect(a.per_class.dog.support).toBe(targets.filter((t) => t === 1).length);
    // AUCs come from the full curves, not from the stored, downsampled ones.
    const ovr = rocAucOneVsRest(probs, targets, 6);
    expect(a.roc_auc.macro).toBeCloseTo(ovr.macro ?? NaN, 12);
    labels.forEach((l, k) => expect(a.roc_auc.per_class[l]).toBeCloseTo(ovr.perClass[k] ?? NaN, 12));
    for (const l of labels) {
      expect(a.curves.roc[l].fpr.length).toBeLessThanOrEqual(MAX_CURVE_POINTS);
      expect(a.curves.roc[l].fpr.length).toBe(a.curves.roc[l].tpr.length);
      expect(a.curves.pr[l].precision.length).toBeLessThanOrEqual(MAX_CURVE_POINTS);
      expect(a.curves.pr[l].recall[a.curves.pr[l].recall.length - 1]).toBe(0);
      expect(a.curves.pr[l].average_precision).toBeGreaterThan(0);
    }
    expect(a.accuracy).toBeGreaterThan(1 / 6); // the generator favours the true class
  });

  it('downsamples the stored curves to the asked size, keeping both ends', () => {
    const a = aggregate({ ...randomPredictions(25, 1000, 3), labels: ['x', 'y', 'z'], maxCurvePoints: 10 });
    for (const l of ['x', 'y', 'z']) {
      expect(a.curves.roc[l].fpr).toHaveLength(10);
      expect([a.curves.roc[l].fpr[0], a.curves.roc[l].tpr[0], a.curves.roc[l].fpr[9], a.curves.roc[l].tpr[9]]).toEqual([0, 0, 1, 1]);
      expect(a.curves.pr[l].recall).toHaveLength(10);
      expect(a.curves.pr[l].recall[0]).toBe(1);
    }
  });

  it('handles C = 2: no top-k, both classes with the same AUC', () => {
    const { probs, targets } = randomPredictions(22, 80, 2);
    const a = aggregate({ probs, targets, labels: ['no', 'yes'] });
    expect(a.top_k).toEqual({});
    expect(a.roc_auc.per_class.no).toBeCloseTo(a.roc_auc.per_class.yes ?? NaN, 12);
    const four = randomPredictions(23, 10, 4);
    expect(Object.keys(aggregate({ ...four, labels: ['a', 'b', 'c', 'd'] }).top_k)).toEqual(['3']);
  });

  it('handles N = 1: undefined figures are null, the rest defined', () => {
    const a = aggregate({ probs: rows([[0.2, 0.7, 0.1]]), targets: [1], labels: ['a', 'b', 'c'] });
    expect(a.accuracy).toBe(1);
    expect(a.kappa).toBeNull();
    expect(a.roc_auc).toEqual({ macro: null, per_class: { a: null, b: null, c: null } });
    expect(a.curves.roc).toEqual({});
    expect(Object.keys(a.curves.pr)).toEqual(['b']);
    expect(a.log_loss).toBeCloseTo(-Math.log(0.7), 12);
    expect(a.ece).toBeCloseTo(0.3, 12);
    expect(a.macro).toEqual({ precision: 1, recall: 1, f1: 1 });
    expect(a.balanced_accuracy).toBe(1);
    expect(AggregateMetricsSchema.safeParse(a).success).toBe(true);
  });

  it('handles a class with no support and one never predicted', () => {
    // Predictions a, a, c, a against targets a, b, a, b: class c has no images, class b is never predicted.
    const probs = rows([
      [0.9, 0.05, 0.05],
      [0.6, 0.3, 0.1],
      [0.2, 0.1, 0.7],
      [0.7, 0.2, 0.1],
    ]);
    const a = aggregate({ probs, targets: [0, 1, 0, 1], labels: ['a', 'b', 'c'] });
    expect(a.per_class.b).toEqual({ precision: 0, recall: 0, f1: 0, support: 2 });
    expect(a.per_class.c).toEqual({ precision: 0, recall: 0, f1: 0, support: 0 });
    expect(a.roc_auc.per_class.c).toBeNull();
    expect(a.curves.roc.c).toBeUndefined();
    expect(a.curves.pr.c).toBeUndefined();
    // a: TP 1 (image 0), FP 2 (images 1, 3), FN 1 (image 2, predicted c); precision 1/3, recall 1/2.
    expect(a.per_class.a.precision).toBeCloseTo(1 / 3, 12);
    expect(a.per_class.a.recall).toBeCloseTo(1 / 2, 12);
    expect(a.balanced_accuracy).toBeCloseTo((1 / 2 + 0) / 2, 12);
    expect(a.macro.recall).toBeCloseTo((1 / 2 + 0 + 0) / 3, 12);
    expect(a.weighted.recall).toBeCloseTo(1 / 4, 12);
  });

  it('refuses what it cannot score', () => {
    expect(() => aggregate({ probs: new Float32Array(0), targets: [], labels: ['a', 'b'] })).toThrow(/no images/);
    expect(() => aggregate({ probs: rows([[0.5, 0.5]]), targets: [0], labels: ['a', 'a'] })).toThrow(/distinct/);
    expect(() => aggregate({ probs: rows([[0.5, 0.5]]), targets: [0], labels: ['a', '__proto__'] })).toThrow(/__proto__/);
  });

  it('reads back a stored aggregate and refuses a malformed one', () => {
    const a = aggregate({ ...randomPredictions(24, 50, 3), labels: ['x', 'y', 'z'] });
    expect(AggregateMetricsSchema.safeParse({ ...a, accuracy: 1.5 }).success).toBe(false);
    expect(AggregateMetricsSchema.safeParse({ ...a, confusion_matrix: { labels: ['x', 'y', 'z'], matrix: [[1, 2]] } }).success).toBe(false);
    expect(AggregateMetricsSchema.safeParse({ ...a, kappa: Number.NaN }).success).toBe(false);
  });
});
