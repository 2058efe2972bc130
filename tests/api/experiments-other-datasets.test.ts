import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, makeStudio, waitForJob, type TestStudio } from './helpers.ts';
import { makeShapesProject, waitForRun, writeShapesFolder, type RunView, type ShapesProject } from './runs-fixtures.ts';
import { writeRegressionCsv } from './task-fixtures.ts';

/**
 * A second dataset of the project as an experiment's validation set (`val_dataset_id`: every usable
 * image of it replaces the split's `val` subset for per-epoch validation, best epoch and export
 * validation) or test set (`test_dataset_id`: evaluating "test" evaluates it), the checks at create,
 * and a regression dataset's target names.
 */

let s: TestStudio;
let p: ShapesProject;
let valSet: string;
let testSet: string;
let strangers: string;
let expId: string;
let runId: string;
let run: RunView & { warnings: Array<{ code: string; message: string }> };
let base: string;

/** Usable images of the validation folder: circle 1, square 3, triangle 3, cross 3 (its most frequent class: 3 of 10). */
const VAL_USABLE = 10;
const VAL_SKIPPED = 2;
const TEST_USABLE = 16;

async function importFolder(name: string, src: string, extra: Record<string, unknown> = {}): Promise<string> {
  const started = await call<{ dataset: { id: string }; job: { id: string } }>(s.app, 'POST', `/api/projects/${p.pid}/datasets`, {
    name,
    task: 'classification',
    source: { kind: 'folder', path: src },
    ...extra,
  });
  expect(started.status, JSON.stringify(started.body)).toBe(202);
  expect((await waitForJob(s.app, started.body.data.job.id, 60_000)).status).toBe('succeeded');
  return started.body.data.dataset.id;
}

/** `n` images of a class the training data does not have, made from circles. */
async function strangerFolder(dir: string, cls: string, n: number, seed: number): Promise<void> {
  const tmp = path.join(s.dir, `tmp-${cls}-${seed}`);
  await writeShapesFolder(tmp, n, 32, seed);
  await fs.mkdir(path.join(dir, cls), { recursive: true });
  for (const f of await fs.readdir(path.join(tmp, 'circle'))) await fs.copyFile(path.join(tmp, 'circle', f), path.join(dir, cls, f));
}

const experiment = (extra: Record<string, unknown> = {}) => ({
  name: 'second datasets',
  dataset_id: p.datasetId,
  split_name: 'main',
  model: { architecture: 'small_cnn', input_size: 32 },
  hyperparameters: { epochs: 2, batch_size: 8, seed: 1 },
  ...extra,
});

beforeAll(async () => {
  s = await makeStudio();
  p = await makeShapesProject(s.app, s.dir, { perClass: 8, size: 32, ratios: { train: 0.75, val: 0.25, test: 0 } });
  // The validation folder: 3 of each class but one circle, and 2 images of a class the run lacks.
  const val = path.join(s.dir, 'val-folder');
  await writeShapesFolder(val, 3, 32, 21);
  for (const f of (await fs.readdir(path.join(val, 'circle'))).slice(1)) await fs.rm(path.join(val, 'circle', f));
  await strangerFolder(val, 'hexagon', VAL_SKIPPED, 5);
  valSet = await importFolder('val-set', val);
  const test = path.join(s.dir, 'test-folder');
  await writeShapesFolder(test, 4, 32, 31);
  testSet = await importFolder('test-set', test);
  const only = path.join(s.dir, 'strangers');
  await strangerFolder(only, 'hexagon', 2, 7);
  strangers = await importFolder('strangers', only);

  base = `/api/projects/${p.pid}/experiments`;
  const created = await call<{ id: string; val_dataset_id: string; test_dataset_id: string }>(s.app, 'POST', base, experiment({ val_dataset_id: valSet, test_dataset_id: testSet }));
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  expect(created.body.data).toMatchObject({ val_dataset_id: valSet, test_dataset_id: testSet });
  expId = created.body.data.id;
  const runs = `${base}/${expId}/runs`;
  runId = (await call<{ run: { id: string } }>(s.app, 'POST', runs)).body.data.run.id;
  run = (await waitForRun(s.app, `${runs}/${runId}`)) as typeof run;
  expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
}, 300_000);
afterAll(async () => s?.close());

interface RunConfig {
  split: { name: string; train_count: number; val_count: number };
  val_dataset: { id: string; name: string; images: number; skipped: number; hash: string } | null;
  test_dataset: { id: string; name: string; images: number; skipped: number } | null;
}

