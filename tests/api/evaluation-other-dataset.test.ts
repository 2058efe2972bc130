import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, makeStudio, waitForJob, type TestStudio } from './helpers.ts';
import { makeShapesProject, SHAPE_CLASSES, waitForRun, writeShapesFolder, type ShapesProject } from './runs-fixtures.ts';

/**
 * A trained run evaluated on a second dataset of the project (a separately imported test folder):
 * every labelled image of it is evaluated, as `test`; the run's own dataset and split are untouched.
 */

let s: TestStudio;
let p: ShapesProject;
let evalUrl: string;
let runId: string;
let expId: string;

async function importFolder(name: string, src: string): Promise<string> {
  const started = await call<{ dataset: { id: string }; job: { id: string } }>(s.app, 'POST', `/api/projects/${p.pid}/datasets`, {
    name,
    task: 'classification',
    source: { kind: 'folder', path: src },
  });
  expect(started.status, JSON.stringify(started.body)).toBe(202);
  expect((await waitForJob(s.app, started.body.data.job.id, 60_000)).status).toBe('succeeded');
  return started.body.data.dataset.id;
}

beforeAll(async () => {
  s = await makeStudio();
  p = await makeShapesProject(s.app, s.dir, { perClass: 8, size: 32, ratios: { train: 0.75, val: 0.25, test: 0 } });
  const created = await call<{ id: string }>(s.app, 'POST', `/api/projects/${p.pid}/experiments`, {
    name: 'cnn',
    dataset_id: p.datasetId,
    split_name: 'main',
    model: { architecture: 'small_cnn', input_size: 32 },
    hyperparameters: { epochs: 2, batch_size: 8, seed: 1 },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  expId = created.body.data.id;
  const runs = `/api/projects/${p.pid}/experiments/${expId}/runs`;
  runId = (await call<{ run: { id: string } }>(s.app, 'POST', runs)).body.data.run.id;
  expect((await waitForRun(s.app, `${runs}/${runId}`)).status).toBe('succeeded');
  evalUrl = `/api/projects/${p.pid}/experiments/${created.body.data.id}/evaluation`;
}, 180_000);
afterAll(async () => s?.close());

describe('evaluating a run on another dataset', () => {
  it('evaluates every image of the other dataset as test, and shows its images', async () => {
    const src = path.join(s.dir, 'held-out');
    await writeShapesFolder(src, 5, 32, 11);
    const N = 5 * SHAPE_CLASSES.length;
    const other = await importFolder('held-out', src);
    const started = await call<{ job: { id: string } }>(s.app, 'POST', evalUrl, { run_id: runId, checkpoint: 'last', dataset_id: other });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    expect((await waitForJob(s.app, started.body.data.job.id, 60_000)).status).toBe('succeeded');
    const got = (await call<{ status: string; evaluated: number; config: Record<string, unknown>; aggregate: { confusion_matrix: { matrix: number[][] } } }>(s.app, 'GET', evalUrl)).body.data;
    expect(got).toMatchObject({ status: 'succeeded', evaluated: N, config: { dataset_id: other, whole_dataset: true, subsets: ['test'] } });
    expect(got.aggregate.confusion_matrix.matrix.flat().reduce((a, b) => a + b, 0)).toBe(N);
    const results = (await call<{ items: Array<{ image_id: string; subset: string }>; total: number }>(s.app, 'GET', `${evalUrl}/results?page_size=100`)).body.data;
    expect(results.total).toBe(N);
    expect(new Set(results.items.map((r) => r.subset))).toEqual(new Set(['test']));
    // The images shown are the other dataset's.
    const ds = await s.app.studio.store.getDataset(p.pid, other);
    expect(new Set(results.items.map((r) => r.image_id))).toEqual(new Set(ds.images.map((i) => i.id)));
    const page = await s.app.inject({ method: 'GET', url: `/projects/${p.pid}/evaluation?experiment=${expId}` });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('all of dataset held-out');
    expect(page.body).toContain(`/datasets/${other}/images/`);
    expect(page.body).toContain('name="dataset_id"');
  }, 120_000);

  it('refuses subsets with another dataset, an unknown dataset, and one with none of the run\'s classes', async () => {
    const src = path.join(s.dir, 'strangers');
    await fs.mkdir(path.join(src, 'hexagon'), { recursive: true });
    await writeShapesFolder(path.join(s.dir, 'tmp-shapes'), 2, 32, 5);
    for (const f of await fs.readdir(path.join(s.dir, 'tmp-shapes', 'circle'))) await fs.copyFile(path.join(s.dir, 'tmp-shapes', 'circle', f), path.join(src, 'hexagon', f));
    const strangers = await importFolder('strangers', src);
    const base = { run_id: runId, checkpoint: 'last' };
    const cases: Array<[Record<string, unknown>, number, string, RegExp]> = [
      [{ ...base, dataset_id: strangers, subsets: ['test'] }, 400, 'VALIDATION_ERROR', /subsets: not for another dataset/],
      [{ ...base, dataset_id: 'ds-zzzzzzzz' }, 404, 'NOT_FOUND', /ds-zzzzzzzz/],
      [{ ...base, dataset_id: 'nonsense' }, 400, 'VALIDATION_ERROR', /dataset_id/],
      [{ ...base, dataset_id: strangers }, 400, 'VALIDATION_ERROR', /has no image labelled with the run's classes: 2 of its images/],
      [{ ...base }, 400, 'VALIDATION_ERROR', /subsets: choose at least one subset/],
      // Naming the run's own dataset is the usual evaluation of its split.
      [{ ...base, dataset_id: p.datasetId }, 400, 'VALIDATION_ERROR', /subsets/],
    ];
    for (const [body, status, code, message] of cases) {
      const res = await call<unknown>(s.app, 'POST', evalUrl, body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      const err = (res.body as unknown as { error: { code: string; message: string } }).error;
      expect(err.code).toBe(code);
      expect(err.message).toMatch(message);
    }
  });
});
