import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, makeStudio, multipart, type TestStudio } from './helpers.ts';
import { makeShapesProject, waitForRun, type ShapesProject } from './runs-fixtures.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../../../shared/fixtures/onnx-interop');
const MOBILENET = path.join(FIXTURES, 'mobilenet_v3_small_eval_opset13.onnx');
const TINY = path.join(FIXTURES, 'tiny_cnn_train_opset13.onnx');

interface ModelEntry {
  name: string;
  kind: 'catalog' | 'imported';
  id?: string;
  param_count: number;
  input_size: number;
  mean: number[];
  std: number[];
  block_count?: number;
}

let s: TestStudio;
let p: ShapesProject;

beforeAll(async () => {
  s = await makeStudio();
  p = await makeShapesProject(s.app, s.dir, { perClass: 4, size: 48, ratios: { train: 0.5, val: 0.5, test: 0 } });
}, 60_000);
afterAll(async () => s?.close());

describe('models', () => {
  it('lists the catalog with parameter counts and input sizes', async () => {
    const res = await call<ModelEntry[]>(s.app, 'GET', '/api/models');
    expect(res.status).toBe(200);
    const byName = new Map(res.body.data.map((m) => [m.name, m]));
    expect(byName.get('resnet18')).toMatchObject({ kind: 'catalog', param_count: 11689512, input_size: 224 });
    expect(byName.get('mobilenet_v3_small')).toMatchObject({ kind: 'catalog', param_count: 2542856 });
    expect(byName.get('small_cnn')?.param_count).toBeGreaterThan(0);
  });

  it('imports an ONNX file by upload, with its input size, normalisation and parameter count', async () => {
    const form = multipart([
      { name: 'name', value: 'tiny upload' },
      { name: 'file', filename: 'tiny.onnx', data: await fs.readFile(TINY), type: 'application/octet-stream' },
    ]);
    const res = await s.app.inject({ method: 'POST', url: '/api/models/import', ...form });
    expect(res.statusCode, res.body).toBe(201);
    const m = (res.json() as { data: ModelEntry }).data;
    expect(m).toMatchObject({ name: 'tiny upload', kind: 'imported' });
    expect(m.id).toMatch(/^bb-[0-9a-z]{8}$/);
    expect(m.param_count).toBeGreaterThan(0);
    expect(m.mean).toHaveLength(3);
    const listed = (await call<ModelEntry[]>(s.app, 'GET', '/api/models')).body.data.find((x) => x.id === m.id);
    expect(listed).toEqual(m);
    expect((await call(s.app, 'DELETE', `/api/models/${m.id}`)).status).toBe(200);
    expect((await call(s.app, 'GET', `/api/models/${m.id}`)).status).toBe(404);
  });

  it('refuses what is not a usable backbone, a relative path and a missing file', async () => {
    const junk = path.join(s.dir, 'junk.onnx');
    await fs.writeFile(junk, 'not a model at all');
    const bad = await call(s.app, 'POST', '/api/models/import', { path: junk, name: 'junk' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('not a usable ONNX backbone');
    expect((await call(s.app, 'POST', '/api/models/import', { path: 'models/x.onnx', name: 'x' })).body.error.message).toContain('absolute');
    expect((await call(s.app, 'POST', '/api/models/import', { path: '/nonexistent/x.onnx', name: 'x' })).body.error.message).toContain('no such file');
  });

  it('refuses to delete an imported model that an experiment uses, naming the experiment', async () => {
    const bb = (await call<ModelEntry>(s.app, 'POST', '/api/models/import', { path: TINY, name: 'tiny in use' })).body.data;
    const exps = `/api/projects/${p.pid}/experiments`;
    const exp = await call<{ id: string }>(s.app, 'POST', exps, { name: 'uses tiny', dataset_id: p.datasetId, split_name: 'main', model: { backbone_id: bb.id } });
    expect(exp.status, JSON.stringify(exp.body)).toBe(201);
    const refused = await call(s.app, 'DELETE', `/api/models/${bb.id}`);
    expect([refused.status, refused.body.error?.code]).toEqual([409, 'CONFLICT']);
    expect(refused.body.error.message).toContain(exp.body.data.id);
    expect(refused.body.error.message).toContain('1 experiment');
    expect((await call(s.app, 'GET', `/api/models/${bb.id}`)).status).toBe(200);
    // Once no experiment names it, it can go.
    expect((await call(s.app, 'PATCH', `${exps}/${exp.body.data.id}`, { model: { architecture: 'small_cnn', input_size: 32 } })).status).toBe(200);
    expect((await call(s.app, 'DELETE', `/api/models/${bb.id}`)).status).toBe(200);
    expect((await call(s.app, 'DELETE', `${exps}/${exp.body.data.id}`)).status).toBe(200);
  });

  it('refuses an upload over the size limit with PAYLOAD_TOO_LARGE', async () => {
    const small = await makeStudio({ maxUploadBytes: 1024 });
    try {
      const form = multipart([{ name: 'file', filename: 'tiny.onnx', data: await fs.readFile(TINY), type: 'application/octet-stream' }]);
      const res = await small.app.inject({ method: 'POST', url: '/api/models/import', ...form });
      expect([res.statusCode, (res.json() as { error: { code: string } }).error.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    } finally {
      await small.close();
    }
  });

  it('fine-tunes an imported MobileNetV3-Small through the API', async () => {
    const imported = await call<ModelEntry>(s.app, 'POST', '/api/models/import', { path: MOBILENET, name: 'mobilenet v3 small (torchvision)' });
    expect(imported.status, JSON.stringify(imported.body)).toBe(201);
    const bb = imported.body.data;
    expect(bb).toMatchObject({ kind: 'imported', input_size: 224 });
    // torchvision's mobilenet_v3_small has 2,542,856 parameters, 1,025,000 of them in its last
    // Linear (cut off); its eval export folds each BN's scale and shift into a conv bias, one value
    // per channel fewer.
    expect(bb.param_count).toBeLessThan(2542856 - 1025000);
    expect(bb.param_count).toBeGreaterThan(2542856 - 1025000 - 10000);

    const exp = await call<{ id: string; model: { input_size: number }; augmentation: { normalize: { mean: number[] } } }>(
      s.app,
      'POST',
      `/api/projects/${p.pid}/experiments`,
      {
        name: 'fine-tune',
        dataset_id: p.datasetId,
        split_name: 'main',
        model: { backbone_id: bb.id, trainable: 'head' },
        hyperparameters: { epochs: 1, batch_size: 4, lr: 1e-3 },
      },
    );
    expect(exp.status, JSON.stringify(exp.body)).toBe(201);
    expect(exp.body.data.model.input_size).toBe(224);
    expect(exp.body.data.augmentation.normalize.mean).toEqual(bb.mean);
    const base = `/api/projects/${p.pid}/experiments/${exp.body.data.id}/runs`;
    const started = await call<{ run: { id: string } }>(s.app, 'POST', base);
    expect(started.status).toBe(202);
    const run = await waitForRun(s.app, `${base}/${started.body.data.run.id}`, 120_000);
    expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
    expect(run.metrics).toHaveLength(1);
    expect(Number.isFinite(run.metrics[0].train_loss)).toBe(true);
    expect(run.config).toMatchObject({ model: { backbone_id: bb.id, name: bb.name, num_classes: 4, trainable: 'head' } });
    const cfg = run.config as { model: { trainable_param_count: number } };
    expect(cfg.model.trainable_param_count).toBe(1024 * 4 + 4);
  }, 150_000);
});
