import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExportView } from '../../src/core/exports.ts';
import type { ResultRecord } from '../../src/evaluation/results.ts';
import type { Manifest } from '../../src/export/manifest.ts';
import { call, makeStudio, multipart, shapeImage, waitForJob, type TestStudio } from './helpers.ts';
import { GENTLE_AUGMENTATION, makeShapesProject, SHAPE_CLASSES, waitForRun, type ShapesProject } from './runs-fixtures.ts';
import { preprocessFromManifest, unzip } from '../export/deployer.ts';
import { ML_CLASSES, REG_TARGETS, trainedTaskRun, type TaskRun } from '../evaluation/task-runs.ts';

/**
 * Exports end to end through the API: a small_cnn trained through the runs API and evaluated, then
 * exported in every variant; the exported file checked against the evaluation by a session that
 * knows nothing of the studio; the zip, the files, predict and its refusals, delete.
 */

/** Enough images, trained long enough, that predictions are peaked rather than near-uniform. */
const PER_CLASS = 60;

let s: TestStudio;
let p: ShapesProject;
let expId: string;
let runId: string;
let base: string;
let ex: ExportView;
let jobKind: string;
let evaluated: ResultRecord[];
/** The run's classes, in class-index order. */
let classes: string[];

const datasetFile = (rel: string) => path.join(s.settings.workspace, 'projects', p.pid, 'datasets', p.datasetId, rel);
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function startExport(body: Record<string, unknown>): Promise<{ export: ExportView; job: { id: string; kind: string } }> {
  const res = await call<{ export: ExportView; job: { id: string; kind: string } }>(s.app, 'POST', base, body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.data;
}

async function exportDone(body: Record<string, unknown>): Promise<ExportView> {
  const started = await startExport(body);
  const job = await waitForJob(s.app, started.job.id, 120_000);
  expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
  return (await call<ExportView>(s.app, 'GET', `${base}/${started.export.id}`)).body.data;
}

function predict(exportId: string, parts: Parameters<typeof multipart>[0], query = '', exports = base) {
  const mp = multipart(parts);
  return s.app.inject({ method: 'POST', url: `${exports}/${exportId}/predict${query}`, payload: mp.payload, headers: mp.headers });
}

const image = (data: Buffer, type = 'image/png') => ({ name: 'image', filename: 'x.png', data, type });

beforeAll(async () => {
  s = await makeStudio();
  p = await makeShapesProject(s.app, s.dir, { perClass: PER_CLASS, size: 64, ratios: { train: 0.5, val: 0.25, test: 0.25 } });
  const created = await call<{ id: string }>(s.app, 'POST', `/api/projects/${p.pid}/experiments`, {
    name: 'export cnn',
    dataset_id: p.datasetId,
    split_name: 'main',
    model: { architecture: 'small_cnn', input_size: 32 },
    hyperparameters: { epochs: 12, batch_size: 8, optimizer: 'adamw', lr: 1e-2, weight_decay: 1e-4, scheduler: 'cosine', seed: 1 },
    augmentation: GENTLE_AUGMENTATION,
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  expId = created.body.data.id;
  const runs = `/api/projects/${p.pid}/experiments/${expId}/runs`;
  runId = (await call<{ run: { id: string } }>(s.app, 'POST', runs)).body.data.run.id;
  const run = await waitForRun(s.app, `${runs}/${runId}`);
  expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
  classes = (run.config as { dataset: { classes: string[] } }).dataset.classes;
  base = `/api/projects/${p.pid}/experiments/${expId}/exports`;

  const evalUrl = `/api/projects/${p.pid}/experiments/${expId}/evaluation`;
  const ev = await call<{ job: { id: string } }>(s.app, 'POST', evalUrl, { run_id: runId, checkpoint: 'best', subsets: ['val', 'test'] });
  expect(ev.status, JSON.stringify(ev.body)).toBe(202);
  expect((await waitForJob(s.app, ev.body.data.job.id, 60_000)).status).toBe('succeeded');
  evaluated = (await call<{ items: ResultRecord[] }>(s.app, 'GET', `${evalUrl}/results?page_size=500&sort=file`)).body.data.items;

  const started = await startExport({ run_id: runId, checkpoint: 'best', variants: ['int8', 'fp32', 'fp16'] });
  jobKind = started.job.kind;
  expect(started.export).toMatchObject({ status: 'queued', requested: ['fp32', 'fp16', 'int8'], variants: [], manifest: null });
  const job = await waitForJob(s.app, started.job.id, 120_000);
  expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
  ex = (await call<ExportView>(s.app, 'GET', `${base}/${started.export.id}`)).body.data;
}, 300_000);
afterAll(async () => s?.close());

describe('exports API: requests', () => {
  it('refuses bad bodies with stable codes, and unknown things with 404', async () => {
    const good = { run_id: runId, checkpoint: 'best', variants: ['fp32'] };
    const cases: Array<[unknown, number, string]> = [
      [{ ...good, run_id: 'run-zzzzzzzz' }, 404, 'NOT_FOUND'],
      [{ ...good, run_id: 'nonsense' }, 400, 'VALIDATION_ERROR'],
      [{ ...good, checkpoint: 'middle' }, 400, 'VALIDATION_ERROR'],
      [{ ...good, variants: [] }, 400, 'VALIDATION_ERROR'],
      [{ ...good, variants: ['fp64'] }, 400, 'VALIDATION_ERROR'],
      [{ ...good, variants: ['fp32', 'fp32'] }, 400, 'VALIDATION_ERROR'],
      [{ ...good, variants: 'fp32' }, 400, 'VALIDATION_ERROR'],
      [{ ...good, benchmark: 'yes' }, 400, 'VALIDATION_ERROR'],
      [{ ...good, extra: 1 }, 400, 'VALIDATION_ERROR'],
      [{ checkpoint: 'best', variants: ['fp32'] }, 400, 'VALIDATION_ERROR'],
    ];
    for (const [b, status, code] of cases) {
      const res = await call(s.app, 'POST', base, b);
      expect([res.status, res.body.error?.code], JSON.stringify(b)).toEqual([status, code]);
    }
    const other = `/api/projects/${p.pid}/experiments/exp-zzzzzzzz/exports`;
    expect((await call(s.app, 'POST', other, good)).status).toBe(404);
    expect((await call(s.app, 'GET', other)).status).toBe(404);
    for (const url of [`${base}/export-zzzzzzzz`, `${base}/nonsense`, `${base}/export-zzzzzzzz/download`, `${base}/${ex.id}/files/secret.txt`, `${base}/${ex.id}/files/..%2Fexport.json`]) {
      const res = await s.app.inject({ method: 'GET', url });
      expect([res.statusCode, res.json().error.code], url).toEqual([404, 'NOT_FOUND']);
    }
    expect((await call(s.app, 'DELETE', `${base}/export-zzzzzzzz`)).status).toBe(404);
  });
});

describe('exports API: an export of every variant', () => {
  it('succeeded as an export job, listed, with every variant validated, measured and sized', async () => {
    expect(jobKind).toBe('export');
    expect(ex).toMatchObject({ status: 'succeeded', run_id: runId, checkpoint: 'best', benchmark: true, subset: 'val' });
    expect(ex.error).toBeUndefined();
    expect(ex.variants.map((v) => [v.name, v.file])).toEqual([['fp32', 'model.onnx'], ['fp16', 'model.fp16.onnx'], ['int8', 'model.int8.onnx']]);
    const fp32 = ex.variants[0];
    expect(fp32.validation.passed, fp32.validation.failures.join('; ')).toBe(true);
    expect(fp32.validation.max_abs_error).toBeLessThanOrEqual(1e-4);
    expect(fp32.validation.argmax_agreement).toBe(1);
    expect(fp32.accuracy).toBe(ex.reference_accuracy);
    for (const v of ex.variants) {
      expect(v.validation.count).toBe(ex.images);
      expect(v.accuracy).not.toBeNull();
      expect(v.benchmark!.results.map((r) => r.threads)).toEqual([...new Set([1, os.availableParallelism()])]);
      expect(v.benchmark!.results[0].throughput.map((t) => t.batch)).toEqual([8, 32]);
      expect(v.profile!.nodes.length).toBeGreaterThan(0);
      expect(v.size_bytes).toBe(ex.manifest!.files.find((f) => f.name === v.file)!.size_bytes);
    }
    expect(ex.images).toBe(PER_CLASS);
    // the model learned: comparisons below are between peaked predictions
    expect(ex.reference_accuracy).toBeGreaterThan(0.5);
    expect([...classes].sort()).toEqual([...SHAPE_CLASSES].sort());
    expect(ex.manifest).toMatchObject({ execution_format: 'onnx', task: 'classification', labels: classes, source: { run_id: runId, experiment_id: expId, checkpoint: 'best' } });
    const list = await call<ExportView[]>(s.app, 'GET', base);
    expect(list.body.data.map((e) => e.id)).toContain(ex.id);
  });

  it('model.onnx in a fresh onnxruntime session, fed by manifest.json’s preprocessing alone, gives the evaluation’s predictions on every image', async () => {
    const manifestRes = await s.app.inject({ method: 'GET', url: `${base}/${ex.id}/files/manifest.json` });
    expect(manifestRes.headers['content-type']).toMatch(/^application\/json/);
    const manifest = manifestRes.json() as Manifest;
    const model = await s.app.inject({ method: 'GET', url: `${base}/${ex.id}/files/model.onnx` });
    expect(model.statusCode).toBe(200);
    expect(model.headers['content-disposition']).toBe('attachment; filename="model.onnx"');
    expect(evaluated.length).toBe(2 * PER_CLASS);
    const session = await ort.InferenceSession.create(model.rawPayload);
    try {
      const size = manifest.preprocessing.resize.width;
      const x = await preprocessFromManifest(evaluated.map((r) => datasetFile(r.file)), manifest);
      const probs = (await session.run({ input: new ort.Tensor('float32', x, [evaluated.length, 3, size, size]) })).probabilities.data as Float32Array;
      const c = manifest.labels.length;
      evaluated.forEach((rec, i) => {
        const row = Array.from(probs.subarray(i * c, (i + 1) * c));
        const best = row.indexOf(Math.max(...row));
        expect(manifest.labels[best], rec.file).toBe(rec.predicted);
        for (const t of rec.top_k) expect(Math.abs(row[manifest.labels.indexOf(t.label)] - t.score), rec.file).toBeLessThan(1e-4);
      });
    } finally {
      await session.release();
    }
  });

  it('downloads a zip that unpacks to the manifest’s files with matching sha256', async () => {
    const res = await s.app.inject({ method: 'GET', url: `${base}/${ex.id}/download` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/zip');
    // named after the experiment ("export cnn") and its variants, not internal ids
    expect(res.headers['content-disposition']).toBe(`attachment; filename="export-cnn-${ex.requested.join('-')}.zip"`);
    const files = await unzip(res.rawPayload);
    for (const f of ex.manifest!.files) {
      const b = files.get(f.name);
      expect(b, f.name).toBeDefined();
      expect([b!.length, sha256(b!)], f.name).toEqual([f.size_bytes, f.sha256]);
    }
    expect([...files.keys()].sort()).toEqual(['README.md', 'SHA256SUMS', 'labels.txt', 'manifest.json', 'model.fp16.onnx', 'model.int8.onnx', 'model.onnx']);
    expect(JSON.parse(files.get('manifest.json')!.toString('utf8'))).toEqual(ex.manifest);
    const readme = await s.app.inject({ method: 'GET', url: `${base}/${ex.id}/files/README.md` });
    expect([readme.statusCode, readme.headers['content-type'], readme.headers['x-content-type-options']]).toEqual([200, 'text/markdown; charset=utf-8', 'nosniff']);
    expect(readme.body).toBe(files.get('README.md')!.toString('utf8'));
  });
});

describe('exports API: predict', () => {
  let png: Buffer;
  let expected: { label: string; score: number }[];

  beforeAll(async () => {
    png = await shapeImage('circle', 5, { width: 56, height: 44 });
    const file = path.join(s.dir, 'try.png');
    await fs.writeFile(file, png);
    const session = await ort.InferenceSession.create((await s.app.inject({ method: 'GET', url: `${base}/${ex.id}/files/model.onnx` })).rawPayload);
    const probs = (await session.run({ input: new ort.Tensor('float32', await preprocessFromManifest([file], ex.manifest!), [1, 3, 32, 32]) })).probabilities.data as Float32Array;
    await session.release();
    expected = Array.from(probs, (score, i) => ({ label: ex.manifest!.labels[i], score })).sort((a, b) => b.score - a.score);
  });

  it('gives the fp32 model’s top-5 for one image, with the variant and a latency', async () => {
    const res = await predict(ex.id, [image(png)]);
    expect(res.statusCode, res.body).toBe(200);
    const d = res.json().data as { predictions: { label: string; score: number }[]; variant: string; latency_ms: number };
    expect(d.variant).toBe('fp32');
    expect(d.latency_ms).toBeGreaterThan(0);
    expect(d.predictions.map((q) => q.label)).toEqual(expected.map((q) => q.label));
    d.predictions.forEach((q, i) => expect(Math.abs(q.score - expected[i].score)).toBeLessThan(1e-5));
  });

  it('answers a batch with one top-5 per image, and runs the variant asked for (query or field)', async () => {
    const jpeg = await shapeImage('square', 9, { format: 'jpeg' });
    const batch = await predict(ex.id, [image(png), image(jpeg, 'image/jpeg')]);
    expect(batch.statusCode, batch.body).toBe(200);
    const preds = batch.json().data.predictions as { label: string }[][];
    expect(preds).toHaveLength(2);
    expect(preds[0][0].label).toBe(expected[0].label);
    expect(preds[1]).toHaveLength(SHAPE_CLASSES.length);
    const int8 = await predict(ex.id, [image(png)], '?variant=int8');
    expect([int8.statusCode, int8.json().data.variant]).toEqual([200, 'int8']);
    const fp16 = await predict(ex.id, [{ name: 'variant', value: 'fp16' }, image(png)]);
    expect([fp16.statusCode, fp16.json().data.variant]).toEqual([200, 'fp16']);
    expect(fp16.json().data.predictions[0].label).toBe(expected[0].label);
  });

  it('rejects a non-image, an oversized file, an image of the wrong kind, and malformed requests', async () => {
    const cases: Array<[string, Awaited<ReturnType<typeof predict>>, number, string]> = [
      ['text', await predict(ex.id, [image(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), 'image/svg+xml')]), 415, 'UNSUPPORTED_MEDIA'],
      ['oversize', await predict(ex.id, [image(Buffer.concat([png, Buffer.alloc(16 * 1024 * 1024)]))]), 413, 'PAYLOAD_TOO_LARGE'],
      // PNG's signature over bytes that are no PNG: claims to be an image, decodes as none
      ['wrong kind', await predict(ex.id, [image(Buffer.concat([png.subarray(0, 8), Buffer.from('GIF89a and then nothing an image decoder can read')]))]), 400, 'BAD_INPUT'],
      ['truncated', await predict(ex.id, [image(png.subarray(0, Math.floor(png.length / 2)))]), 400, 'BAD_INPUT'],
      ['no image', await predict(ex.id, [{ name: 'variant', value: 'fp32' }]), 400, 'VALIDATION_ERROR'],
      ['other field', await predict(ex.id, [{ name: 'file', filename: 'x.png', data: png, type: 'image/png' }]), 400, 'VALIDATION_ERROR'],
      ['bad variant', await predict(ex.id, [image(png)], '?variant=fp64'), 400, 'VALIDATION_ERROR'],
      ['unknown export', await predict('export-zzzzzzzz', [image(png)]), 404, 'NOT_FOUND'],
    ];
    for (const [what, res, status, code] of cases) expect([res.statusCode, res.json().error?.code], what).toEqual([status, code]);
    const json = await call(s.app, 'POST', `${base}/${ex.id}/predict`, { image: 'x' });
    expect([json.status, json.body.error.code]).toEqual([415, 'UNSUPPORTED_MEDIA']);
    const tooMany = await predict(ex.id, Array.from({ length: 33 }, () => image(png)));
    expect([tooMany.statusCode, tooMany.json().error.code]).toEqual([413, 'TOO_MANY_PARTS']);
  });
});

describe('exports API: one variant, delete', () => {
  it('predicts with the only variant there is, 404s a variant not exported, and is gone once deleted', async () => {
    const one = await exportDone({ run_id: runId, checkpoint: 'last', variants: ['fp16'], benchmark: false });
    expect(one.variants.map((v) => [v.name, v.benchmark, v.profile])).toEqual([['fp16', null, null]]);
    expect(one.manifest!.files.map((f) => f.name)).toEqual(['model.fp16.onnx', 'labels.txt', 'README.md']);
    const png = await shapeImage('triangle', 3);
    const res = await predict(one.id, [image(png)]);
    expect([res.statusCode, res.json().data.variant]).toEqual([200, 'fp16']);
    const missing = await predict(one.id, [image(png)], '?variant=fp32');
    expect([missing.statusCode, missing.json().error.code]).toEqual([404, 'NOT_FOUND']);
    expect((await s.app.inject({ method: 'GET', url: `${base}/${one.id}/files/model.onnx` })).statusCode).toBe(404);

    const del = await call(s.app, 'DELETE', `${base}/${one.id}`);
    expect([del.status, del.body.data]).toEqual([200, { deleted: true }]);
    expect((await call(s.app, 'GET', `${base}/${one.id}`)).status).toBe(404);
    expect((await predict(one.id, [image(png)])).statusCode).toBe(404);
    expect((await call<ExportView[]>(s.app, 'GET', base)).body.data.map((e) => e.id)).not.toContain(one.id);
    await expect(fs.stat(path.join(s.settings.workspace, 'projects', p.pid, 'experiments', expId, 'exports', one.id))).rejects.toMatchObject({ code: 'ENOENT' });
  }, 120_000);

  it('deleting a running export cancels its job and removes its folder', async () => {
    const started = await startExport({ run_id: runId, checkpoint: 'best', variants: ['fp32', 'int8'] });
    const del = await call(s.app, 'DELETE', `${base}/${started.export.id}`);
    expect([del.status, del.body.data]).toEqual([200, { deleted: true }]);
    const job = await waitForJob(s.app, started.job.id, 60_000);
    expect(['cancelled', 'succeeded']).toContain(job.status);
    expect((await call(s.app, 'GET', `${base}/${started.export.id}`)).status).toBe(404);
  }, 120_000);

  it('a failed export is shown with its error, keeps no files, and refuses downloads and predict', async () => {
    // The `last` checkpoint of this run is broken on disk from here on: nothing after this exports it.
    await fs.writeFile(path.join(s.settings.workspace, 'projects', p.pid, 'experiments', expId, 'runs', runId, 'checkpoints', 'last.ckpt'), 'garbage');
    const started = await startExport({ run_id: runId, checkpoint: 'last', variants: ['fp32'], benchmark: false });
    const job = await waitForJob(s.app, started.job.id, 60_000);
    expect(job.status).toBe('failed');
    const got = (await call<ExportView>(s.app, 'GET', `${base}/${started.export.id}`)).body.data;
    expect(got).toMatchObject({ status: 'failed', variants: [], manifest: null, job_id: started.job.id });
    expect(got.error?.message).toBeTruthy();
    expect(got.finished_at).not.toBeNull();
    const dir = path.join(s.settings.workspace, 'projects', p.pid, 'experiments', expId, 'exports', started.export.id);
    expect(await fs.readdir(dir)).toEqual(['export.json']);
    const dl = await s.app.inject({ method: 'GET', url: `${base}/${started.export.id}/download` });
    expect([dl.statusCode, dl.json().error.code]).toEqual([409, 'CONFLICT']);
    const pr = await predict(started.export.id, [image(await shapeImage('circle', 1))]);
    expect([pr.statusCode, pr.json().error.code]).toEqual([409, 'CONFLICT']);
  }, 60_000);
});

describe('exports API: deleting what an export belongs to releases its predict sessions at once', () => {
  const loaded = (experimentId: string, exportId: string) => s.app.studio.exports.loadedVariants(p.pid, experimentId, exportId);
  /** A small_cnn experiment on the shapes split, answered 201. */
  const smallExperiment = async (name: string, epochs: number, seed: number): Promise<string> => {
    const created = await call<{ id: string }>(s.app, 'POST', `/api/projects/${p.pid}/experiments`, {
      name,
      dataset_id: p.datasetId,
      split_name: 'main',
      model: { architecture: 'small_cnn', input_size: 32 },
      hyperparameters: { epochs, batch_size: 16, seed },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return created.body.data.id;
  };

  it('deleting an experiment releases the sessions of its exports, and only those', async () => {
    const exp2 = await smallExperiment('short-lived', 1, 2);
    const runs = `/api/projects/${p.pid}/experiments/${exp2}/runs`;
    const run2 = (await call<{ run: { id: string } }>(s.app, 'POST', runs)).body.data.run.id;
    expect((await waitForRun(s.app, `${runs}/${run2}`)).status).toBe('succeeded');
    const base2 = `/api/projects/${p.pid}/experiments/${exp2}/exports`;
    const started = await call<{ export: ExportView; job: { id: string } }>(s.app, 'POST', base2, { run_id: run2, checkpoint: 'best', variants: ['fp32'], benchmark: false });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    expect((await waitForJob(s.app, started.body.data.job.id, 60_000)).status).toBe('succeeded');
    const e2 = started.body.data.export.id;

    const png = await shapeImage('square', 4);
    expect((await predict(e2, [image(png)], '', base2)).statusCode).toBe(200);
    expect((await predict(ex.id, [image(png)])).statusCode).toBe(200);
    expect(loaded(exp2, e2)).toEqual(['fp32']);
    expect(loaded(expId, ex.id)).toContain('fp32');

    // An export still running in it is cancelled and settled before the folder goes: nothing
    // writes into the experiment afterwards.
    const running = await call<{ export: ExportView; job: { id: string } }>(s.app, 'POST', base2, { run_id: run2, checkpoint: 'best', variants: ['fp32', 'fp16', 'int8'], benchmark: true });
    expect(running.status, JSON.stringify(running.body)).toBe(202);
    const del = await call(s.app, 'DELETE', `/api/projects/${p.pid}/experiments/${exp2}`);
    expect(del.status, JSON.stringify(del.body)).toBe(200);
    const job = (await call<{ status: string }>(s.app, 'GET', `/api/jobs/${running.body.data.job.id}`)).body.data;
    expect(job.status).toBe('cancelled');
    await new Promise((r) => setTimeout(r, 300));
    await expect(fs.stat(path.join(s.settings.workspace, 'projects', p.pid, 'experiments', exp2))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(loaded(exp2, e2)).toEqual([]);
    expect(loaded(expId, ex.id)).toContain('fp32');
    const after = await predict(e2, [image(png)], '', base2);
    expect([after.statusCode, after.json().error.code]).toEqual([404, 'NOT_FOUND']);
    expect(loaded(exp2, e2)).toEqual([]);
  }, 120_000);

  it('deleting the project releases the sessions of every export in it', async () => {
    // Last test of the file: the project is gone after it.
    const png = await shapeImage('circle', 2);
    expect((await predict(ex.id, [image(png)], '?variant=int8')).statusCode).toBe(200);
    expect(loaded(expId, ex.id)).toEqual(expect.arrayContaining(['fp32', 'int8']));

    // A training run, an export and an evaluation still running in the project are cancelled and settled first.
    const long = await smallExperiment('long', 200, 3);
    const training = await call<{ job: { id: string } }>(s.app, 'POST', `/api/projects/${p.pid}/experiments/${long}/runs`);
    expect(training.status, JSON.stringify(training.body)).toBe(202);
    const exporting = await startExport({ run_id: runId, checkpoint: 'best', variants: ['fp32', 'fp16', 'int8'], benchmark: true });
    const evaluating = await call<{ job: { id: string } }>(s.app, 'POST', `/api/projects/${p.pid}/experiments/${expId}/evaluation`, { run_id: runId, checkpoint: 'best', subsets: ['train', 'val', 'test'] });
    expect(evaluating.status, JSON.stringify(evaluating.body)).toBe(202);

    const del = await call(s.app, 'DELETE', `/api/projects/${p.pid}`);
    expect(del.status, JSON.stringify(del.body)).toBe(200);
    for (const id of [training.body.data.job.id, exporting.job.id, evaluating.body.data.job.id]) expect((await call<{ status: string }>(s.app, 'GET', `/api/jobs/${id}`)).body.data.status).toBe('cancelled');
    await new Promise((r) => setTimeout(r, 300));
    await expect(fs.stat(path.join(s.settings.workspace, 'projects', p.pid))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(loaded(expId, ex.id)).toEqual([]);
    const after = await predict(ex.id, [image(png)]);
    expect([after.statusCode, after.json().error.code]).toEqual([404, 'NOT_FOUND']);
    expect(loaded(expId, ex.id)).toEqual([]);
  }, 60_000);
});

/**
 * The other tasks through the same routes: a small multi-label and a small regression run (trained
 * and evaluated through the API), each exported in every format; the manifest says the task and
 * its postprocessing, predict answers in the task's shape, and regression's exported value (the
 * standardisation undone inside the graph) equals the evaluation's prediction for the same image.
 */
describe('exports of multi-label and regression runs', () => {
  const runs: Partial<Record<TaskRun['task'], TaskRun>> = {};
  const exported: Partial<Record<TaskRun['task'], ExportView>> = {};
  const exportsOf = (r: TaskRun) => `/api/projects/${r.pid}/experiments/${r.expId}/exports`;
  const fileOf = (r: TaskRun, rel: string) => path.join(s.settings.workspace, 'projects', r.pid, 'datasets', r.datasetId, rel);

  beforeAll(async () => {
    for (const task of ['multilabel', 'regression'] as const) {
      const r = await trainedTaskRun(s.app, s.dir, task, { evaluate: true });
      runs[task] = r;
      const started = await call<{ export: ExportView; job: { id: string } }>(s.app, 'POST', exportsOf(r), { run_id: r.runId, checkpoint: 'best', variants: ['fp32', 'fp16', 'int8'], benchmark: false });
      expect(started.status, JSON.stringify(started.body)).toBe(202);
      const job = await waitForJob(s.app, started.body.data.job.id, 120_000);
      expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
      exported[task] = (await call<ExportView>(s.app, 'GET', `${exportsOf(r)}/${started.body.data.export.id}`)).body.data;
    }
  }, 300_000);

  it('multi-label: the manifest says sigmoid scores and a threshold per label; the report compares scores, not argmax', () => {
    const x = exported.multilabel!;
    expect(x.status).toBe('succeeded');
    expect(x.task).toBe('multilabel');
    const m = x.manifest!;
    expect(m.task).toBe('multilabel');
    expect(m.labels).toEqual(ML_CLASSES);
    expect(m.outputs.map((o) => o.name)).toEqual(['logits', 'probabilities']);
    expect(m.postprocessing).toMatchObject({ type: 'multilabel', scores_output: 'probabilities', activation: 'sigmoid' });
    expect(Object.keys((m.postprocessing as unknown as { thresholds: object }).thresholds)).toEqual(ML_CLASSES);
    expect(x.variants.map((v) => v.name)).toEqual(['fp32', 'fp16', 'int8']);
    for (const v of x.variants) {
      expect(v.validation.kind).toBe('scores');
      expect(v.validation.argmax_agreement).toBeNull();
      expect(v.metric?.name).toBe('map');
      expect(v.accuracy).toBeNull();
    }
    expect(x.variants[0].validation.passed, x.variants[0].validation.failures.join('; ')).toBe(true);
    expect(x.reference_metric?.name).toBe('map');
    expect(typeof m.metrics.reference_map).toBe('number');
  });

  it('multi-label predict: every label at or above its threshold, best first, and every score', async () => {
    const r = runs.multilabel!;
    const x = exported.multilabel!;
    const thresholds = (x.manifest!.postprocessing as unknown as { thresholds: Record<string, number> }).thresholds;
    const items = (await call<{ items: { file: string }[] }>(s.app, 'GET', `${r.evalUrl}/results?page_size=5&sort=file`)).body.data.items;
    for (const it of items) {
      const res = await predict(x.id, [image(await fs.readFile(fileOf(r, it.file)))], '', exportsOf(r));
      expect(res.statusCode, res.body).toBe(200);
      const data = res.json().data as { task: string; answer: { labels: { label: string; score: number }[]; scores: Record<string, number> }; predictions: unknown };
      expect(data.task).toBe('multilabel');
      expect(Object.keys(data.answer.scores)).toEqual(ML_CLASSES);
      const want = ML_CLASSES.filter((l) => data.answer.scores[l] >= thresholds[l]).sort((a, b) => data.answer.scores[b] - data.answer.scores[a]);
      expect(data.answer.labels.map((l) => l.label)).toEqual(want);
      for (const l of data.answer.labels) expect(l.score).toBe(data.answer.scores[l.label]);
      expect(data.predictions).toEqual(data.answer);
    }
  });

  it('regression: the manifest names the targets; predict answers values equal to the evaluation’s predictions (1e-4)', async () => {
    const r = runs.regression!;
    const x = exported.regression!;
    const m = x.manifest!;
    expect(m.task).toBe('regression');
    expect(m.labels).toEqual(REG_TARGETS);
    expect(m.outputs.map((o) => o.name)).toEqual(['logits', 'value']);
    expect(m.postprocessing).toEqual({ type: 'regression', values_output: 'value', targets: REG_TARGETS.map((name) => ({ name })) });
    for (const v of x.variants) {
      expect(v.validation.kind).toBe('values');
      expect(v.validation.units).toBe('target standard deviations');
      expect(v.metric?.name).toBe('mae');
    }
    expect(x.variants[0].validation.passed, x.variants[0].validation.failures.join('; ')).toBe(true);

    const items = (await call<{ items: { file: string; predicted: Record<string, number> }[] }>(s.app, 'GET', `${r.evalUrl}/results?page_size=6&sort=file`)).body.data.items;
    expect(items.length).toBeGreaterThan(0);
    for (const it of items) {
      const res = await predict(x.id, [image(await fs.readFile(fileOf(r, it.file)))], '', exportsOf(r));
      expect(res.statusCode, res.body).toBe(200);
      const data = res.json().data as { task: string; answer: { values: Record<string, number> } };
      expect(data.task).toBe('regression');
      expect(Object.keys(data.answer.values)).toEqual(REG_TARGETS);
      for (const name of REG_TARGETS) expect(Math.abs(data.answer.values[name] - it.predicted[name])).toBeLessThanOrEqual(1e-4);
    }
    // several images at once: one answer each
    const two = await predict(x.id, await Promise.all(items.slice(0, 2).map(async (it) => image(await fs.readFile(fileOf(r, it.file))))), '', exportsOf(r));
    expect(two.statusCode, two.body).toBe(200);
    expect((two.json().data as { answers: unknown[] }).answers).toHaveLength(2);
  });
});
