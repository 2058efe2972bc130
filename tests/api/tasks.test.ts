import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import classification from '../../src/tasks/classification/index.ts';
import { registerTask } from '../../src/tasks/index.ts';
import { ExperimentCreateSchema } from '../../src/schemas/experiment.ts';
import path from 'node:path';
import { call, makeStudio, type TestStudio } from './helpers.ts';
import { writeShapesFolder } from './runs-fixtures.ts';

interface TaskRow {
  name: string;
  title: string;
  sources: string[];
  losses: string[];
  default_loss: string;
  epoch_metrics: { key: string; higher_is_better: boolean }[];
  evaluation_metrics: string[];
}

let s: TestStudio;
beforeAll(async () => {
  s = await makeStudio();
});
afterAll(async () => s?.close());

describe('GET /api/tasks', () => {
  it('lists the registered tasks with their losses, metrics and sources', async () => {
    const res = await call<TaskRow[]>(s.app, 'GET', '/api/tasks');
    expect(res.status).toBe(200);
    const byName = Object.fromEntries(res.body.data.map((t) => [t.name, t]));
    expect(Object.keys(byName).slice(0, 3)).toEqual(['classification', 'multilabel', 'regression']);
    expect(byName.classification).toMatchObject({ losses: ['cross_entropy'], default_loss: 'cross_entropy', sources: ['folder', 'zip', 'csv', 'coco', 'yolo'] });
    expect(byName.classification.epoch_metrics.map((m) => m.key)).toEqual(['val_accuracy']);
    expect(byName.multilabel).toMatchObject({ losses: ['bce'], sources: ['csv', 'coco', 'yolo'] });
    expect(byName.multilabel.epoch_metrics.map((m) => m.key)).toEqual(['val_map', 'val_micro_f1']);
    expect(byName.multilabel.evaluation_metrics).toContain('map');
    expect(byName.regression).toMatchObject({ losses: ['mse', 'l1', 'huber'], default_loss: 'mse', sources: ['csv'] });
    expect(byName.regression.epoch_metrics).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'val_mae', higher_is_better: false })]));
    expect(byName.regression.evaluation_metrics).toEqual(expect.arrayContaining(['mae', 'rmse', 'r2', 'median_ae', 'max_error']));
  });

  it('answers one task, and NOT_FOUND for a name that is not registered', async () => {
    expect((await call<TaskRow>(s.app, 'GET', '/api/tasks/regression')).body.data.name).toBe('regression');
    const missing = await call(s.app, 'GET', '/api/tasks/keypoints');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('NOT_FOUND');
  });

  it('a task registered in-process appears in the list and in the schemas that name a task', async () => {
    const before = ExperimentCreateSchema.safeParse({ name: 'x', dataset_id: 'ds-00000000', split_name: 'main', model: { architecture: 'small_cnn' }, task: 'toy_task' });
    expect(before.success).toBe(false);
    expect(before.error?.issues[0]?.message).toBe('must be one of "classification", "multilabel", "regression"');
    registerTask({ ...classification, name: 'toy_task', title: 'Toy task' });
    const after = ExperimentCreateSchema.safeParse({ name: 'x', dataset_id: 'ds-00000000', split_name: 'main', model: { architecture: 'small_cnn' }, task: 'toy_task' });
    expect(after.success).toBe(true);
    const list = await call<TaskRow[]>(s.app, 'GET', '/api/tasks');
    expect(list.body.data.map((t) => t.name)).toContain('toy_task');
    // A dataset of the new task can be created through the API.
    const proj = await call<{ id: string }>(s.app, 'POST', '/api/projects', { name: 'toy' });
    const folder = path.join(s.dir, 'toys');
    await writeShapesFolder(folder, 2, 32);
    const ds = await call<{ dataset: { id: string; task: string } }>(s.app, 'POST', `/api/projects/${proj.body.data.id}/datasets`, { name: 'toys', task: 'toy_task', source: { kind: 'folder', path: folder } });
    expect(ds.status, JSON.stringify(ds.body)).toBe(202);
    expect(ds.body.data.dataset.task).toBe('toy_task');
    // And the new-dataset form offers it.
    const page = await s.app.inject({ method: 'GET', url: `/projects/${proj.body.data.id}` });
    expect(page.body).toContain('value="toy_task"');
    expect(() => registerTask({ ...classification, name: 'toy_task' })).toThrow(/already registered/);
  });
});
