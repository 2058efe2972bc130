import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MultiLabelAggregate, MultiLabelItem } from '../../src/tasks/multilabel/index.ts';
import type { RegressionAggregate, RegressionItem } from '../../src/tasks/regression/index.ts';
import { call, makeStudio, type TestStudio } from '../api/helpers.ts';
import { ML_CLASSES, REG_TARGETS, trainedTaskRun, type TaskRun } from './task-runs.ts';

/**
 * Evaluation of multi-label and regression runs through the API: the task's aggregate and
 * records (stored, served, validated), the task's filters and sorts, the 400s for another task's
 * filters, and the task's CSV.
 */

let s: TestStudio;
let ml: TaskRun;
let reg: TaskRun;

interface View<A> {
  task: string;
  status: string;
  aggregate: A | null;
  evaluated: number;
}
type Page<I> = { items: I[]; total: number };

beforeAll(async () => {
  s = await makeStudio();
  ml = await trainedTaskRun(s.app, s.dir, 'multilabel', { evaluate: true });
  reg = await trainedTaskRun(s.app, s.dir, 'regression', { evaluate: true });
}, 240_000);
afterAll(async () => s?.close());

const bad = async (url: string) => {
  const res = await call(s.app, 'GET', url);
  return [res.status, res.body.error?.code, res.body.error?.message as string];
};

describe('multi-label evaluation API', () => {
  let all: MultiLabelItem[];
  beforeAll(async () => {
    all = (await call<Page<MultiLabelItem>>(s.app, 'GET', `${ml.evalUrl}/results?page_size=500&sort=file`)).body.data.items;
  });

  it('answers the task and its aggregate, stored with evaluation.json naming the task', async () => {
    const v = (await call<View<MultiLabelAggregate>>(s.app, 'GET', ml.evalUrl)).body.data;
    expect([v.task, v.status]).toEqual(['multilabel', 'succeeded']);
    const a = v.aggregate!;
    expect(Object.keys(a).sort()).toEqual(['curves', 'exact_match', 'hamming_loss', 'label_cardinality', 'macro', 'map', 'micro', 'per_class', 'threshold'].sort());
    expect(Object.keys(a.micro).sort()).toEqual(['f1', 'precision', 'recall']);
    expect(Object.keys(a.per_class).sort()).toEqual([...ML_CLASSES].sort());
    for (const c of Object.values(a.per_class)) expect(Object.keys(c).sort()).toEqual(['ap', 'f1', 'precision', 'recall', 'support', 'threshold']);
    expect(a.threshold).toBe(0.5);
    expect(v.evaluated).toBe(all.length);
    const dir = path.join(s.settings.workspace, 'projects', ml.pid, 'experiments', ml.expId, 'evaluation');
    expect(JSON.parse(await fs.readFile(path.join(dir, 'evaluation.json'), 'utf8')).task).toBe('multilabel');
    expect(JSON.parse(await fs.readFile(path.join(dir, 'aggregate.json'), 'utf8')).metrics).toEqual(a);
    const json = await s.app.inject({ method: 'GET', url: `${ml.evalUrl}/metrics.json` });
    expect(json.json()).toEqual(a);
  });

  it('answers records with true and predicted labels, scores, missed and extra', async () => {
    expect(all.length).toBeGreaterThan(0);
    for (const r of all) {
      expect(Object.keys(r).sort()).toEqual(['correct', 'extra', 'file', 'image_id', 'labels', 'missed', 'predicted_labels', 'scores', 'subset'].sort());
      expect(Object.keys(r.scores).sort()).toEqual([...ML_CLASSES].sort());
      expect(r.predicted_labels).toEqual(ML_CLASSES.filter((c) => r.scores[c] >= 0.5).sort((x, y) => r.scores[y] - r.scores[x]));
      expect(r.missed).toEqual(r.labels.filter((l) => !r.predicted_labels.includes(l)));
      expect(r.extra).toEqual(r.predicted_labels.filter((l) => !r.labels.includes(l)));
      expect(r.correct).toBe(r.missed.length === 0 && r.extra.length === 0);
    }
    const one = await call<MultiLabelItem>(s.app, 'GET', `${ml.evalUrl}/results/${all[0].image_id}`);
    expect(one.body.data).toEqual(all[0]);
  });

  it('filters by label, missed label, extra label, exact match and subset; sorts most errors first', async () => {
    const q = async (qs: string) => (await call<Page<MultiLabelItem>>(s.app, 'GET', `${ml.evalUrl}/results?page_size=500&${qs}`)).body.data;
    for (const c of ML_CLASSES) {
      expect((await q(`label=${c}`)).total).toBe(all.filter((r) => r.labels.includes(c)).length);
      expect((await q(`missed=${c}`)).items.every((r) => r.missed.includes(c))).toBe(true);
      expect((await q(`missed=${c}`)).total).toBe(all.filter((r) => r.missed.includes(c)).length);
      expect((await q(`extra=${c}`)).total).toBe(all.filter((r) => r.extra.includes(c)).length);
    }
    expect((await q('only=correct')).total).toBe(all.filter((r) => r.correct).length);
    expect((await q('only=misclassified')).total).toBe(all.filter((r) => !r.correct).length);
    expect((await q('subset=test')).items.every((r) => r.subset === 'test')).toBe(true);
    const errors = (await q('')).items.map((r) => r.missed.length + r.extra.length);
    expect(errors).toEqual([...errors].sort((a, b) => b - a));
    const byFile = (await q('sort=file')).items.map((r) => r.file);
    expect(byFile).toEqual([...byFile].sort());
  });

  it("refuses another task's filters and bad values, naming them", async () => {
    for (const qs of ['min_conf=0.5', 'predicted=circle', 'sort=abs_error_desc', 'sort=confidence_desc', 'only=sometimes', 'page=0']) {
      const [status, code, message] = await bad(`${ml.evalUrl}/results?${qs}`);
      expect([status, code], qs).toEqual([400, 'VALIDATION_ERROR']);
      expect(message, qs).toContain(qs.split('=')[0]);
    }
  });

  it('exports a CSV with the label lists and one score column per label', async () => {
    const res = await s.app.inject({ method: 'GET', url: `${ml.evalUrl}/results.csv` });
    expect(res.statusCode).toBe(200);
    const lines = res.body.trimEnd().split('\r\n');
    expect(lines[0]).toBe(`image_id,file,subset,labels,predicted_labels,missed,extra,correct,${ML_CLASSES.map((c) => `score_${c}`).join(',')}`);
    expect(lines).toHaveLength(all.length + 1);
    const row = lines.find((l) => l.startsWith(`${all[0].image_id},`))!.split(',');
    expect(row[3]).toBe(all[0].labels.join(';'));
    expect(Number(row[8])).toBeCloseTo(all[0].scores[ML_CLASSES[0]], 6);
  });
});

