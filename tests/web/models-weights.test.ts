import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadSettings } from '../../src/config.ts';
import type { WeightsView } from '../../src/schemas/weights.ts';
import { fieldErrors, formToBody } from '../../src/web/experiments-form.ts';
import { configRows } from '../../src/web/training-view.ts';
import { middleCut, wordedError } from '../../src/web/weights-view.ts';
import { call, multipart } from '../api/helpers.ts';
import { makeShapesProject, type ShapesProject } from '../api/runs-fixtures.ts';
import { WEIGHTS_FIXTURES } from '../models/weights/fixtures.ts';
import { count, get, hx } from './helpers.ts';

/**
 * The Models page's pretrained weights (the chosen architecture's list, its live loads, upload /
 * server path / download with the offline way), the new-experiment form's Weights select and the
 * run configuration's Weights line, through app.inject(). Weights come from the fixtures in
 * tests/fixtures/weights/; the download host is a closed local port (never the network).
 */

let dir: string;
let app: FastifyInstance;
let p: ShapesProject;
const PTH = path.join(WEIGHTS_FIXTURES, 'mobilenet_v3_small.pth');
let ready: WeightsView;

/** What htmx puts on a live widget's stream; the stream of a finished job is its events, then `end`. */
async function sse(url: string): Promise<string> {
  const res = await app.inject({ method: 'GET', url });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toContain('text/event-stream');
  return res.body;
}

const CODES = /\b(VALIDATION_ERROR|BAD_INPUT|OFFLINE|DOWNLOAD_FAILED|CONFLICT|UNSAFE_PICKLE|NOT_FOUND|HASH_MISMATCH)\b/;

async function waitReady(model: string, id: string): Promise<WeightsView> {
  for (let i = 0; i < 600; i++) {
    const w = (await call<WeightsView>(app, 'GET', `/api/models/${model}/weights/${id}`)).body.data;
    if (w.status !== 'loading') return w;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('weights still loading');
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-models-weights-'));
  app = await buildApp(
    loadSettings({ STUDIO_WORKSPACE: path.join(dir, 'ws'), STUDIO_EXAMPLE: 'off', STUDIO_WEIGHTS_BASE_URL: 'http://127.0.0.1:9/', STUDIO_WEIGHTS_TIMEOUT_MS: '2000' }),
  );
  await app.ready();
  p = await makeShapesProject(app, dir, { perClass: 4, size: 32 });
}, 120_000);

