import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCheckpoint } from '../../src/models/checkpoint.ts';
import { readCheckpoint } from '../../src/storage/runs.ts';
import { Workspace } from '../../src/storage/workspace.ts';
import { call, makeStudio, parseSse, type TestStudio } from './helpers.ts';
import { GENTLE_AUGMENTATION, makeShapesProject, waitForRun, waitUntil, type RunView, type ShapesProject } from './runs-fixtures.ts';

let s: TestStudio;
let p: ShapesProject;

beforeAll(async () => {
  s = await makeStudio();
  // 4 shapes × 100 images rendered at 64×64, trained at 32×32 to keep CI fast.
  p = await makeShapesProject(s.app, s.dir, { perClass: 100, size: 64 });
}, 120_000);
afterAll(async () => s?.close());

async function createExperiment(hyperparameters: Record<string, unknown>): Promise<string> {
  const res = await call<{ id: string }>(s.app, 'POST', `/api/projects/${p.pid}/experiments`, {
    name: 'shapes cnn',
    dataset_id: p.datasetId,
    split_name: 'main',
    model: { architecture: 'small_cnn', input_size: 32 },
    hyperparameters: { batch_size: 16, optimizer: 'adamw', lr: 1e-2, weight_decay: 1e-4, scheduler: 'cosine', seed: 1, ...hyperparameters },
    augmentation: GENTLE_AUGMENTATION,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.data.id;
}

const runsUrl = (expId: string) => `/api/projects/${p.pid}/experiments/${expId}/runs`;

async function startRun(expId: string): Promise<{ id: string; url: string; jobId: string }> {
  const res = await call<{ run: { id: string; status: string }; job: { id: string } }>(s.app, 'POST', runsUrl(expId));
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return { id: res.body.data.run.id, url: `${runsUrl(expId)}/${res.body.data.run.id}`, jobId: res.body.data.job.id };
}

/** The trained state in a run's `last` checkpoint. */
async function lastState(expId: string, runId: string) {
  const bytes = await readCheckpoint(new Workspace(s.settings.workspace), { projectId: p.pid, experimentId: expId, runId }, 'last');
  if (!bytes) throw new Error('no last checkpoint');
  const c = decodeCheckpoint(bytes);
  return { params: c.params, optimizerState: c.optimizerState, bnStats: c.bnStats, step: c.step };
}

describe('training through the API', () => {
  it('a small CNN learns the 4 shapes to ≥ 95 % validation accuracy', async () => {
    const expId = await createExperiment({ epochs: 15 });
    const run0 = await startRun(expId);
    const run = await waitForRun(s.app, run0.url, 150_000);
    expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
    expect(run.metrics).toHaveLength(15);
    for (const [i, m] of run.metrics.entries()) {
      expect(m.epoch).toBe(i + 1);
      for (const k of ['train_loss', 'train_accuracy', 'val_loss', 'val_accuracy', 'lr', 'images_per_s', 'seconds'] as const) expect(Number.isFinite(m[k])).toBe(true);
    }
    console.log(`val accuracy per epoch: ${run.metrics.map((m) => m.val_accuracy!.toFixed(3)).join(' ')}`);
    expect(run.metrics.at(-1)!.val_accuracy!).toBeGreaterThanOrEqual(0.95);
    expect(run.best?.metric).toBe('val_accuracy');
    expect(run.best!.value).toBe(Math.max(...run.metrics.map((m) => m.val_accuracy!)));
    expect(run.checkpoints.map((c) => c.name).sort()).toEqual(['best', 'last']);
    const config = run.config as { split: { train_count: number; val_count: number }; steps_per_epoch: number };
    expect(run.config).toMatchObject({
      split: { name: 'main' },
      dataset: { id: p.datasetId, classes: ['circle', 'cross', 'square', 'triangle'] },
      model: { architecture: 'small_cnn', input_size: 32, num_classes: 4, trainable: 'all' },
      hyperparameters: { epochs: 15, lr: 1e-2 },
    });
    expect(config.split.train_count + config.split.val_count).toBe(400);
    expect(config.steps_per_epoch).toBe(Math.floor(config.split.train_count / 16));
    // what the validation predictions looked like: every class used, the trivial baseline a quarter; nothing to warn of
    const last = run.metrics.at(-1) as unknown as { diagnostics: { distinct_predictions: number; majority_baseline: number } };
    expect(last.diagnostics.distinct_predictions).toBe(4);
    expect(last.diagnostics.majority_baseline).toBeGreaterThan(0.2);
    expect(last.diagnostics.majority_baseline).toBeLessThan(0.3);
    expect((run as unknown as { warnings: unknown[] }).warnings).toEqual([]);

    // The run's event stream: progress, one `metric` per epoch, log lines, and `done` last.
    const sse = parseSse((await s.app.inject({ method: 'GET', url: `${run0.url}/events` })).body);
    expect(sse.filter((e) => e.event === 'metric')).toHaveLength(15);
    expect(sse.filter((e) => e.event === 'log').length).toBeGreaterThan(15);
    // The training images were decoded once, up front, before the first step.
    const logs = sse.filter((e) => e.event === 'log').map((e) => JSON.stringify(e.data));
    expect(logs.filter((l) => l.includes(`decoded ${config.split.train_count} training images into memory`))).toHaveLength(1);
    expect(sse.some((e) => e.event === 'progress' && typeof (e.data as { images_per_s?: number }).images_per_s === 'number')).toBe(true);
    expect(sse.at(-1)?.event).toBe('done');
    const job = (await call<{ status: string }>(s.app, 'GET', `/api/jobs/${run0.jobId}`)).body.data;
    expect(job.status).toBe('succeeded');
  }, 200_000);

  it('queues a second run, cancels (queued and running), resumes to the same parameters as an uninterrupted run', async () => {
    const expId = await createExperiment({ epochs: 3, scheduler: 'step', step_size: 1, gamma: 0.5 });
    const a = await startRun(expId);
    const b = await startRun(expId);
    // One run trains at a time: the second waits, visibly.
    await waitUntil(s.app, a.url, (r) => r.status === 'running');
    expect((await call<RunView>(s.app, 'GET', b.url)).body.data.status).toBe('queued');
    const queue = (await call<Array<{ run_id: string; status: string }>>(s.app, 'GET', '/api/runs/queue')).body.data;
    expect(queue.map((q) => [q.run_id, q.status])).toEqual([[a.id, 'running'], [b.id, 'queued']]);

    // Cancelling the queued one settles it at once; it never ran.
    const bc = await call<RunView>(s.app, 'POST', `${b.url}/cancel`);
    expect(bc.status).toBe(200);
    expect(bc.body.data).toMatchObject({ status: 'cancelled', epochs_done: 0, started_at: null });

    // Cancel the running one after its first epoch: it stops and keeps its last checkpoint.
    await waitUntil(s.app, a.url, (r) => r.epochs_done >= 1);
    const ac = await call<RunView>(s.app, 'POST', `${a.url}/cancel`);
    expect(ac.status).toBe(200);
    expect(ac.body.data.status).toBe('cancelled');
    const cancelled = (await call<RunView>(s.app, 'GET', a.url)).body.data;
    expect(cancelled.stop_reason).toBe('cancelled');
    expect(cancelled.epochs_done).toBeGreaterThanOrEqual(1);
    expect(cancelled.checkpoints.find((c) => c.name === 'last')?.epoch).toBe(cancelled.epochs_done);
    expect(cancelled.metrics).toHaveLength(cancelled.epochs_done);
    expect((await call(s.app, 'POST', `${a.url}/cancel`)).status).toBe(409);

    // Resume continues from that epoch to the end.
    const resumed = await call<{ run: RunView; job: { id: string } }>(s.app, 'POST', `${a.url}/resume`);
    expect(resumed.status).toBe(202);
    expect(resumed.body.data.job.id).not.toBe(a.jobId);
    const done = await waitForRun(s.app, a.url);
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    expect(done.resumes).toBe(1);
    expect(done.metrics.map((m) => m.epoch)).toEqual([1, 2, 3]);
    expect(done.metrics.slice(0, cancelled.epochs_done)).toEqual(cancelled.metrics);
    expect((await call(s.app, 'POST', `${a.url}/resume`)).status).toBe(409);

    // An uninterrupted run of the same experiment (same seed) ends with the same parameters.
    const c = await startRun(expId);
    const straight = await waitForRun(s.app, c.url);
    expect(straight.status).toBe('succeeded');
    expect(straight.metrics.map((m) => m.train_loss)).toEqual(done.metrics.map((m) => m.train_loss));
    const [x, y] = [await lastState(expId, a.id), await lastState(expId, c.id)];
    expect(x.step).toBe(y.step);
    for (const group of ['params', 'optimizerState', 'bnStats'] as const) {
      expect(Object.keys(x[group]).sort()).toEqual(Object.keys(y[group]).sort());
      for (const name of Object.keys(x[group])) expect(Array.from(x[group][name].data as Float32Array), `${group}/${name}`).toEqual(Array.from(y[group][name].data as Float32Array));
    }

    const list = (await call<RunView[]>(s.app, 'GET', runsUrl(expId))).body.data;
    expect(list.map((r) => r.id)).toEqual([c.id, b.id, a.id]);
  }, 200_000);

  it('refuses to delete an experiment while it trains, and answers 404 for unknown runs', async () => {
    const expId = await createExperiment({ epochs: 5 });
    const r = await startRun(expId);
    const del = await call(s.app, 'DELETE', `/api/projects/${p.pid}/experiments/${expId}`);
    expect(del.status).toBe(409);
    await call(s.app, 'POST', `${r.url}/cancel`);
    expect((await call(s.app, 'DELETE', `/api/projects/${p.pid}/experiments/${expId}`)).status).toBe(200);
    expect((await call(s.app, 'GET', `${runsUrl(expId)}/run-00000000`)).status).toBe(404);
  }, 60_000);
});

describe('starting a run', () => {
  it('refuses a body with settings (they belong to the experiment) and takes a seed of its own', async () => {
    const expId = await createExperiment({ epochs: 1 });
    const bad = await call(s.app, 'POST', runsUrl(expId), { epochs: 5 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('VALIDATION_ERROR');
    expect(bad.body.error.message).toMatch(/epochs/);
    const res = await call<{ run: { id: string } }>(s.app, 'POST', runsUrl(expId), { seed: 12345 });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const run = await waitForRun(s.app, `${runsUrl(expId)}/${res.body.data.run.id}`);
    expect(run.status).toBe('succeeded');
    expect((run.config?.hyperparameters as { seed: number }).seed).toBe(12345);
    // the experiment keeps its own seed
    const exp = await call<{ hyperparameters: { seed: number } }>(s.app, 'GET', `/api/projects/${p.pid}/experiments/${expId}`);
    expect(exp.body.data.hyperparameters.seed).toBe(1);
  });
});
