import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, makeStudio, type TestStudio } from './helpers.ts';
import { waitForRun, type RunView } from './runs-fixtures.ts';
import { makeMultilabelProject, makeRegressionProject, NO_AUGMENTATION, QUICK_HYPERPARAMETERS, type TaskProject } from './task-fixtures.ts';

/**
 * Multi-label and regression end to end through the API's training: an experiment takes its task
 * from the dataset, refuses what does not fit the task, and a run learns (val mAP / R² ≥ 0.9),
 * reporting the task's per-epoch metrics and storing the task's fitted state.
 */

interface TaskRun extends RunView {
  metrics: (RunView['metrics'][number] & { metrics: Record<string, number | null> })[];
  config: (Record<string, unknown> & { task: string; task_state: Record<string, unknown>; dataset: { classes: string[] } }) | null;
}

let s: TestStudio;
let ml: TaskProject;
let reg: TaskProject;

beforeAll(async () => {
  s = await makeStudio();
  ml = await makeMultilabelProject(s.app, s.dir);
  reg = await makeRegressionProject(s.app, s.dir);
}, 120_000);
afterAll(async () => s?.close());

async function experiment(p: TaskProject, extra: Record<string, unknown> = {}) {
  return call<{ id: string; task: string; hyperparameters: Record<string, unknown> }>(s.app, 'POST', `/api/projects/${p.pid}/experiments`, {
    name: 'e',
    dataset_id: p.datasetId,
    split_name: 'main',
    model: { architecture: 'small_cnn' },
    augmentation: NO_AUGMENTATION,
    ...extra,
  });
}

async function train(p: TaskProject, hyperparameters: Record<string, unknown>): Promise<TaskRun> {
  const exp = await experiment(p, { hyperparameters: { ...QUICK_HYPERPARAMETERS, ...hyperparameters } });
  expect(exp.status, JSON.stringify(exp.body)).toBe(201);
  const base = `/api/projects/${p.pid}/experiments/${exp.body.data.id}/runs`;
  const started = await call<{ run: { id: string } }>(s.app, 'POST', base, {});
  expect(started.status, JSON.stringify(started.body)).toBe(202);
  return (await waitForRun(s.app, `${base}/${started.body.data.run.id}`, 180_000)) as TaskRun;
}

describe('experiments take the task of their dataset', () => {
  it('fills the task from the dataset and refuses another one, a loss or an early-stopping metric of another task', async () => {
    const ok = await experiment(ml);
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    expect(ok.body.data.task).toBe('multilabel');
    const cases: [TaskProject, Record<string, unknown>, RegExp][] = [
      [ml, { task: 'regression' }, /^task: the dataset is a multilabel dataset/],
      [ml, { task: 'keypoints' }, /task/],
      [ml, { hyperparameters: { loss: 'mse' } }, /^hyperparameters\.loss: 'mse' is not a multilabel loss \(one of: bce\)/],
      [reg, { hyperparameters: { loss: 'bce' } }, /^hyperparameters\.loss: 'bce' is not a regression loss \(one of: mse, l1, huber\)/],
      [reg, { hyperparameters: { early_stopping: { metric: 'val_accuracy' } } }, /^hyperparameters\.early_stopping\.metric: must be one of "val_loss", "val_mae", "val_r2"/],
      // a setting of another task would be silently ignored
      [ml, { hyperparameters: { class_weights: 'balanced' } }, /^hyperparameters\.class_weights: a multilabel experiment takes no class weights/],
      [reg, { hyperparameters: { label_smoothing: 0.1 } }, /^hyperparameters\.label_smoothing: a regression experiment takes no label smoothing/],
      [ml, { hyperparameters: { huber_delta: 2 } }, /^hyperparameters\.huber_delta: a multilabel experiment takes no Huber delta/],
    ];
    for (const [p, extra, message] of cases) {
      const res = await experiment(p, extra);
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
      expect(res.body.error.message).toMatch(message);
    }
  });
});

describe('a multi-label run', () => {
  it('learns the shapes present (val mAP ≥ 0.9) and reports mAP and micro-F1 per epoch', { timeout: 240_000 }, async () => {
    const run = await train(ml, { pos_weight: 'balanced' });
    expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
    const last = run.metrics.at(-1)!;
    expect(last.metrics.val_map).toBeGreaterThanOrEqual(0.9);
    expect(last.metrics.val_micro_f1).toBeGreaterThan(0.8);
    expect(last.metrics.train_map).toBeTypeOf('number');
    expect(last.train_accuracy).toBeNull();
    expect(run.best?.metric).toBe('val_map');
    expect(run.config?.task).toBe('multilabel');
    // small_cnn has batch norm and the training subset is small: 'auto' recomputes its statistics
    expect(run.config?.bn_recalibration).toEqual({ enabled: true, images: (run.config as unknown as { split: { train_count: number } }).split.train_count });
    expect(run.config?.dataset.classes).toEqual(['circle', 'square', 'triangle']);
    const pw = (run.config?.task_state as { pos_weight: number[] }).pos_weight;
    expect(pw).toHaveLength(3);
    for (const w of pw) expect(w).toBeGreaterThan(0.5);
  });
});

describe('a regression run', () => {
  it('learns a disc radius (val R² ≥ 0.9) in pixels and stores the standardisation', { timeout: 240_000 }, async () => {
    const run = await train(reg, { loss: 'huber', huber_delta: 1 });
    expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
    const last = run.metrics.at(-1)!;
    expect(last.metrics.val_r2).toBeGreaterThanOrEqual(0.9);
    // radii span 3–12 px: an MAE under a pixel is in the target's own units
    expect(last.metrics.val_mae).toBeLessThan(1);
    expect(run.best?.metric).toBe('val_mae');
    expect((run as unknown as { warnings: unknown[] }).warnings).toEqual([]);
    expect(run.config?.dataset.classes).toEqual(['radius']);
    const st = run.config?.task_state as { mean: number[]; std: number[] };
    expect(st.mean[0]).toBeGreaterThan(5);
    expect(st.mean[0]).toBeLessThan(10);
    expect(st.std[0]).toBeGreaterThan(1.5);
  });
});