afterAll(async () => {
  await app?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('the Models page: weights of a catalog architecture', () => {
  it('shows random initialisation and the three ways to add weights for the chosen architecture', async () => {
    const res = await get(app, '/models?model=mobilenet_v3_small');
    expect(res.statusCode).toBe(200);
    expect(res.headers.vary).toContain('HX-Target');
    expect(res.body).toContain('<section class="card weights-card" id="weights-panel" data-weights-model="mobilenet_v3_small">');
    expect(res.body).toContain('Random initialisation');
    expect(res.body).toContain('No pretrained weights for <span class="mono">mobilenet_v3_small</span> yet');
    expect(res.body).toContain('data-weights-upload="/api/models/mobilenet_v3_small/weights"');
    expect(res.body).toContain('accept=".pth,.pt,.safetensors,.ckpt"');
    expect(res.body).toContain('hx-post="/models/mobilenet_v3_small/weights"');
    expect(res.body).toContain('hx-post="/models/mobilenet_v3_small/weights/download"');
    // the published variant, not cached yet
    expect(res.body).toContain('<option value="IMAGENET1K_V1" data-cached="0">IMAGENET1K_V1 · 67.7 % top-1 · default</option>');
    // the chosen row is marked in the catalog; the others link to their own weights
    expect(res.body).toMatch(/<tr id="model-mobilenet_v3_small" class="selected" aria-current="true">/);
    expect(res.body).toContain('hx-get="/models?model=resnet18" hx-target="#models-board"');
    // a model torchvision publishes nothing for has no Download tab
    const small = await get(app, '/models?model=small_cnn');
    expect(small.body).toContain('data-weights-model="small_cnn"');
    expect(small.body).not.toContain('data-tab="download"');
    // the catalog list keeps the page's choice (the page it is fetched from names it)
    const list = await hx(app, 'GET', '/models/list', undefined, { 'hx-current-url': 'http://localhost/models?model=resnet18' });
    expect(list.body).toContain('<tr id="model-resnet18" class="selected" aria-current="true">');
    expect(list.body).toContain('hx-get="/models/list?model=resnet18"');
    // an unknown name falls back to a catalog architecture
    expect((await get(app, '/models?model=nope')).body).toContain('id="weights-panel"');
  });

  it('loads a .pth by server path: the list shows it loading with its live widget, then ready with its details', async () => {
    const res = await hx(app, 'POST', '/models/mobilenet_v3_small/weights', { path: PTH });
    expect(res.statusCode).toBe(200);
    expect(res.headers['hx-trigger']).toBe('models-changed');
    expect(res.body.startsWith('<div id="weights-list"')).toBe(true);
    const id = /id="weights-(wt-[0-9a-z]{8})"/.exec(res.body)?.[1];
    expect(id).toBeDefined();
    ready = await waitReady('mobilenet_v3_small', id!);
    expect(ready.status).toBe('ready');
    // Rendered while loading (the worker thread takes a while to start): the SSE widget and its end fetch.
    expect(res.body).toContain('data-status="loading"');
    expect(res.body).toContain(`sse-connect="/models/mobilenet_v3_small/weights/${id}/live?last_event_id=`);
    expect(res.body).toContain('sse-close="end"');
    expect(res.body).toContain('hx-get="/models/mobilenet_v3_small/weights/list?settled=1" hx-trigger="sse:end"');
    expect(res.body).toContain('sse-swap="progress,log"');
    expect(res.body).toContain(`hx-post="/models/mobilenet_v3_small/weights/${id}/cancel"`);
    // the stream: each event rendered as the item's bar and step, the badge once out of band, then end
    const stream = await sse(`/models/mobilenet_v3_small/weights/${id}/live?last_event_id=0`);
    expect(stream).toMatch(/event: progress\ndata: <div class="progress/);
    expect(stream).toContain(`data: <span class="badge running" id="weights-status-${id}" hx-swap-oob="true">loading</span>`);
    expect(count(stream, 'hx-swap-oob')).toBe(1);
    expect(stream.trimEnd().endsWith('event: end\ndata:')).toBe(true);

    // At the end the list comes again (and the catalog's counts with it).
    const list = await hx(app, 'GET', '/models/mobilenet_v3_small/weights/list?settled=1');
    expect(list.headers['hx-trigger']).toBe('models-changed');
    const sha = createHash('sha256').update(await fs.readFile(PTH)).digest('hex');
    expect(list.body).toContain(`<div class="weights-name truncate" title="mobilenet_v3_small.pth">mobilenet_v3_small.pth</div>`);
    expect(list.body).toContain(`<span class="badge ready" id="weights-status-${id}">ready</span>`);
    expect(list.body).toContain(`<code class="weights-sha" title="${sha}" data-sha256="${sha}">${sha.slice(0, 12)}…</code>`);
    expect(list.body).toContain(`data-copy="${sha}"`);
    expect(list.body).toContain('PyTorch .pth');
    expect(list.body).toContain(`title="${PTH}"`);
    expect(list.body).toContain('<b class="weights-n">210</b> tensors loaded · 1,000-class head');
    expect(list.body).toMatch(/<summary class="small">\d+ skipped<\/summary>/);
    expect(list.body).toContain('num_batches_tracked');
    expect(list.body).toContain('batch-norm step counter: not used');
    expect(list.body).toMatch(/<time datetime="[^"]+" title="[^"]+">\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d<\/time>/);
    expect(list.body).not.toContain('sse-connect');

    // choosing the model in the catalog swaps the board alone
    const board = await hx(app, 'GET', '/models?model=mobilenet_v3_small', undefined, { 'hx-target': 'models-board' });
    expect(board.body.trimStart().startsWith('<div id="models-board"')).toBe(true);
    expect(board.body).not.toContain('<html');
    expect(board.body).toContain('<span class="badge ready">1 pretrained</span>');
    expect((await hx(app, 'GET', '/models/list?model=mobilenet_v3_small')).body).toContain('data-weights-count="1"');
  });

  it('answers a bad path beside the form, in words', async () => {
    const res = await hx(app, 'POST', '/models/mobilenet_v3_small/weights', { path: '/nonexistent/weights.pth' });
    expect(res.statusCode).toBe(400);
    expect(res.headers['hx-retarget']).toBe('#weights-path-error');
    expect(res.headers['hx-reswap']).toBe('innerHTML');
    expect(res.body).toContain('No such file: /nonexistent/weights.pth.');
    expect(res.body).not.toMatch(CODES);
    const relative = await hx(app, 'POST', '/models/mobilenet_v3_small/weights', { path: 'weights.pth' });
    expect(relative.statusCode).toBe(400);
    expect(relative.body).toContain('Must be an absolute path on the server.');
  });

  it('offline: the download answers the manual way beside its button, not a raw error', async () => {
    const res = await hx(app, 'POST', '/models/resnet18/weights/download', { variant: 'IMAGENET1K_V1' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['hx-retarget']).toBe('#weights-download-note');
    expect(res.body).toContain('This machine is offline');
    expect(res.body).toContain('127.0.0.1:9 cannot be reached from here');
    expect(res.body).toContain('href="http://127.0.0.1:9/resnet18-f37072fd.pth"');
    expect(res.body).toContain('f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec');
    expect(res.body).toContain('data-tab="upload"');
    expect(res.body).toContain('data-tab="path"');
    expect(res.body).not.toMatch(CODES);
    expect(res.body).not.toContain('/api/');
    // nothing was recorded
    expect((await call<WeightsView[]>(app, 'GET', '/api/models/resnet18/weights')).body.data).toEqual([]);
    // a variant that is not published is refused in words
    const bad = await hx(app, 'POST', '/models/resnet18/weights/download', { variant: 'IMAGENET1K_V9' });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('&#39;IMAGENET1K_V9&#39; is not published for resnet18 (one of: IMAGENET1K_V1)');
    expect(bad.body).not.toMatch(CODES);
  });

  it('marks a published file that is cached on this machine', async () => {
    const cache = path.join(dir, 'ws', 'models', 'weights', 'cache');
    await fs.mkdir(cache, { recursive: true });
    await fs.writeFile(path.join(cache, 'resnet50-0676ba61.pth'), 'x');
    const res = await get(app, '/models?model=resnet50');
    expect(res.body).toContain('<option value="IMAGENET1K_V1" data-cached="1">IMAGENET1K_V1 · 76.1 % top-1 · cached</option>');
    expect(res.body).toContain('<option value="IMAGENET1K_V2" data-cached="0">IMAGENET1K_V2 · 80.9 % top-1 · default</option>');
    await fs.rm(path.join(cache, 'resnet50-0676ba61.pth'));
  });

  it('shows a refused file in the list in words, and deletes it', async () => {
    const bytes = await fs.readFile(path.join(WEIGHTS_FIXTURES, 'hostile', 'os_system.pth'));
    const up = await app.inject({ method: 'POST', url: '/api/models/resnet18/weights', ...multipart([{ name: 'file', filename: 'evil <b>.pth', data: bytes, type: 'application/octet-stream' }]) });
    expect(up.statusCode).toBe(202);
    const id = up.json().data.weights.id as string;
    expect((await waitReady('resnet18', id)).status).toBe('failed');
    const list = await hx(app, 'GET', '/models/resnet18/weights/list');
    expect(list.body).toContain('<strong>Refused for safety</strong>');
    expect(list.body).toContain("refers to &#39;os.system&#39;");
    expect(list.body).toContain('evil &lt;b&gt;.pth');
    expect(list.body).not.toContain('evil <b>');
    expect(list.body).toContain(`<span class="badge failed" id="weights-status-${id}">failed</span>`);
    expect(list.body).not.toMatch(CODES);
    const del = await hx(app, 'DELETE', `/models/resnet18/weights/${id}`);
    expect(del.statusCode).toBe(200);
    expect(del.headers['hx-trigger']).toBe('models-changed');
    expect(del.body).not.toContain(id);
  });
});

describe('the new-experiment form: Weights', () => {
  it('offers a Weights select for catalog architectures only, with the ready weights after random initialisation', async () => {
    const page = await get(app, `/projects/${p.pid}/experiments/new`);
    expect(page.statusCode).toBe(200);
    // small_cnn is preselected: random only, with the way to load some
    expect(page.body).toContain('<div id="model-weights" class="model-weights">');
    expect(page.body).toContain('<select class="input" name="model.weights_id" data-weights-select>');
    expect(page.body).toContain('None loaded for small_cnn yet: <a href="/models?model=small_cnn">load some</a>');
    expect(page.body).toContain(`hx-get="/projects/${p.pid}/experiments/model-weights" hx-include="this" hx-target="#model-weights"`);

    const arch = await hx(app, 'GET', `/projects/${p.pid}/experiments/model-weights?model.choice=arch:mobilenet_v3_small`);
    expect(arch.statusCode).toBe(200);
    const options = [...arch.body.matchAll(/<option value="([^"]*)"[^>]*>([^<]*)<\/option>/g)].map((m) => [m[1], m[2]]);
    expect(options[0]).toEqual(['', 'Random initialisation']);
    expect(options).toContainEqual([ready.id, expect.stringMatching(/^mobilenet_v3_small\.pth · \d{1,2} [A-Z][a-z]{2}( \d{4})?$/)]);
    expect(arch.body).toMatch(new RegExp(`data-detail="Read from ${PTH} \\d{1,2} [A-Z][a-z]{2} \\d{4}, \\d\\d:\\d\\d · 210 tensors · sha256 ${ready.sha256!.slice(0, 12)}…"`));
    expect(options).toHaveLength(2);
    // weights of other architectures, failed or loading ones are not offered
    expect((await hx(app, 'GET', `/projects/${p.pid}/experiments/model-weights?model.choice=arch:resnet18`)).body).not.toContain('wt-');
    // an imported backbone brings its own: the field is empty and hidden (nothing posted)
    const bb = await hx(app, 'GET', `/projects/${p.pid}/experiments/model-weights?model.choice=bb:bb-00000000`);
    expect(bb.body).toContain('<div id="model-weights" class="model-weights" hidden>');
    expect(bb.body).not.toContain('<select');
  });

  it('posts the chosen weights as model.weights_id, refuses others beside the field in words', async () => {
    const base = {
      name: 'Pretrained',
      dataset_id: p.datasetId,
      split_name: 'main',
      'model.choice': 'arch:mobilenet_v3_small',
      'model.weights_id': ready.id,
      'model.input_size': '32',
      'model.trainable': 'all',
      'hyperparameters.epochs': '1',
      'hyperparameters.batch_size': '8',
      'augmentation.normalize.mode': 'model',
    };
    expect(formToBody(base).model).toMatchObject({ architecture: 'mobilenet_v3_small', weights_id: ready.id });
    expect(formToBody({ ...base, 'model.weights_id': '' }).model).not.toHaveProperty('weights_id');
    expect(formToBody({ ...base, 'model.choice': 'bb:bb-00000000' }).model).not.toHaveProperty('weights_id');

    const wrong = await hx(app, 'POST', `/projects/${p.pid}/experiments`, { ...base, 'model.choice': 'arch:resnet18' });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.body).toContain('These weights are for mobilenet_v3_small, not resnet18: choose weights of resnet18.');
    expect(wrong.body).toContain('&quot;field&quot;:&quot;model.weights_id&quot;');
    const bogus = await hx(app, 'POST', `/projects/${p.pid}/experiments`, { ...base, 'model.weights_id': 'wt-nothing!' });
    expect(bogus.statusCode).toBe(400);
    expect(bogus.body).toContain('These weights are not in this workspace');
    expect(bogus.body).not.toContain('pattern');
    expect(bogus.body).not.toMatch(CODES);
    expect(fieldErrors("model.weights_id: the weights 'wt-abcdefgh' are loading", undefined)[0]).toEqual({
      field: 'model.weights_id',
      label: 'Weights',
      message: 'These weights are still loading: choose them once the Models page shows them ready.',
    });

    const ok = await hx(app, 'POST', `/projects/${p.pid}/experiments`, base);
    expect(ok.statusCode).toBe(200);
    const [exp] = (await call<{ id: string; model: { weights_id?: string } }[]>(app, 'GET', `/api/projects/${p.pid}/experiments`)).body.data;
    expect(exp.model.weights_id).toBe(ready.id);

    // The training page says so; the weights cannot go while the experiment starts from them.
    const training = await get(app, `/projects/${p.pid}/training?experiment=${exp.id}`);
    expect(training.body).toContain('<span class="small faint mono truncate">mobilenet_v3_small · pretrained</span>');
    const del = await hx(app, 'DELETE', `/models/mobilenet_v3_small/weights/${ready.id}`);
    expect(del.statusCode).toBe(409);
    expect(del.headers['hx-retarget']).toBe(`#weights-error-${ready.id}`);
    expect(del.body).toContain('These weights cannot be deleted: the experiment “Pretrained” (training) starts from them.');
    expect(del.body).not.toMatch(CODES);
    expect((await hx(app, 'GET', '/models/mobilenet_v3_small/weights/list')).body).toContain('used by 1 experiment</span>');
  });
});

describe('weights in words', () => {
  it('says why a download failed, with the file for the URL, and the manual way', () => {
    const w = {
      id: 'wt-abcdefgh', model: 'resnet18', source: 'download', format: 'torchvision_pth', status: 'failed', file_name: 'resnet18-f37072fd.pth', source_path: null,
      url: 'http://h/resnet18-f37072fd.pth', sha256: null, bytes: null, tensors_loaded: 0, tensors_skipped: [], tensors_missing: [], num_classes: null, job_id: null,
      error: { code: 'DOWNLOAD_FAILED', message: 'resnet18-f37072fd.pth: the server sent 10 of 20 bytes; what arrived is kept, try again to resume' },
      created_at: '2025-01-01T00:00:00.000Z', updated_at: '2025-01-01T00:00:00.000Z',
    } as const;
    const offer = { variant: 'IMAGENET1K_V1', file: 'resnet18-f37072fd.pth', url: 'http://h/resnet18-f37072fd.pth', sha256: null, sha256_prefix: 'f37072fd', acc1: 69.758, cached: false };
    expect(wordedError({ ...w, tensors_skipped: [], tensors_missing: [] }, [offer])).toEqual({
      title: 'The download failed',
      message:
        'The download did not finish: resnet18-f37072fd.pth: the server sent 10 of 20 bytes; what arrived is kept, try again to resume. Or by hand: Download http://h/resnet18-f37072fd.pth on a computer that is online (its sha256 starts with f37072fd), copy resnet18-f37072fd.pth to this machine, then upload it or load it by its path on the server.',
    });
    const http = { ...w, tensors_skipped: [], tensors_missing: [], error: { code: 'DOWNLOAD_FAILED', message: 'http://h/resnet18-f37072fd.pth answered HTTP 404' } };
    expect(wordedError(http, [])?.message).toBe('The download did not finish: resnet18-f37072fd.pth is not on the server.');
    expect(wordedError({ ...http, error: { code: 'CANCELLED', message: 'x' } }, [])?.title).toBe('Cancelled');
  });

  it('cuts a long file name in the middle, keeping its extension', () => {
    expect(middleCut('mobilenet_v3_small-047dcff4.pth', 32)).toBe('mobilenet_v3_small-047dcff4.pth');
    const cut = middleCut('efficientnet_b1_rwightman-bac287d4.pth', 32);
    expect(cut).toHaveLength(32);
    expect(cut).toBe('efficientnet_b1_r…n-bac287d4.pth');
  });
});

describe("a run's configuration", () => {
  it('names the weights the run started from, as its config.json records them', async () => {
    const [exp] = (await call<{ id: string }[]>(app, 'GET', `/api/projects/${p.pid}/experiments`)).body.data;
    const full = (await call<Parameters<typeof configRows>[1]>(app, 'GET', `/api/projects/${p.pid}/experiments/${exp.id}`)).body.data;
    const run = { config: null } as unknown as Parameters<typeof configRows>[0];
    const model = configRows(run, full, new Map(), 'pretrained · mobilenet_v3_small.pth').find((g) => g.group === 'Model')!;
    expect(model.rows).toContainEqual(['Weights', 'pretrained · mobilenet_v3_small.pth']);

    // A real run (one epoch at 32 px) starts from them; its panel shows the line.
    const started = await call<{ run: { id: string } }>(app, 'POST', `/api/projects/${p.pid}/experiments/${exp.id}/runs`, {});
    expect(started.status).toBe(202);
    const runId = started.body.data.run.id;
    let status = '';
    for (let i = 0; i < 1200 && !['succeeded', 'failed', 'cancelled'].includes(status); i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await call<{ status: string }>(app, 'GET', `/api/projects/${p.pid}/experiments/${exp.id}/runs/${runId}`)).body.data.status;
    }
    expect(status).toBe('succeeded');
    const page = await get(app, `/projects/${p.pid}/training?experiment=${exp.id}&run=${runId}`);
    expect(page.body).toContain(`pretrained · mobilenet_v3_small.pth · sha256 ${ready.sha256!.slice(0, 12)}…`);
  }, 180_000);
});
