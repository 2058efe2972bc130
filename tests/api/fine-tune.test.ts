import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, makeStudio, parseSse, type TestStudio } from './helpers.ts';
import { GENTLE_AUGMENTATION, makeShapesProject, waitForRun, type RunView, type ShapesProject } from './runs-fixtures.ts';

const TINY = path.resolve(import.meta.dirname, '../../../shared/fixtures/onnx-interop/tiny_cnn_train_opset13.onnx');

interface Experiment {
  id: string;
  hyperparameters: { epochs: number; freeze_backbone_epochs: number; backbone_lr_multiplier: number };
}

let s: TestStudio;
let p: ShapesProject;
let base: string;
let backboneId: string;

beforeAll(async () => {
  s = await makeStudio();
  p = await makeShapesProject(s.app, s.dir, { perClass: 6, size: 32 });
  base = `/api/projects/${p.pid}/experiments`;
  const bb = await call<{ id: string }>(s.app, 'POST', '/api/models/import', { path: TINY, name: 'tiny pretrained' });
  expect(bb.status, JSON.stringify(bb.body)).toBe(201);
  backboneId = bb.body.data.id;
}, 60_000);
afterAll(async () => s?.close());

const create = (model: Record<string, unknown>, hyperparameters: Record<string, unknown> = {}) =>
  call<Experiment>(s.app, 'POST', base, { name: 'ft', dataset_id: p.datasetId, split_name: 'main', model, hyperparameters, augmentation: GENTLE_AUGMENTATION });

describe('fine-tuning settings', () => {
  it('a pretrained model gets the recipe by default: the head alone for a third of the epochs, then the backbone at 0.1 × the rate', async () => {
    const pre = await create({ backbone_id: backboneId }, { epochs: 9 });
    expect(pre.status, JSON.stringify(pre.body)).toBe(201);
    expect(pre.body.data.hyperparameters).toMatchObject({ freeze_backbone_epochs: 3, backbone_lr_multiplier: 0.1 });
    // A model from random weights trains everything alike; what a person sets wins.
    const scratch = await create({ architecture: 'small_cnn' }, { epochs: 9 });
    expect(scratch.body.data.hyperparameters).toMatchObject({ freeze_backbone_epochs: 0, backbone_lr_multiplier: 1 });
    const chosen = await create({ backbone_id: backboneId }, { epochs: 9, freeze_backbone_epochs: 0, backbone_lr_multiplier: 1 });
    expect(chosen.body.data.hyperparameters).toMatchObject({ freeze_backbone_epochs: 0, backbone_lr_multiplier: 1 });
    // Only the head trains: nothing to freeze by default.
    const head = await create({ backbone_id: backboneId, trainable: 'head' }, { epochs: 9 });
    expect(head.body.data.hyperparameters).toMatchObject({ freeze_backbone_epochs: 0 });
  });

  it.each([
    [{ epochs: 4, freeze_backbone_epochs: 4 }, {}, 'hyperparameters.freeze_backbone_epochs: must be less than epochs (4)'],
    [{ backbone_lr_multiplier: 0 }, {}, 'hyperparameters.backbone_lr_multiplier'],
    [{ backbone_lr_multiplier: 2 }, {}, 'hyperparameters.backbone_lr_multiplier'],
    [{ freeze_backbone_epochs: 2 }, { trainable: 'head' }, 'there is no backbone to unfreeze'],
  ])('refuses %j (model %j): %s', async (hp, model, message) => {
    const res = await create({ backbone_id: backboneId, ...model }, hp);
    expect([res.status, res.body.error?.code]).toEqual([400, 'VALIDATION_ERROR']);
    expect(res.body.error.message).toContain(message);
  });

  it('a run freezes the backbone, then unfreezes it at the set epoch, and says so', async () => {
    const exp = await create({ backbone_id: backboneId }, { epochs: 3, batch_size: 8, lr: 3e-3, freeze_backbone_epochs: 1, backbone_lr_multiplier: 0.2 });
    expect(exp.status, JSON.stringify(exp.body)).toBe(201);
    const runs = `${base}/${exp.body.data.id}/runs`;
    const started = await call<{ run: { id: string } }>(s.app, 'POST', runs);
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    const url = `${runs}/${started.body.data.run.id}`;
    const run = await waitForRun(s.app, url, 150_000);
    expect(run.status, JSON.stringify((run as RunView & { error: unknown }).error)).toBe('succeeded');
    expect(run.config).toMatchObject({ hyperparameters: { freeze_backbone_epochs: 1, backbone_lr_multiplier: 0.2 } });
    const logs = parseSse((await s.app.inject({ method: 'GET', url: `${url}/events` })).body)
      .filter((e) => e.event === 'log')
      .map((e) => JSON.stringify(e.data));
    expect(logs.some((l) => l.includes('the backbone is frozen for 1 epoch'))).toBe(true);
    expect(logs.some((l) => l.includes('epoch 2: the backbone is unfrozen and learns at 0.2 × the learning rate'))).toBe(true);
  }, 180_000);
});
