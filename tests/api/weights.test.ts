import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/jobs/registry.ts';
import type { WeightsView } from '../../src/schemas/weights.ts';
import { WEIGHTS_FIXTURES } from '../models/weights/fixtures.ts';
import { body, call, makeStudio, type TestStudio } from './helpers.ts';

/** POST/GET/DELETE /api/models/:name/weights: load by path and upload, hostile files, the records. */

let s: TestStudio;
beforeAll(async () => {
  s = await makeStudio({ weightsBaseUrl: 'http://127.0.0.1:9/', weightsTimeoutMs: 2000 });
});
afterAll(async () => s.close());

function multipart(file: Uint8Array, filename: string): { payload: Buffer; headers: Record<string, string> } {
  const boundary = '----weights-test';
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return { payload: Buffer.concat([head, Buffer.from(file), tail]), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

async function settle(started: { weights: WeightsView; job: JobView }): Promise<{ weights: WeightsView; job: JobView }> {
  const job = await s.app.studio.jobs.wait(started.job.id);
  const r = await call<WeightsView>(s.app, 'GET', `/api/models/${started.weights.model}/weights/${started.weights.id}`);
  expect(r.status).toBe(200);
  return { weights: r.body.data, job };
}

async function tmpFiles(): Promise<string[]> {
  return (await fs.readdir(path.join(s.settings.workspace, 'tmp')).catch(() => [])).filter((n) => n.includes('weights'));
}

describe('weights API', () => {
  it('loads a .pth from a server path: 202 with the record and its job, then ready with sha256 and counts', async () => {
    const file = path.join(WEIGHTS_FIXTURES, 'mobilenet_v3_small.pth');
    const r = await call<{ weights: WeightsView; job: JobView }>(s.app, 'POST', '/api/models/mobilenet_v3_small/weights', { path: file });
    expect(r.status).toBe(202);
    expect(r.body.data.weights).toMatchObject({ model: 'mobilenet_v3_small', source: 'file', format: 'torchvision_pth', status: 'loading', source_path: file, file_name: 'mobilenet_v3_small.pth' });
    expect(r.body.data.weights.id).toMatch(/^wt-[0-9a-z]{8}$/);
    expect(r.body.data.job.kind).toBe('weights_load');
    const { weights, job } = await settle(r.body.data);
    expect(job.status).toBe('succeeded');
    const sha = createHash('sha256').update(await fs.readFile(file)).digest('hex');
    expect(weights).toMatchObject({ status: 'ready', sha256: sha, num_classes: 1000, tensors_missing: [], error: null, job_id: job.id });
    expect(weights.tensors_loaded).toBe(210);
    expect(weights.tensors_skipped.every((t) => t.name.endsWith('num_batches_tracked'))).toBe(true);
    const list = await call<WeightsView[]>(s.app, 'GET', '/api/models/mobilenet_v3_small/weights');
    expect(list.body.data.map((w) => w.id)).toContain(weights.id);
    // stored under the workspace, nowhere else
    expect(await fs.stat(path.join(s.settings.workspace, 'models', 'weights', weights.id, 'tensors.ckpt'))).toBeTruthy();

    // experiments: the weights are for mobilenet_v3_small only
    await expect(s.app.studio.weights.requireReady('resnet18', weights.id)).rejects.toMatchObject({ code: 'VALIDATION_ERROR', message: expect.stringContaining('are for mobilenet_v3_small, not resnet18') });
    await expect(s.app.studio.weights.requireReady('mobilenet_v3_small', weights.id)).resolves.toMatchObject({ id: weights.id });

    const del = await call(s.app, 'DELETE', `/api/models/mobilenet_v3_small/weights/${weights.id}`);
    expect(del.status).toBe(200);
    expect((await call(s.app, 'GET', `/api/models/mobilenet_v3_small/weights/${weights.id}`)).status).toBe(404);
  });

  it('uploads timm safetensors (multipart `file`) and maps timm names', async () => {
    const bytes = new Uint8Array(await fs.readFile(path.join(WEIGHTS_FIXTURES, 'mobilenet_v3_small_timm.safetensors')));
    const res = await s.app.inject({ method: 'POST', url: '/api/models/mobilenet_v3_small/weights', ...multipart(bytes, 'model.safetensors') });
    expect(res.statusCode).toBe(202);
    const { weights } = await settle(body<{ weights: WeightsView; job: JobView }>(res).data);
    expect(weights).toMatchObject({ status: 'ready', format: 'safetensors', file_name: 'model.safetensors', num_classes: 10, tensors_missing: [] });
    expect(await tmpFiles()).toEqual([]);
  });

  it.each([
    ['os_system.pth', 'os.system'],
    ['builtins_eval.pth', 'builtins.eval'],
    ['subprocess_popen.pth', 'subprocess.Popen'],
  ])('a pickle naming %s fails its job with UNSAFE_PICKLE; nothing is written outside the workspace', async (file, global) => {
    const bytes = new Uint8Array(await fs.readFile(path.join(WEIGHTS_FIXTURES, 'hostile', file)));
    const res = await s.app.inject({ method: 'POST', url: '/api/models/resnet18/weights', ...multipart(bytes, file) });
    expect(res.statusCode).toBe(202);
    const { weights, job } = await settle(body<{ weights: WeightsView; job: JobView }>(res).data);
    expect(job.status).toBe('failed');
    expect(job.error?.code).toBe('UNSAFE_PICKLE');
    expect(weights.status).toBe('failed');
    expect(weights.error?.message).toContain(`'${global}'`);
    await expect(fs.stat('/tmp/ai-studio-pwned')).rejects.toThrow();
    expect(await tmpFiles()).toEqual([]);
  });

  it('a zip with a ../ entry fails with BAD_ARCHIVE and writes no escape file', async () => {
    const r = await call<{ weights: WeightsView; job: JobView }>(s.app, 'POST', '/api/models/resnet18/weights', { path: path.join(WEIGHTS_FIXTURES, 'hostile', 'zip_slip.pth') });
    const { job } = await settle(r.body.data);
    expect(job.error?.code).toBe('BAD_ARCHIVE');
    await expect(fs.stat(path.join(s.settings.workspace, 'models', 'escape.txt'))).rejects.toThrow();
    await expect(fs.stat(path.join(s.settings.workspace, '..', 'escape.txt'))).rejects.toThrow();
  });

  it('refuses at once what is obviously not weights, the legacy format, an unknown model, a missing path', async () => {
    const junk = await s.app.inject({ method: 'POST', url: '/api/models/resnet18/weights', ...multipart(new TextEncoder().encode('<html>not weights</html>'), 'x.pth') });
    expect(junk.statusCode).toBe(400);
    expect(body(junk).error.message).toMatch(/not a weights file/);
    expect(await tmpFiles()).toEqual([]);
    const legacy = await call(s.app, 'POST', '/api/models/resnet18/weights', { path: path.join(WEIGHTS_FIXTURES, 'hostile', 'legacy.pth') });
    expect(legacy.status).toBe(400);
    expect(legacy.body.error.message).toMatch(/legacy format/);
    const unknown = await call(s.app, 'POST', '/api/models/resnet9000/weights', { path: path.join(WEIGHTS_FIXTURES, 'resnet18.pth') });
    expect(unknown.status).toBe(404);
    expect((await call(s.app, 'GET', '/api/models/resnet9000/weights')).status).toBe(404);
    const missing = await call(s.app, 'POST', '/api/models/resnet18/weights', { path: '/nonexistent/weights.pth' });
    expect(missing.status).toBe(400);
    const relative = await call(s.app, 'POST', '/api/models/resnet18/weights', { path: 'weights.pth' });
    expect(relative.status).toBe(400);
  });

  it('weights of another family fail their job naming what did not fit', async () => {
    const r = await call<{ weights: WeightsView; job: JobView }>(s.app, 'POST', '/api/models/resnet18/weights', { path: path.join(WEIGHTS_FIXTURES, 'mobilenet_v3_small.pth') });
    const { job, weights } = await settle(r.body.data);
    expect(job.error?.code).toBe('BAD_INPUT');
    expect(weights.error?.message).toMatch(/do not fit resnet18: 0 of its \d+ backbone tensors found/);
  });

  it('download on an offline machine: 503 OFFLINE with the manual way, no record', async () => {
    const r = await call(s.app, 'POST', '/api/models/resnet18/weights/download');
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('OFFLINE');
    expect(r.body.error.message).toMatch(/resnet18-f37072fd\.pth/);
    expect(r.body.error.message).toMatch(/then load it/);
    const none = await call<WeightsView[]>(s.app, 'GET', '/api/models/resnet18/weights');
    expect(none.body.data.filter((w) => w.source === 'download')).toEqual([]);
    const offers = await call<{ variant: string; cached: boolean }[]>(s.app, 'GET', '/api/models/resnet50/weights/downloads');
    expect(offers.body.data.map((o) => o.variant)).toEqual(['IMAGENET1K_V2', 'IMAGENET1K_V1']);
    expect((await call(s.app, 'POST', '/api/models/small_cnn/weights/download')).status).toBe(400);
  });
});
