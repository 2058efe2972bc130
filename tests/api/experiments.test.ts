import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, makeStudio, type TestStudio } from './helpers.ts';
import { makeShapesProject, type ShapesProject } from './runs-fixtures.ts';

interface Experiment {
  id: string;
  name: string;
  model: { architecture?: string; backbone_id?: string; input_size: number; trainable: unknown };
  hyperparameters: Record<string, unknown> & { lr: number; epochs: number; optimizer: string; weight_decay: number };
  augmentation: { normalize: { mean: number[]; std: number[] }; rotation: { enabled: boolean } };
}

let s: TestStudio;
let p: ShapesProject;
let base: string;

beforeAll(async () => {
  s = await makeStudio();
  p = await makeShapesProject(s.app, s.dir, { perClass: 4, size: 32 });
  base = `/api/projects/${p.pid}/experiments`;
}, 60_000);
afterAll(async () => s?.close());

const valid = () => ({ name: 'exp', dataset_id: p.datasetId, split_name: 'main', model: { architecture: 'small_cnn' } });

describe('experiments', () => {
  it('fills every default, the model-dependent ones from the model', async () => {
    const res = await call<Experiment>(s.app, 'POST', base, valid());
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const e = res.body.data;
    expect(e.id).toMatch(/^exp-[0-9a-z]{8}$/);
    expect(e.model).toEqual({ architecture: 'small_cnn', input_size: 32, trainable: 'all' });
    expect(e.hyperparameters).toMatchObject({ epochs: 10, batch_size: 32, optimizer: 'adamw', lr: 1e-3, weight_decay: 0.01, scheduler: 'cosine', seed: 0 });
    expect(e.augmentation.normalize).toEqual({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    // SGD's own defaults when the optimizer is SGD and lr is left out.
    const sgd = await call<Experiment>(s.app, 'POST', base, { ...valid(), hyperparameters: { optimizer: 'sgd' } });
    expect(sgd.body.data.hyperparameters).toMatchObject({ lr: 0.01, weight_decay: 1e-4, momentum: 0.9 });
  });

  it.each([
    [{ lr: 0 }, 'hyperparameters.lr'],
    [{ lr: 50 }, 'hyperparameters.lr'],
    [{ epochs: 0 }, 'hyperparameters.epochs'],
    [{ epochs: 2.5 }, 'hyperparameters.epochs'],
    [{ batch_size: 0 }, 'hyperparameters.batch_size'],
    [{ batch_size: 4096 }, 'hyperparameters.batch_size'],
    [{ optimizer: 'rmsprop' }, 'hyperparameters.optimizer'],
    [{ scheduler: 'exponential' }, 'hyperparameters.scheduler'],
    [{ momentum: 1.5 }, 'hyperparameters.momentum'],
    [{ weight_decay: -1 }, 'hyperparameters.weight_decay'],
    [{ label_smoothing: 1 }, 'hyperparameters.label_smoothing'],
    [{ warmup_epochs: 5, epochs: 5 }, 'hyperparameters.warmup_epochs'],
    [{ early_stopping: { metric: 'val_f1', patience: 3 } }, 'hyperparameters.early_stopping.metric'],
    [{ early_stopping: { patience: 0 } }, 'hyperparameters.early_stopping.patience'],
    [{ seed: -1 }, 'hyperparameters.seed'],
    [{ class_weights: 'inverse' }, 'hyperparameters.class_weights'],
    [{ learning_rate: 0.1 }, 'learning_rate'],
    [{ lr: '0.1' }, 'hyperparameters.lr'],
  ])('refuses hyperparameters %j, naming %s', async (hp, field) => {
    const res = await call(s.app, 'POST', base, { ...valid(), hyperparameters: hp });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_ERROR');
    expect(res.body.error.message).toContain(field);
  });

  it.each([
    [{ model: { architecture: 'vgg99' } }, "model.architecture: 'vgg99' is not in the catalog"],
    [{ model: { architecture: 'small_cnn', backbone_id: 'bb-00000000' } }, 'exactly one of'],
    [{ model: { backbone_id: 'bb-00000000' } }, 'model.backbone_id: no imported model'],
    [{ model: { architecture: 'small_cnn', input_size: 8 } }, 'model.input_size'],
    [{ model: { architecture: 'small_cnn', trainable: 'some' } }, 'model.trainable'],
    [{ split_name: 'nope' }, "split_name: the dataset has no split 'nope'"],
    [{ dataset_id: 'ds-00000000' }, "dataset_id: no dataset 'ds-00000000'"],
    [{ augmentation: { rotation: { enabled: true, degrees: 400 } } }, 'augmentation.rotation.degrees'],
    [{ augmentation: { random_resized_crop: { scale: [0.9, 0.2] } } }, 'min must not exceed max'],
  ])('refuses %j with a clear message', async (patch, message) => {
    const res = await call(s.app, 'POST', base, { ...valid(), ...patch });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain(message);
  });

  it('lists, gets, patches (deep merge, validated) and deletes', async () => {
    const id = (await call<Experiment>(s.app, 'POST', base, { ...valid(), name: 'to patch' })).body.data.id;
    expect((await call<Experiment[]>(s.app, 'GET', base)).body.data.some((e) => e.id === id)).toBe(true);
    const patched = await call<Experiment>(s.app, 'PATCH', `${base}/${id}`, { hyperparameters: { lr: 0.02 }, augmentation: { rotation: { enabled: true } } });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body.data.hyperparameters.lr).toBe(0.02);
    expect(patched.body.data.hyperparameters.epochs).toBe(10);
    expect(patched.body.data.augmentation.rotation.enabled).toBe(true);
    const bad = await call(s.app, 'PATCH', `${base}/${id}`, { hyperparameters: { batch_size: -3 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('hyperparameters.batch_size');
    expect((await call<Experiment>(s.app, 'GET', `${base}/${id}`)).body.data.hyperparameters.lr).toBe(0.02);
    expect((await call(s.app, 'DELETE', `${base}/${id}`)).status).toBe(200);
    expect((await call(s.app, 'GET', `${base}/${id}`)).body.error.code).toBe('NOT_FOUND');
    expect((await call(s.app, 'GET', `${base}/exp-zzzzzzzz`)).status).toBe(404);
    expect((await call(s.app, 'GET', `/api/projects/proj-00000000/experiments`)).status).toBe(404);
  });
});

describe('trainable last blocks', () => {
  it('is bounded by a catalog model’s blocks, as by an imported one’s', async () => {
    const res = await call(s.app, 'POST', base, { ...valid(), model: { architecture: 'small_cnn', trainable: { last_blocks: 50 } } });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/^model\.trainable\.last_blocks: the model has \d+ blocks \(the head included\)$/);
  });
});
