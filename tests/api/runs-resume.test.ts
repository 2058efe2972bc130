import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, makeStudio, type TestStudio } from './helpers.ts';
import { GENTLE_AUGMENTATION, makeShapesProject, waitForRun, waitUntil, type RunView, type ShapesProject } from './runs-fixtures.ts';

/**
 * Resume trains with the run's own config.json: an edit of the experiment after the run started —
 * even one that no longer validates — neither blocks nor changes it.
 */

let s: TestStudio;
let p: ShapesProject;

beforeAll(async () => {
  s = await makeStudio();
  p = await makeShapesProject(s.app, s.dir, { perClass: 16, size: 32 });
}, 60_000);
afterAll(async () => s?.close());

describe('resuming a run', () => {
  it("uses the run's stored settings although the experiment was edited since (and no longer validates)", async () => {
    const exps = `/api/projects/${p.pid}/experiments`;
    const created = await call<{ id: string }>(s.app, 'POST', exps, {
      name: 'resume me',
      dataset_id: p.datasetId,
      split_name: 'main',
      model: { architecture: 'small_cnn', input_size: 32 },
      hyperparameters: { epochs: 40, batch_size: 16, lr: 1e-2, seed: 1 },
      augmentation: GENTLE_AUGMENTATION,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const expId = created.body.data.id;
    const runs = `${exps}/${expId}/runs`;
    const started = await call<{ run: { id: string } }>(s.app, 'POST', runs);
    expect(started.status).toBe(202);
    const url = `${runs}/${started.body.data.run.id}`;
    await waitUntil(s.app, url, (r) => r.epochs_done >= 1);
    expect((await call(s.app, 'POST', `${url}/cancel`)).status).toBe(200);
    const cancelled = (await call<RunView>(s.app, 'GET', url)).body.data;
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.epochs_done).toBeLessThan(40);

    // The experiment moves to another split and other hyperparameters; then that split is deleted,
    // so the experiment's current settings would be refused for a new run.
    const splits = `/api/projects/${p.pid}/datasets/${p.datasetId}/splits`;
    expect((await call(s.app, 'POST', splits, { name: 'other', ratios: { train: 0.5, val: 0.5, test: 0 }, seed: 2 })).status).toBe(201);
    const patched = await call(s.app, 'PATCH', `${exps}/${expId}`, { split_name: 'other', hyperparameters: { epochs: 2, lr: 0.5 } });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect((await call(s.app, 'DELETE', `${splits}/other`)).status).toBe(200);
    const fresh = await call(s.app, 'POST', runs);
    expect([fresh.status, fresh.body.error?.code]).toEqual([400, 'VALIDATION_ERROR']);

    const resumed = await call<{ run: RunView }>(s.app, 'POST', `${url}/resume`);
    expect(resumed.status, JSON.stringify(resumed.body)).toBe(202);
    const done = await waitForRun(s.app, url);
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    expect(done.resumes).toBe(1);
    expect(done.metrics.map((m) => m.epoch)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(done.config).toMatchObject({ split: { name: 'main' }, hyperparameters: { epochs: 40, lr: 1e-2 } });
  }, 120_000);

  it("refuses to resume when the run's own dataset split is gone", async () => {
    const exps = `/api/projects/${p.pid}/experiments`;
    const splits = `/api/projects/${p.pid}/datasets/${p.datasetId}/splits`;
    expect((await call(s.app, 'POST', splits, { name: 'gone', ratios: { train: 0.7, val: 0.3, test: 0 }, seed: 3 })).status).toBe(201);
    const created = await call<{ id: string }>(s.app, 'POST', exps, {
      name: 'loses its split',
      dataset_id: p.datasetId,
      split_name: 'gone',
      model: { architecture: 'small_cnn', input_size: 32 },
      hyperparameters: { epochs: 40, batch_size: 16, lr: 1e-2, seed: 1 },
      augmentation: GENTLE_AUGMENTATION,
    });
    const runs = `${exps}/${created.body.data.id}/runs`;
    const started = await call<{ run: { id: string } }>(s.app, 'POST', runs);
    const url = `${runs}/${started.body.data.run.id}`;
    await waitUntil(s.app, url, (r) => r.epochs_done >= 1);
    expect((await call(s.app, 'POST', `${url}/cancel`)).status).toBe(200);
    expect((await call(s.app, 'DELETE', `${splits}/gone`)).status).toBe(200);
    const res = await call(s.app, 'POST', `${url}/resume`);
    expect([res.status, res.body.error?.code]).toEqual([400, 'VALIDATION_ERROR']);
    expect(res.body.error.message).toContain("'gone'");
    expect((await call<RunView>(s.app, 'GET', url)).body.data.status).toBe('cancelled');
  }, 120_000);
});