describe('regression evaluation API', () => {
  let all: RegressionItem[];
  beforeAll(async () => {
    all = (await call<Page<RegressionItem>>(s.app, 'GET', `${reg.evalUrl}/results?page_size=500&sort=file`)).body.data.items;
  });

  it('answers the aggregate over the targets (the mean of per-target numbers), scatter and residual histogram', async () => {
    const v = (await call<View<RegressionAggregate>>(s.app, 'GET', reg.evalUrl)).body.data;
    expect([v.task, v.status]).toEqual(['regression', 'succeeded']);
    const a = v.aggregate!;
    expect(Object.keys(a).sort()).toEqual(['mae', 'max_error', 'median_ae', 'per_target', 'r2', 'residual_histogram', 'rmse', 'scatter'].sort());
    expect(Object.keys(a.per_target).sort()).toEqual([...REG_TARGETS].sort());
    expect(a.mae).toBeCloseTo((a.per_target.radius.mae! + a.per_target.x.mae!) / 2, 9);
    expect(a.scatter.radius.true).toHaveLength(all.length);
    expect(a.residual_histogram.x.counts.reduce((p, c) => p + c, 0)).toBe(all.length);
    // the MAE is the mean absolute error of the records
    const mae = all.reduce((p, r) => p + Math.abs(r.error.radius), 0) / all.length;
    expect(a.per_target.radius.mae).toBeCloseTo(mae, 5);
  });

  it('answers records with target, predicted, error and abs_error, worst first by default', async () => {
    for (const r of all) {
      expect(Object.keys(r).sort()).toEqual(['abs_error', 'error', 'file', 'image_id', 'predicted', 'subset', 'target']);
      for (const t of REG_TARGETS) expect(r.error[t]).toBeCloseTo(r.predicted[t] - r.target[t], 9);
      expect(r.abs_error).toBeCloseTo(Math.max(...REG_TARGETS.map((t) => Math.abs(r.error[t]))), 9);
    }
    const q = async (qs: string) => (await call<Page<RegressionItem>>(s.app, 'GET', `${reg.evalUrl}/results?page_size=500&${qs}`)).body.data.items.map((r) => r.abs_error);
    const desc = await q('');
    expect(desc).toEqual([...desc].sort((a, b) => b - a));
    const asc = await q('sort=abs_error_asc');
    expect(asc).toEqual([...asc].sort((a, b) => a - b));
    expect((await call<Page<RegressionItem>>(s.app, 'GET', `${reg.evalUrl}/results?subset=val&page_size=500`)).body.data.items.every((r) => r.subset === 'val')).toBe(true);
    const two = (await call<Page<RegressionItem>>(s.app, 'GET', `${reg.evalUrl}/results?page=2&page_size=3&sort=file`)).body.data;
    expect([two.total, two.items.map((r) => r.image_id)]).toEqual([all.length, all.slice(3, 6).map((r) => r.image_id)]);
  });

  it("refuses another task's filters, naming them", async () => {
    for (const qs of ['label=radius', 'missed=radius', 'only=correct', 'sort=mistakes_first', 'max_conf=1']) {
      const [status, code, message] = await bad(`${reg.evalUrl}/results?${qs}`);
      expect([status, code], qs).toEqual([400, 'VALIDATION_ERROR']);
      expect(message, qs).toContain(qs.split('=')[0]);
    }
  });

  it('exports a CSV with target, predicted and error columns per target', async () => {
    const res = await s.app.inject({ method: 'GET', url: `${reg.evalUrl}/results.csv` });
    const lines = res.body.trimEnd().split('\r\n');
    expect(lines[0]).toBe('image_id,file,subset,target_radius,predicted_radius,error_radius,target_x,predicted_x,error_x,abs_error');
    expect(lines).toHaveLength(all.length + 1);
    const r = all[0];
    const row = lines.find((l) => l.startsWith(`${r.image_id},`))!.split(',').slice(3).map(Number);
    expect(row).toEqual([r.target.radius, r.predicted.radius, r.error.radius, r.target.x, r.predicted.x, r.error.x, r.abs_error]);
  });
});
