import { describe, expect, it } from 'vitest';
import { aggregate } from '../../../src/evaluation/metrics/aggregate.ts';
import type { MetricsLine } from '../../../src/schemas/experiment.ts';
import { classificationEvaluationWarnings, classificationRunWarnings } from '../../../src/tasks/classification/warnings.ts';
import { regressionEvaluationWarnings, regressionRunWarnings } from '../../../src/tasks/regression/warnings.ts';

/** Training that fails silently is said, with what to try (the hardening issue's first finding). */

const NAMES = ['ants', 'bees'];
const line = (epoch: number, val_loss: number | null, val_accuracy: number | null, diagnostics?: Record<string, number>): MetricsLine => ({
  schema_version: 1,
  epoch,
  step: epoch * 10,
  train_loss: 0.5,
  train_accuracy: 0.8,
  val_loss,
  val_accuracy,
  metrics: { val_accuracy },
  ...(diagnostics ? { diagnostics } : {}),
  lr: 1e-3,
  images_per_s: 100,
  seconds: 1,
  time: '2026-12-07T00:00:00.000Z',
});
const codes = (ws: { code: string }[]) => ws.map((w) => w.code).sort();

describe('classification run warnings', () => {
  it('the collapse seen on real photos: one class, loss flat at ln 2, accuracy at the majority baseline', () => {
    const lines = Array.from({ length: 25 }, (_, i) => line(i + 1, 0.6931, 0.514, { distinct_predictions: 1, majority_baseline: 0.514 }));
    const ws = classificationRunWarnings(lines, NAMES);
    expect(codes(ws)).toEqual(['NO_BETTER_THAN_BASELINE', 'ONE_CLASS_PREDICTIONS', 'VAL_LOSS_AT_CHANCE']);
    const baseline = ws.find((w) => w.code === 'NO_BETTER_THAN_BASELINE')!;
    expect(baseline.message).toContain('51.4 %');
    expect(baseline.message).toMatch(/Batch-norm statistics/);
  });

  it('a run that learns gets none, nor does one without validation', () => {
    const lines = [line(1, 0.6, 0.6, { distinct_predictions: 2, majority_baseline: 0.514 }), line(2, 0.3, 0.9, { distinct_predictions: 2, majority_baseline: 0.514 })];
    expect(classificationRunWarnings(lines, NAMES)).toEqual([]);
    expect(classificationRunWarnings([line(1, null, null)], NAMES)).toEqual([]);
    // lines written before diagnostics: only what the loss says
    expect(classificationRunWarnings([line(1, 0.3, 0.9), line(2, 0.2, 0.95)], NAMES)).toEqual([]);
  });
});

describe('classification evaluation warnings', () => {
  it('every image predicted as one class, at the majority baseline', () => {
    // 3 ants and 2 bees, every one predicted "ants": accuracy 0.6 = the majority baseline
    const probs = Float32Array.from([0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4, 0.55, 0.45]);
    const a = aggregate({ probs, targets: [0, 0, 0, 1, 1], labels: NAMES });
    const ws = classificationEvaluationWarnings(a);
    expect(codes(ws)).toEqual(['NO_BETTER_THAN_BASELINE', 'ONE_CLASS_PREDICTIONS']);
    expect(ws.find((w) => w.code === 'ONE_CLASS_PREDICTIONS')!.message).toContain('“ants”');
  });
  it('a useful classifier gets none', () => {
    const probs = Float32Array.from([0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.4, 0.6, 0.2, 0.8]);
    expect(classificationEvaluationWarnings(aggregate({ probs, targets: [0, 0, 0, 1, 1], labels: NAMES }))).toEqual([]);
  });
});

describe('regression warnings', () => {
  it('R² at or below 0 is no better than the mean', () => {
    const l = (r2: number) => ({ ...line(1, 0.9, null), metrics: { val_r2: r2 } });
    expect(codes(regressionRunWarnings([l(-0.2), l(0)]))).toEqual(['NO_BETTER_THAN_BASELINE']);
    expect(regressionRunWarnings([l(-0.2), l(0.7)])).toEqual([]);
    expect(codes(regressionEvaluationWarnings(-0.05))).toEqual(['NO_BETTER_THAN_BASELINE']);
    expect(regressionEvaluationWarnings(null)).toEqual([]);
    expect(regressionEvaluationWarnings(0.8)).toEqual([]);
  });
});
