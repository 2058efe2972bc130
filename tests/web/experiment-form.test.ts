import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, waitForJob } from '../api/helpers.ts';
import { makeShapesProject, writeShapesFolder, type ShapesProject } from '../api/runs-fixtures.ts';
import { get, hx, makePageStudio, type PageStudio } from './helpers.ts';

/**
 * The new-experiment form's client token (a fresh one per rendering; a resubmitted form lands on
 * the experiment and run the first submission made) and its choice of a second dataset as the
 * validation or test images, through app.inject().
 */

let s: PageStudio;
let p: ShapesProject;
let heldOut: string;

/** A complete, valid form as the page posts it (small: one epoch of small_cnn at 32 px). */
function form(extra: Record<string, string> = {}): Record<string, string> {
  return {
    name: 'Form experiment',
    description: '',
    dataset_id: p.datasetId,
    split_name: 'main',
    'model.choice': 'arch:small_cnn',
    'model.input_size': '32',
    'model.trainable': 'all',
    'model.last_blocks': '2',
    'hyperparameters.epochs': '1',
    'hyperparameters.batch_size': '8',
    'hyperparameters.seed': '0',
    'hyperparameters.optimizer': 'adamw',
    'hyperparameters.lr': '0.001',
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
    'augmentation.horizontal_flip.p': '0.5',
    'augmentation.rotation.degrees': '15',
    'augmentation.color_jitter.brightness': '0.2',
    'augmentation.color_jitter.contrast': '0.2',
    'augmentation.color_jitter.saturation': '0.2',
    'augmentation.color_jitter.hue': '0.02',
    'augmentation.grayscale.p': '0.1',
    'augmentation.normalize.mode': 'model',
    preview_seed: '0',
    start: '0',
    ...extra,
  };
}

const tokenOf = (html: string): string => /<input type="hidden" name="client_token" value="([^"]+)">/.exec(html)?.[1] ?? '';

async function importFolder(name: string, src: string, task = 'classification'): Promise<string> {
  const started = await call<{ dataset: { id: string }; job: { id: string } }>(s.app, 'POST', `/api/projects/${p.pid}/datasets`, { name, task, source: { kind: 'folder', path: src } });
  expect(started.status, JSON.stringify(started.body)).toBe(202);
  expect((await waitForJob(s.app, started.body.data.job.id, 60_000)).status).toBe('succeeded');
  return started.body.data.dataset.id;
}

beforeAll(async () => {
  s = await makePageStudio();
  p = await makeShapesProject(s.app, s.dir, { perClass: 4, size: 32 });
  const src = path.join(s.dir, 'held-out');
  await writeShapesFolder(src, 2, 32, 9);
  heldOut = await importFolder('held-out', src);
}, 120_000);
afterAll(async () => s?.close());

describe('the form\'s client token', () => {
  it('carries a fresh token in every rendering of the form', async () => {
    const a = tokenOf((await get(s.app, `/projects/${p.pid}/experiments/new`)).body);
    const b = tokenOf((await get(s.app, `/projects/${p.pid}/experiments/new`)).body);
    expect(a).toMatch(/^[A-Za-z0-9_-]{16,128}$/);
    expect(b).toMatch(/^[A-Za-z0-9_-]{16,128}$/);
    expect(a).not.toBe(b);
  });

  it('a resubmitted form lands on the experiment and the run the first submission made', async () => {
    const token = tokenOf((await get(s.app, `/projects/${p.pid}/experiments/new`)).body);
    const body = form({ name: 'Twice', client_token: token, start: '1' });
    const first = await hx(s.app, 'POST', `/projects/${p.pid}/experiments`, body);
    expect(first.statusCode, first.body).toBe(200);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const [exp] = (await s.app.studio.experiments.list(p.pid)).filter((e) => e.name === 'Twice');
    const [run] = await s.app.studio.runs.list(p.pid, exp.id);
    expect(first.headers['hx-redirect']).toBe(`/projects/${p.pid}/training?experiment=${exp.id}&run=${run.id}`);

    const again = await hx(s.app, 'POST', `/projects/${p.pid}/experiments`, body);
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.headers['hx-redirect']).toBe(first.headers['hx-redirect']);
    expect((await s.app.studio.experiments.list(p.pid)).filter((e) => e.name === 'Twice')).toHaveLength(1);
    expect(await s.app.studio.runs.list(p.pid, exp.id)).toHaveLength(1);
    await s.app.studio.runs.wait(p.pid, exp.id, run.id);

    // Back, change a value, submit again with the same token: refused beside the form, nothing made.
    const changed = await hx(s.app, 'POST', `/projects/${p.pid}/experiments`, { ...body, 'hyperparameters.epochs': '3' });
    expect(changed.statusCode).toBe(409);
    expect(changed.headers['hx-retarget']).toBeUndefined();
    expect(changed.body).toContain('class="card form-errors"');
    expect(changed.body).toContain('This form already created an experiment with other values');
    expect((await s.app.studio.experiments.list(p.pid)).filter((e) => e.name === 'Twice')).toHaveLength(1);
  }, 120_000);

  it('a form without a token (an old page) still creates each time', async () => {
    const body = form({ name: 'Tokenless' });
    expect((await hx(s.app, 'POST', `/projects/${p.pid}/experiments`, body)).statusCode).toBe(200);
    expect((await hx(s.app, 'POST', `/projects/${p.pid}/experiments`, body)).statusCode).toBe(200);
    expect((await s.app.studio.experiments.list(p.pid)).filter((e) => e.name === 'Tokenless')).toHaveLength(2);
  });
});

