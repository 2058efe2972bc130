import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureExampleProject } from '../../src/core/example.ts';
import { fieldErrors, formToBody } from '../../src/web/experiments-form.ts';
import { get, hx, makePageStudio, type PageStudio } from './helpers.ts';

/**
 * The models page, the new-experiment form (with its split check, augmentation preview and
 * field-by-field refusals) and the training board through app.inject(), with user text escaped
 * wherever it lands. A real (two-epoch, 32 px) run is started from the board and read back.
 */
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BACKBONE = path.resolve(REPO, '../shared/fixtures/onnx-interop/tiny_cnn_eval_opset13.onnx');
const EVIL = `<img src=x onerror=alert(1)>"'`;
const EVIL_ESCAPED = '&lt;img src=x onerror=alert(1)&gt;&quot;&#39;';

let s: PageStudio;
let projectId: string;
let datasetId: string;
let split: string;

/** A complete, valid form as the page posts it. */
function validForm(extra: Record<string, string> = {}): Record<string, string> {
  return {
    name: EVIL,
    description: '',
    dataset_id: datasetId,
    split_name: split,
    'model.choice': 'arch:small_cnn',
    'model.input_size': '32',
    'model.trainable': 'all',
    'model.last_blocks': '2',
    'hyperparameters.epochs': '2',
    'hyperparameters.batch_size': '16',
    'hyperparameters.seed': '3',
    'hyperparameters.optimizer': 'adamw',
    'hyperparameters.lr': '0.003',
    'hyperparameters.weight_decay': '0.01',
    'hyperparameters.momentum': '0.9',
    'hyperparameters.scheduler': 'cosine',
    'hyperparameters.warmup_epochs': '0',
    'hyperparameters.step_size': '',
    'hyperparameters.gamma': '0.1',
    'hyperparameters.label_smoothing': '0',
    'hyperparameters.class_weights': 'none',
    'hyperparameters.early_stopping.metric': 'val_loss',
    'hyperparameters.early_stopping.patience': '5',
    'augmentation.random_resized_crop.enabled': 'on',
    'augmentation.random_resized_crop.scale.0': '0.5',
    'augmentation.random_resized_crop.scale.1': '1',
    'augmentation.random_resized_crop.ratio.0': '0.75',
    'augmentation.random_resized_crop.ratio.1': '1.333',
    'augmentation.horizontal_flip.enabled': 'on',
    'augmentation.horizontal_flip.p': '0.5',
    'augmentation.rotation.degrees': '15',
    'augmentation.color_jitter.brightness': '0.2',
    'augmentation.color_jitter.contrast': '0.2',
    'augmentation.color_jitter.saturation': '0.2',
    'augmentation.color_jitter.hue': '0.02',
    'augmentation.grayscale.p': '0.1',
    'augmentation.normalize.mode': 'model',
    'augmentation.normalize.mean.0': '0.485',
    'augmentation.normalize.mean.1': '0.456',
    'augmentation.normalize.mean.2': '0.406',
    'augmentation.normalize.std.0': '0.229',
    'augmentation.normalize.std.1': '0.224',
    'augmentation.normalize.std.2': '0.225',
    preview_seed: '0',
    start: '0',
    ...extra,
  };
}

/** The field errors a refused form carries for the page script (HTML-escaped JSON in an attribute). */
function errorsOf(html: string): { field: string; label: string; message: string }[] {
  const m = /data-field-errors="([^"]*)"/.exec(html);
  if (!m) return [];
  return JSON.parse(m[1].replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&'));
}

beforeAll(async () => {
  s = await makePageStudio();
  const example = await ensureExampleProject(s.app.studio.store, { perClass: 10, size: 32 });
  if (!example) throw new Error('example project not made');
  projectId = example.id;
  await s.app.studio.projects.update(projectId, { name: EVIL });
  const ds = (await s.app.studio.datasets.list(projectId))[0];
  datasetId = ds.id;
  split = ds.split_names[0];
  await s.app.studio.datasets.update(projectId, datasetId, { name: `Shapes ${EVIL}` });
});
afterAll(async () => s?.close());