describe('a validation dataset', () => {
  it('validates every epoch on its usable images instead of the split\'s val subset, and says so', async () => {
    const cfg = run.config as unknown as RunConfig;
    expect(cfg.val_dataset).toMatchObject({ id: valSet, name: 'val-set', images: VAL_USABLE, skipped: VAL_SKIPPED });
    expect(cfg.test_dataset).toMatchObject({ id: testSet, name: 'test-set', images: TEST_USABLE, skipped: 0 });
    // The split's val subset is counted (8 of 32), not used.
    expect(cfg.split.val_count).toBe(8);
    const lines = (await call<{ metrics: Array<{ val_loss: number | null; diagnostics?: Record<string, number | null> }> }>(s.app, 'GET', `${base}/${expId}/runs/${runId}`)).body.data.metrics;
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line.val_loss).not.toBeNull();
      // the majority baseline of the images validated on: 3 of the val folder's 10 (the split's val would give 2 of 8)
      expect(line.diagnostics?.majority_baseline).toBeCloseTo(3 / VAL_USABLE, 10);
    }
    expect(run.best).not.toBeNull();
    expect(run.warnings.find((w) => w.code === 'VAL_IMAGES_SKIPPED')?.message).toContain(`${VAL_SKIPPED} images of the validation dataset 'val-set'`);
    const job = (await call<{ job_id: string }>(s.app, 'GET', `${base}/${expId}/runs/${runId}`)).body.data.job_id;
    const log = s.app.studio.jobs.events.since(job, 0).filter((e) => e.type === 'log').map((e) => String((e.data as { message: string }).message));
    expect(log.some((l) => l.includes(`validating on ${VAL_USABLE} of the dataset 'val-set'`))).toBe(true);
    expect(log.some((l) => l.includes(`validation set: all ${VAL_USABLE} usable images of the dataset 'val-set'; ${VAL_SKIPPED} images with labels the run does not know skipped; the split's 8 val images are not used for validation`))).toBe(true);
  });

  it('shows where validation and test images come from on the run page', async () => {
    const page = await s.app.inject({ method: 'GET', url: `/projects/${p.pid}/training?experiment=${expId}&run=${runId}` });
    expect(page.body).toContain(`<dt>Validation</dt><dd>dataset val-set · ${VAL_USABLE} images (${VAL_SKIPPED} skipped: labels not in training)</dd>`);
    expect(page.body).toContain(`<dt>Test</dt><dd>dataset test-set · ${TEST_USABLE} images</dd>`);
    expect(page.body).toContain('(not used for validation)');
  });

  it('is what an export validates on', async () => {
    const started = await call<{ export: { id: string }; job: { id: string } }>(s.app, 'POST', `${base}/${expId}/exports`, { run_id: runId, checkpoint: 'last', variants: ['fp32'], benchmark: false });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    expect((await waitForJob(s.app, started.body.data.job.id, 120_000)).status).toBe('succeeded');
    const ex = (await call<{ subset: string; manifest: { metrics: Record<string, unknown> } }>(s.app, 'GET', `${base}/${expId}/exports/${started.body.data.export.id}`)).body.data;
    expect(ex.subset).toBe('val');
    expect(ex.manifest.metrics.validation_images).toBe(VAL_USABLE);
  }, 120_000);
});

describe('a test dataset', () => {
  it('is the evaluation page\'s default choice, and evaluating "test" evaluates it', async () => {
    const page = await s.app.inject({ method: 'GET', url: `/projects/${p.pid}/evaluation?experiment=${expId}` });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain(`<option value="${testSet}" selected>test-set · all ${TEST_USABLE} images (the test set)</option>`);
    expect(page.body).not.toMatch(/<option value="" selected>Split main/);

    const evalUrl = `${base}/${expId}/evaluation`;
    const mixed = await call(s.app, 'POST', evalUrl, { run_id: runId, checkpoint: 'last', subsets: ['val', 'test'] });
    expect(mixed.status).toBe(400);
    expect(mixed.body.error.message).toContain("the run's test set is the dataset 'test-set'");

    const started = await call<{ job: { id: string } }>(s.app, 'POST', evalUrl, { run_id: runId, checkpoint: 'last', subsets: ['test'] });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    expect((await waitForJob(s.app, started.body.data.job.id, 60_000)).status).toBe('succeeded');
    const got = (await call<{ status: string; evaluated: number; config: Record<string, unknown> }>(s.app, 'GET', evalUrl)).body.data;
    expect(got).toMatchObject({ status: 'succeeded', evaluated: TEST_USABLE, config: { dataset_id: testSet, whole_dataset: true, subsets: ['test'] } });
    // The split's own val subset is still the split's.
    const val = await call<{ job: { id: string } }>(s.app, 'POST', evalUrl, { run_id: runId, checkpoint: 'last', subsets: ['val'] });
    expect(val.status).toBe(202);
    expect((await waitForJob(s.app, val.body.data.job.id, 60_000)).status).toBe('succeeded');
    expect((await call<{ evaluated: number; config: Record<string, unknown> }>(s.app, 'GET', evalUrl)).body.data).toMatchObject({ evaluated: 8, config: { dataset_id: p.datasetId, subsets: ['val'] } });
  }, 120_000);
});