describe('validation and test images from another dataset', () => {
  it('offers the other ready datasets of the task under the split, the split\'s subset first', async () => {
    const page = await get(s.app, `/projects/${p.pid}/experiments/new`);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<span>Validation images</span>');
    expect(page.body).toContain('<span>Test images</span>');
    const val = /<select class="input" name="val_dataset_id"[^>]*>([\s\S]*?)<\/select>/.exec(page.body)?.[1] ?? '';
    expect(val).toMatch(/<option value="" selected>The split's val subset · \d+ images<\/option>/);
    expect(val).toContain(`<option value="${heldOut}">Dataset held-out · 8 images</option>`);
    expect(val).not.toContain(`value="${p.datasetId}"`);
    expect(page.body).toContain("the split's val images are not used for validation");
  });

  it('keeps the choice through the split check, and drops one that no longer fits', async () => {
    const q = new URLSearchParams({ dataset_id: p.datasetId, split_name: 'main', val_dataset_id: heldOut, test_dataset_id: '' });
    const res = await hx(s.app, 'GET', `/projects/${p.pid}/experiments/split-check?${q}`);
    expect(res.statusCode).toBe(200);
    const val = /name="val_dataset_id"[^>]*>([\s\S]*?)<\/select>/.exec(res.body)?.[1] ?? '';
    expect(val).toContain(`<option value="${heldOut}" selected>`);
    const test = /name="test_dataset_id"[^>]*>([\s\S]*?)<\/select>/.exec(res.body)?.[1] ?? '';
    expect(test).toMatch(/<option value="" selected>The split's test subset/);
    // the training dataset itself is no choice: the split's subset is kept
    const self = await hx(s.app, 'GET', `/projects/${p.pid}/experiments/split-check?${new URLSearchParams({ dataset_id: p.datasetId, split_name: 'main', val_dataset_id: p.datasetId })}`);
    expect(/name="val_dataset_id"[^>]*>([\s\S]*?)<\/select>/.exec(self.body)?.[1]).toMatch(/<option value="" selected>/);
  });

  it('creates an experiment that validates on the chosen dataset, and the board says so', async () => {
    const res = await hx(s.app, 'POST', `/projects/${p.pid}/experiments`, form({ name: 'Held-out val', val_dataset_id: heldOut, test_dataset_id: '' }));
    expect(res.statusCode, res.body).toBe(200);
    const exp = (await s.app.studio.experiments.list(p.pid)).find((e) => e.name === 'Held-out val')!;
    expect(exp.val_dataset_id).toBe(heldOut);
    expect(exp.test_dataset_id).toBeNull();
    const board = await get(s.app, `/projects/${p.pid}/training?experiment=${exp.id}`);
    expect(board.body).toContain('Trains on shapes, split main · validates on dataset held-out · tests on split main&#39;s test subset');
    // a refused choice lands beside its field
    const bad = await hx(s.app, 'POST', `/projects/${p.pid}/experiments`, form({ name: 'Bad val', val_dataset_id: 'ds-zzzzzzzz' }));
    expect(bad.statusCode).toBe(404);
    expect(bad.headers['hx-retarget']).toBeUndefined();
    expect(bad.body).toContain('class="card form-errors"');
    expect(bad.body).toContain('Validation images');
    expect(bad.body).toContain("no dataset &#39;ds-zzzzzzzz&#39; in this project");
  });
});

describe('fine-tuning fields', () => {
  it('shows them empty (the recipe by default), and posts what a person types', async () => {
    const page = await get(s.app, `/projects/${p.pid}/experiments/new`);
    expect(page.body).toMatch(/<input class="input" name="hyperparameters.freeze_backbone_epochs" type="number" min="0" max="1000" step="1" placeholder="auto: a third when pretrained">/);
    expect(page.body).toContain('name="hyperparameters.backbone_lr_multiplier"');
    const empty = await hx(s.app, 'POST', `/projects/${p.pid}/experiments`, form({ name: 'FT default', 'hyperparameters.epochs': '6', 'hyperparameters.freeze_backbone_epochs': '', 'hyperparameters.backbone_lr_multiplier': '' }));
    expect(empty.statusCode, empty.body).toBe(200);
    const [byDefault] = (await s.app.studio.experiments.list(p.pid)).filter((e) => e.name === 'FT default');
    // small_cnn starts from random weights: everything trains alike.
    expect(byDefault.hyperparameters).toMatchObject({ freeze_backbone_epochs: 0, backbone_lr_multiplier: 1 });
    const typed = await hx(s.app, 'POST', `/projects/${p.pid}/experiments`, form({ name: 'FT typed', 'hyperparameters.epochs': '6', 'hyperparameters.freeze_backbone_epochs': '2', 'hyperparameters.backbone_lr_multiplier': '0.25' }));
    expect(typed.statusCode, typed.body).toBe(200);
    const [chosen] = (await s.app.studio.experiments.list(p.pid)).filter((e) => e.name === 'FT typed');
    expect(chosen.hyperparameters).toMatchObject({ freeze_backbone_epochs: 2, backbone_lr_multiplier: 0.25 });
    // Too many frozen epochs: refused beside the field, in words.
    const bad = await hx(s.app, 'POST', `/projects/${p.pid}/experiments`, form({ name: 'FT bad', 'hyperparameters.epochs': '2', 'hyperparameters.freeze_backbone_epochs': '2' }));
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('Freeze the backbone');
    expect(bad.body).toContain('must be less than epochs (2)');
  });
});