describe('the experiment form, as data', () => {
  it('turns dotted field names into the create body', () => {
    const body = formToBody(validForm({ 'model.trainable': 'last', 'hyperparameters.early_stopping.enabled': 'on', 'augmentation.normalize.mode': 'custom' })) as Record<string, any>;
    expect(body.model).toEqual({ architecture: 'small_cnn', input_size: 32, trainable: { last_blocks: 2 } });
    expect(body.hyperparameters.epochs).toBe(2);
    expect(body.hyperparameters.step_size).toBeUndefined(); // empty: the default
    expect(body.hyperparameters.early_stopping).toEqual({ metric: 'val_loss', patience: 5 });
    expect(body.augmentation.random_resized_crop).toEqual({ enabled: true, scale: [0.5, 1], ratio: [0.75, 1.333] });
    expect(body.augmentation.rotation).toEqual({ enabled: false, degrees: 15 });
    expect(body.augmentation.normalize).toEqual({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    expect(body).not.toHaveProperty('preview_seed');
    expect(body).not.toHaveProperty('start');
  });

  it('keeps what is not a number as typed, so the schema names it; unticked boxes are false', () => {
    const body = formToBody(validForm({ 'hyperparameters.epochs': 'ten', 'model.choice': 'bb:bb-abcdefgh' })) as Record<string, any>;
    expect(body.hyperparameters.epochs).toBe('ten');
    expect(body.model.backbone_id).toBe('bb-abcdefgh');
    expect(body.hyperparameters.early_stopping).toBeNull();
    expect(body.augmentation.normalize).toBeNull();
    expect(() => formToBody(validForm({ 'model.choice': '' }))).toThrow(/choose/);
  });

  it('maps errors to inputs, from zod issues or from `path: message` texts', () => {
    expect(fieldErrors('x', [{ path: ['hyperparameters', 'lr'], message: 'must be at most 10' }])).toEqual([
      { field: 'hyperparameters.lr', label: 'Learning rate', message: 'must be at most 10' },
    ]);
    expect(fieldErrors("model.input_size: the imported model 'm' takes 224×224 images", undefined)[0]).toMatchObject({ field: 'model.input_size', label: 'Input size' });
    expect(fieldErrors('invalid experiment: model: give exactly one', undefined)[0].field).toBe('model.choice');
    expect(fieldErrors('something else went wrong', undefined)[0]).toMatchObject({ field: '', label: 'Experiment' });
  });
});

describe('models page', () => {
  it.skipIf(!existsSync(BACKBONE))('lists the catalog and imports by server path, escaping the name', async () => {
    const page = await get(s.app, '/models');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<h1>Models</h1>');
    expect(page.body).toContain('id="model-small_cnn"');
    expect(page.body).toContain('id="model-resnet18"');
    expect(page.body).toContain('No imported backbones');
    expect(page.body).toMatch(/<a href="\/models" class="active">/);

    const refused = await hx(s.app, 'POST', '/models/import', { name: 'x', path: '/nonexistent/model.onnx' });
    expect(refused.statusCode).toBe(400);
    expect(refused.headers['hx-retarget']).toBe('#toasts');
    expect(refused.body).toContain('no such file');

    const res = await hx(s.app, 'POST', '/models/import', { name: EVIL, path: BACKBONE });
    expect(res.statusCode).toBe(200);
    expect(res.body.startsWith('<div id="models-list"')).toBe(true);
    expect(res.body).not.toContain('<img src=x');
    expect(res.body).toContain(`<div class="row-title">${EVIL_ESCAPED}</div>`);
    expect(res.body).toContain(`hx-confirm="Delete the imported model “${EVIL_ESCAPED}”?`);
    const [imported] = (await s.app.studio.models.list()).filter((m) => m.kind === 'imported');
    expect(res.body).toContain(`id="model-${imported.id}"`);
    expect((await hx(s.app, 'GET', '/models/list')).body).toContain(imported.id);

    // The experiment form offers it, with its fixed input size.
    const form = await get(s.app, `/projects/${projectId}/experiments/new`);
    expect(form.body).toContain(`value="bb:${imported.id}" data-input-size="${imported.input_size}" data-fixed-size="1"`);

    const del = await hx(s.app, 'DELETE', `/models/${imported.id}`);
    expect(del.statusCode).toBe(200);
    expect(del.body).not.toContain(imported.id);
  });
});

describe('new experiment page', () => {
  it('renders the form with the dataset, its split counts, presets and the catalog, escaped', async () => {
    const res = await get(s.app, `/projects/${projectId}/experiments/new`);
    expect(res.statusCode).toBe(200);
    expect(res.body).not.toContain('<img src=x');
    expect(res.body).toContain(`<option value="${datasetId}" selected>Shapes ${EVIL_ESCAPED} · 30 images</option>`);
    expect(res.body).toContain(`<option value="${split}" selected>${split}</option>`);
    expect(res.body).toMatch(/<span class="badge train plain">train<\/span> <b>\d+<\/b>/);
    expect(res.body).toContain('value="arch:small_cnn" data-input-size="32" data-fixed-size="0" selected');
    for (const p of ['quick', 'balanced', 'thorough']) expect(res.body).toContain(`data-preset="${p}"`);
    expect(res.body).toContain('data-presets="{&quot;quick&quot;');
    expect(res.body).toContain('name="hyperparameters.early_stopping.enabled"');
    expect(res.body).toContain('name="augmentation.color_jitter.hue"');
    expect(res.body).toContain(`<title>New experiment · AI Studio</title>`);
  });

  it('answers the split check for a dataset', async () => {
    const res = await hx(s.app, 'GET', `/projects/${projectId}/experiments/split-check?dataset_id=${datasetId}`);
    expect(res.statusCode).toBe(200);
    expect(res.body.trimStart().startsWith('<div id="split-check"')).toBe(true);
    const split = await s.app.studio.datasets.getSplit(projectId, datasetId, (await s.app.studio.datasets.get(projectId, datasetId)).split_names[0]);
    expect(res.body).toContain(`<span class="badge val plain">val</span> <b>${split.counts.val}</b>`);
  });

  it('previews augmented samples of a training image, and says why it cannot', async () => {
    const q = new URLSearchParams(validForm({ 'augmentation.rotation.enabled': 'on' }));
    const res = await hx(s.app, 'GET', `/projects/${projectId}/experiments/preview?${q}`);
    expect(res.statusCode).toBe(200);
    expect(res.body.match(/<img class="aug-tile" src="data:image\/png;base64,/g)?.length).toBe(8);
    const bad = await hx(s.app, 'GET', `/projects/${projectId}/experiments/preview?${new URLSearchParams(validForm({ 'augmentation.random_resized_crop.scale.0': '2' }))}`);
    expect(bad.statusCode).toBe(200);
    expect(bad.body).toContain('augmentation.random_resized_crop.scale.0: must be at most 1');
    expect(bad.body).not.toContain('<img');
  });

  it('refuses invalid values field by field, beside the form', async () => {
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ 'hyperparameters.lr': '50' }, 'hyperparameters.lr', /at most 10/],
      [{ 'hyperparameters.epochs': '0' }, 'hyperparameters.epochs', /at least 1/],
      [{ 'hyperparameters.batch_size': 'sixteen' }, 'hyperparameters.batch_size', /integer/],
      [{ 'hyperparameters.warmup_epochs': '5' }, 'hyperparameters.warmup_epochs', /less than epochs/],
      [{ 'model.input_size': '8' }, 'model.input_size', /at least 32/],
      [{ 'model.choice': 'arch:no_such_net' }, 'model.choice', /not in the catalog/],
      [{ 'augmentation.horizontal_flip.p': '1.5' }, 'augmentation.horizontal_flip.p', /at most 1/],
      [{ name: '   ' }, 'name', /./],
    ];
    for (const [change, field, message] of cases) {
      const res = await hx(s.app, 'POST', `/projects/${projectId}/experiments`, validForm(change));
      expect(res.statusCode, field).toBe(400);
      expect(res.headers['hx-retarget'], field).toBeUndefined();
      expect(res.body, field).toContain('class="card form-errors"');
      const errors = errorsOf(res.body);
      expect(errors.map((e) => e.field), field).toContain(field);
      expect(errors.find((e) => e.field === field)?.message, field).toMatch(message);
    }
    const unknown = await hx(s.app, 'POST', `/projects/${projectId}/experiments`, validForm({ 'hyperparameters.turbo': '1' }));
    expect(unknown.statusCode).toBe(400);
    expect(errorsOf(unknown.body)[0].message).toMatch(/turbo|unrecognized/i);
    expect(await s.app.studio.experiments.list(projectId)).toEqual([]);
  });
});

describe('training board', () => {
  let expId: string;

  it('shows an empty state before the first experiment', async () => {
    const res = await get(s.app, `/projects/${projectId}/training`);
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('No experiments yet');
    expect(res.body).toContain(`href="/projects/${projectId}/experiments/new"`);
    expect(res.body).toContain(`<title>Training · ${EVIL_ESCAPED} · AI Studio</title>`);
  });

  it('creates an experiment from the form and redirects to it on the board', async () => {
    const res = await hx(
      s.app,
      'POST',
      `/projects/${projectId}/experiments`,
      validForm({ 'model.trainable': 'last', 'hyperparameters.early_stopping.enabled': 'on', 'hyperparameters.early_stopping.metric': 'val_accuracy', 'augmentation.rotation.enabled': 'on', 'augmentation.rotation.degrees': '20' }),
    );
    expect(res.statusCode).toBe(200);
    const [exp] = await s.app.studio.experiments.list(projectId);
    expId = exp.id;
    expect(res.headers['hx-redirect']).toBe(`/projects/${projectId}/training?experiment=${exp.id}`);
    expect(exp.name).toBe(EVIL);
    expect(exp.model).toMatchObject({ architecture: 'small_cnn', input_size: 32, trainable: { last_blocks: 2 } });
    expect(exp.hyperparameters).toMatchObject({ epochs: 2, batch_size: 16, lr: 0.003, seed: 3, early_stopping: { metric: 'val_accuracy', patience: 5 } });
    expect(exp.augmentation.rotation).toEqual({ enabled: true, degrees: 20 });

    const board = await get(s.app, `/projects/${projectId}/training?experiment=${exp.id}`);
    expect(board.statusCode).toBe(200);
    expect(board.body).not.toContain('<img src=x');
    expect(board.body).toContain(`<span class="truncate exp-name">${EVIL_ESCAPED}</span>`);
    expect(board.body).toContain(`hx-confirm="Delete the experiment “${EVIL_ESCAPED}”`);
    expect(board.body).toContain('No runs yet');
    expect(board.body).toContain('Start run');
  });

  it('answers a board swap with the board only, and an unknown selection with 404', async () => {
    const frag = await hx(s.app, 'GET', `/projects/${projectId}/training?experiment=${expId}`, undefined, { 'hx-target': 'training' });
    expect(frag.body.startsWith('<div id="training"')).toBe(true);
    expect(frag.body).not.toContain('<html');
    const list = await hx(s.app, 'GET', `/projects/${projectId}/training/list?experiment=${expId}`);
    expect(list.body.startsWith('<aside class="training-side" id="training-list"')).toBe(true);
    expect((await get(s.app, `/projects/${projectId}/training?experiment=exp-zzzzzzzz`)).statusCode).toBe(404);
    // a selection that names nothing, malformed or not, is the page's 404 (never a pattern in an error)
    const odd = await get(s.app, `/projects/${projectId}/training?experiment=../../etc`);
    expect(odd.statusCode).toBe(404);
    expect(odd.body).not.toContain('must match pattern');
  });

  it('starts a run, shows it live, then its curves, best epoch and config', async () => {
    const res = await hx(s.app, 'POST', `/projects/${projectId}/experiments/${expId}/runs`);
    expect(res.statusCode).toBe(202);
    const [run] = await s.app.studio.runs.list(projectId, expId);
    expect(JSON.parse(String(res.headers['hx-location']))).toEqual({ path: `/projects/${projectId}/training?experiment=${expId}&run=${run.id}`, target: '#training', swap: 'outerHTML' });

    const live = await get(s.app, `/projects/${projectId}/training?experiment=${expId}&run=${run.id}`);
    expect(live.body).toContain('id="run-panel"');
    const settled = (await s.app.studio.runs.get(projectId, expId, run.id)).status;
    if (settled === 'queued' || settled === 'running') {
      expect(live.body).toMatch(/hx-ext="sse" sse-connect="\/projects\/proj-[0-9a-z]{8}\/experiments\/exp-[0-9a-z]{8}\/runs\/run-[0-9a-z]{8}\/live\?last_event_id=\d+" sse-close="end"/);
      expect(live.body).toContain('id="cancel-run"');
    }

    const done = await s.app.studio.runs.wait(projectId, expId, run.id);
    expect(done.status).toBe('succeeded');
    const page = await get(s.app, `/projects/${projectId}/training?experiment=${expId}&run=${run.id}`);
    expect(page.body).toMatch(/<span class="badge succeeded" data-run-status id="run-status-run-[0-9a-z]{8}">succeeded<\/span>/);
    expect(page.body).not.toContain('sse-connect=');
    expect(page.body).not.toContain('id="cancel-run"');
    expect(page.body).not.toContain('id="resume-run"');
    const series = JSON.parse(/data-series="([^"]*)"/.exec(page.body)![1].replaceAll('&quot;', '"'));
    expect(series.map((p: { epoch: number }) => p.epoch)).toEqual([1, 2]);
    expect(page.body).toContain('data-best-metric="val_accuracy"');
    expect(page.body).toContain('<dt>Trains</dt><dd>last 2 blocks</dd>');
    expect(page.body).toContain('<dt>Rotation</dt><dd>±20°</dd>');
    expect(page.body).toMatch(/<dt>last<\/dt><dd>epoch 2 · <span class="mono">[0-9a-f]{12}<\/span><\/dd>/);
    expect(page.body).toContain('Start another run');

    // Finished runs cannot be cancelled or resumed: a toast says why, nothing changes.
    const cancel = await hx(s.app, 'POST', `/projects/${projectId}/experiments/${expId}/runs/${run.id}/cancel`);
    expect(cancel.statusCode).toBe(409);
    expect(cancel.headers['hx-retarget']).toBe('#toasts');
    const resume = await hx(s.app, 'POST', `/projects/${projectId}/experiments/${expId}/runs/${run.id}/resume`);
    expect(resume.statusCode).toBe(409);
  });

  it('shows the queue: one run trains, the next waits with its position; both can be cancelled', async () => {
    const created = await hx(s.app, 'POST', `/projects/${projectId}/experiments`, validForm({ name: 'Long', 'hyperparameters.epochs': '200' }));
    expect(created.statusCode).toBe(200);
    const long = (await s.app.studio.experiments.list(projectId)).find((e) => e.name === 'Long')!;
    const first = await s.app.studio.runs.start(projectId, long.id);
    const second = await s.app.studio.runs.start(projectId, long.id);
    const board = await get(s.app, `/projects/${projectId}/training?experiment=${long.id}&run=${second.run.id}`);
    expect(board.body).toContain('<h2>Queue</h2>');
    expect(board.body).toMatch(new RegExp(`id="row-${second.run.id}"[\\s\\S]*?<span class="badge queued" id="row-status-${second.run.id}">queued · #2</span>`));
    expect(board.body).toContain('waiting</span>');
    // The left column polls itself while something is queued or training.
    expect(board.body).toMatch(/id="training-list" hx-get="[^"]+" hx-trigger="every 3s, run-settled from:body"/);
    expect(board.body).toContain('id="cancel-run"');
    expect(board.body).toMatch(/title="Delete experiment"[^>]* disabled/);

    const c2 = await hx(s.app, 'POST', `/projects/${projectId}/experiments/${long.id}/runs/${second.run.id}/cancel`);
    expect(c2.statusCode).toBe(200);
    const c1 = await hx(s.app, 'POST', `/projects/${projectId}/experiments/${long.id}/runs/${first.run.id}/cancel`);
    expect(c1.statusCode).toBe(200);
    const after = await get(s.app, `/projects/${projectId}/training?experiment=${long.id}&run=${second.run.id}`);
    expect(after.body).not.toContain('<h2>Queue</h2>');
    expect(after.body).toMatch(/<span class="badge cancelled" data-run-status id="run-status-run-[0-9a-z]{8}">cancelled<\/span>/);
    expect(after.body).toContain('id="resume-run"');
    expect(after.body).not.toContain('hx-trigger="every 3s');
    await hx(s.app, 'DELETE', `/projects/${projectId}/experiments/${long.id}`);
  });

  it('deletes the experiment and goes back to the board', async () => {
    const res = await hx(s.app, 'DELETE', `/projects/${projectId}/experiments/${expId}`);
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(String(res.headers['hx-location'])).path).toBe(`/projects/${projectId}/training`);
    expect(await s.app.studio.experiments.list(projectId)).toEqual([]);
  });
});