describe('checks at create and patch', () => {
  it('refuses an unknown (404), importing (409), other-task, unusable or the training dataset (400)', async () => {
    const importing = (await s.app.studio.datasets.create(p.pid, { name: 'half-imported', task: 'classification' })).id;
    const regression = await (async () => {
      const d = path.join(s.dir, 'discs');
      const { csv, root } = await writeRegressionCsv(d, 6);
      return importFolderSource('discs', 'regression', { kind: 'csv', path: csv, images_root: root, target_columns: ['radius'] });
    })();
    const cases: Array<[Record<string, unknown>, number, string, RegExp]> = [
      [{ val_dataset_id: 'ds-zzzzzzzz' }, 404, 'NOT_FOUND', /^val_dataset_id: no dataset 'ds-zzzzzzzz' in this project/],
      [{ test_dataset_id: 'ds-zzzzzzzz' }, 404, 'NOT_FOUND', /^test_dataset_id: no dataset 'ds-zzzzzzzz'/],
      [{ val_dataset_id: importing }, 409, 'CONFLICT', /val_dataset_id: the dataset 'half-imported' is still importing: it cannot be used for validation/],
      [{ val_dataset_id: regression }, 400, 'VALIDATION_ERROR', /val_dataset_id: the dataset 'discs' is a regression dataset, not classification/],
      [{ val_dataset_id: strangers }, 400, 'VALIDATION_ERROR', /val_dataset_id: the dataset 'strangers' has no image labelled with the training dataset's classes: 2 of its images have labels the training dataset does not know/],
      [{ test_dataset_id: strangers }, 400, 'VALIDATION_ERROR', /test_dataset_id: the dataset 'strangers' has no image labelled/],
      [{ val_dataset_id: p.datasetId }, 400, 'VALIDATION_ERROR', /val_dataset_id: 'shapes' is the training dataset/],
      [{ val_dataset_id: 'nonsense' }, 400, 'VALIDATION_ERROR', /val_dataset_id/],
    ];
    for (const [extra, status, code, message] of cases) {
      const res = await call(s.app, 'POST', base, experiment({ name: 'refused', ...extra }));
      expect(res.status, JSON.stringify(extra)).toBe(status);
      expect(res.body.error.code, JSON.stringify(extra)).toBe(code);
      expect(res.body.error.message, JSON.stringify(extra)).toMatch(message);
    }
    expect((await call<Array<{ name: string }>>(s.app, 'GET', base)).body.data.map((e) => e.name)).not.toContain('refused');
    // PATCH checks the same, and null goes back to the split's subset
    const patched = await call(s.app, 'PATCH', `${base}/${expId}`, { val_dataset_id: strangers });
    expect(patched.status).toBe(400);
    const cleared = await call<{ val_dataset_id: string | null; test_dataset_id: string | null }>(s.app, 'PATCH', `${base}/${expId}`, { val_dataset_id: null });
    expect(cleared.status).toBe(200);
    expect(cleared.body.data).toMatchObject({ val_dataset_id: null, test_dataset_id: testSet });
  });

  it('for regression: a validation dataset must have the training dataset\'s target names', async () => {
    const mk = async (name: string, column: string, seed: number) => {
      const d = path.join(s.dir, `reg-${name}`);
      const { csv, root } = await writeRegressionCsv(d, 8, seed);
      const text = await fs.readFile(csv, 'utf8');
      await fs.writeFile(csv, text.replace(/^file,radius/, `file,${column}`));
      return importFolderSource(name, 'regression', { kind: 'csv', path: csv, images_root: root, target_columns: [column] });
    };
    const train = await mk('reg-train', 'radius', 1);
    const sameNames = await mk('reg-val', 'radius', 2);
    const otherNames = await mk('reg-other', 'size', 3);
    const split = await call(s.app, 'POST', `/api/projects/${p.pid}/datasets/${train}/splits`, { name: 'main', ratios: { train: 0.75, val: 0.25, test: 0 }, seed: 1 });
    expect(split.status, JSON.stringify(split.body)).toBe(201);
    const body = { name: 'discs', dataset_id: train, split_name: 'main', model: { architecture: 'small_cnn' } };
    const ok = await call<{ val_dataset_id: string }>(s.app, 'POST', base, { ...body, val_dataset_id: sameNames });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    expect(ok.body.data.val_dataset_id).toBe(sameNames);
    const refused = await call(s.app, 'POST', base, { ...body, val_dataset_id: otherNames });
    expect(refused.status).toBe(400);
    expect(refused.body.error.message).toContain("val_dataset_id: the dataset 'reg-other' has the targets (size), the training dataset's are (radius)");
  });
});

async function importFolderSource(name: string, task: string, source: Record<string, unknown>): Promise<string> {
  const started = await call<{ dataset: { id: string }; job: { id: string } }>(s.app, 'POST', `/api/projects/${p.pid}/datasets`, { name, task, source });
  expect(started.status, JSON.stringify(started.body)).toBe(202);
  expect((await waitForJob(s.app, started.body.data.job.id, 60_000)).status).toBe('succeeded');
  return started.body.data.dataset.id;
}
