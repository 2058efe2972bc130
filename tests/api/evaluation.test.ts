import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AggregateMetrics } from '../../src/evaluation/metrics/schema.ts';
import type { ResultRecord } from '../../src/evaluation/results.ts';
import { call, makeStudio, parseSse, waitForJob, type TestStudio } from './helpers.ts';
import { makeShapesProject, waitForRun, type RunView, type ShapesProject } from './runs-fixtures.ts';

/**
 * Evaluation end to end through the API: a small_cnn trained for a few epochs through the runs API,
 * then evaluated, queried, exported, re-evaluated over broken images, and reset.
 */

interface EvaluationBody {
  status: string;
  config: { run_id: string; checkpoint: string; subsets: string[]; tta: boolean; batch_size: number; classes: string[] } | null;
  aggregate: AggregateMetrics | null;
  job_id: string | null;
  error?: { code: string; message: string };
  last_attempt?: { status: string; config: { run_id: string; checkpoint: string; subsets: string[] }; error: { code: string; message: string }; finished_at: string };
  problems: Array<{ image_id: string; file: string; reason: string }>;
  problems_total: number;
  evaluated: number;
}

let s: TestStudio;
let p: ShapesProject;
let expId: string;
let runId: string;
let evalUrl: string;
let expDir: string;
let images: Array<{ id: string; file: string; label: string | null; split: string[] }>;
/** The dataset's classes, in class-index order (the model's). */
let CLASSES: string[];
let lastEpoch: RunView['metrics'][number];

const subsetOf = (img: { split: string[] }) => img.split[0];

async function evaluate(body: Record<string, unknown>): Promise<EvaluationBody> {
  const started = await call<{ job: { id: string; kind: string } }>(s.app, 'POST', evalUrl, body);
  expect(started.status, JSON.stringify(started.body)).toBe(202);
  expect(started.body.data.job.kind).toBe('evaluate');
  const job = await waitForJob(s.app, started.body.data.job.id, 60_000);
  expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
  return (await call<EvaluationBody>(s.app, 'GET', evalUrl)).body.data;
}

beforeAll(async () => {
  s = await makeStudio();
  p = await makeShapesProject(s.app, s.dir, { perClass: 24, size: 32, ratios: { train: 0.5, val: 0.25, test: 0.25 } });
  const created = await call<{ id: string }>(s.app, 'POST', `/api/projects/${p.pid}/experiments`, {
    name: 'eval cnn',
    dataset_id: p.datasetId,
    split_name: 'main',
    model: { architecture: 'small_cnn', input_size: 32 },
    hyperparameters: { epochs: 10, batch_size: 8, optimizer: 'adamw', lr: 1e-2, weight_decay: 1e-4, scheduler: 'constant', seed: 1 },
    // no augmentation: a few dozen steps should learn the clean shapes well
    augmentation: { random_resized_crop: { enabled: false }, horizontal_flip: { enabled: false } },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  expId = created.body.data.id;
  const runs = `/api/projects/${p.pid}/experiments/${expId}/runs`;
  const started = await call<{ run: { id: string } }>(s.app, 'POST', runs);
  runId = started.body.data.run.id;
  const run = await waitForRun(s.app, `${runs}/${runId}`);
  expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
  lastEpoch = run.metrics.at(-1)!;
  evalUrl = `/api/projects/${p.pid}/experiments/${expId}/evaluation`;
  expDir = path.join(s.settings.workspace, 'projects', p.pid, 'experiments', expId);
  const ds = await s.app.studio.store.getDataset(p.pid, p.datasetId);
  images = ds.images;
  CLASSES = ds.classes;
}, 180_000);
afterAll(async () => s?.close());

describe('evaluation API: before any evaluation', () => {
  it('lists the run checkpoints that exist', async () => {
    const res = await call<Array<{ run_id: string; checkpoint: string; epoch: number; metric?: string; value?: number }>>(s.app, 'GET', `/api/projects/${p.pid}/experiments/${expId}/checkpoints`);
    expect(res.status).toBe(200);
    expect(res.body.data.map((c) => [c.run_id, c.checkpoint])).toEqual([[runId, 'best'], [runId, 'last']]);
    expect(res.body.data[0].metric).toBe('val_accuracy');
    expect(res.body.data[1].epoch).toBe(10);
  });

  it('has no evaluation yet: status none, results and CSV are 404', async () => {
    const got = await call<EvaluationBody>(s.app, 'GET', evalUrl);
    expect(got.body.data).toMatchObject({ status: 'none', config: null, aggregate: null, job_id: null, problems: [] });
    expect((await call(s.app, 'GET', `${evalUrl}/results`)).status).toBe(404);
    expect((await s.app.inject({ method: 'GET', url: `${evalUrl}/results.csv` })).statusCode).toBe(404);
    expect((await s.app.inject({ method: 'GET', url: `${evalUrl}/metrics.json` })).statusCode).toBe(404);
  });

  it('refuses bad requests with stable codes', async () => {
    const good = { run_id: runId, checkpoint: 'best', subsets: ['test'] };
    const cases: Array<[unknown, number, string]> = [
      [{ ...good, run_id: 'run-zzzzzzzz' }, 404, 'NOT_FOUND'],
      [{ ...good, run_id: 'nonsense' }, 400, 'VALIDATION_ERROR'],
      [{ ...good, checkpoint: 'middle' }, 400, 'VALIDATION_ERROR'],
      [{ ...good, subsets: ['bogus'] }, 400, 'VALIDATION_ERROR'],
      [{ ...good, subsets: ['none'] }, 400, 'VALIDATION_ERROR'],
      [{ ...good, subsets: [] }, 400, 'VALIDATION_ERROR'],
      [{ ...good, subsets: ['test', 'test'] }, 400, 'VALIDATION_ERROR'],
      [{ ...good, batch_size: 0 }, 400, 'VALIDATION_ERROR'],
      [{ ...good, tta: 'yes' }, 400, 'VALIDATION_ERROR'],
      [{ ...good, extra: 1 }, 400, 'VALIDATION_ERROR'],
    ];
    for (const [body, status, code] of cases) {
      const res = await call(s.app, 'POST', evalUrl, body);
      expect([res.status, res.body.error?.code], JSON.stringify(body)).toEqual([status, code]);
    }
    const otherExp = await call(s.app, 'POST', `/api/projects/${p.pid}/experiments/exp-zzzzzzzz/evaluation`, good);
    expect([otherExp.status, otherExp.body.error.code]).toEqual([404, 'NOT_FOUND']);
    expect((await call(s.app, 'GET', `/api/projects/${p.pid}/experiments/exp-zzzzzzzz/evaluation`)).status).toBe(404);
    expect((await call(s.app, 'GET', `/api/projects/${p.pid}/experiments/exp-zzzzzzzz/checkpoints`)).status).toBe(404);
  });
});

describe('evaluation API: agreement with training', () => {
  it("the last checkpoint on the val subset reproduces the last epoch's validation accuracy and loss", async () => {
    const ev = await evaluate({ run_id: runId, checkpoint: 'last', subsets: ['val'] });
    expect(ev.evaluated).toBe(images.filter((i) => subsetOf(i) === 'val').length);
    expect(ev.aggregate!.accuracy).toBeCloseTo(lastEpoch.val_accuracy!, 10);
    // log loss clips probabilities at 1e-15; the training loop's is exact: equal for a sane model
    expect(ev.aggregate!.log_loss).toBeCloseTo(lastEpoch.val_loss!, 4);
  }, 60_000);
});

describe('evaluation API: a full evaluation', () => {
  let ev: EvaluationBody;
  let all: ResultRecord[];
  const pooled = () => images.filter((i) => ['test', 'val'].includes(subsetOf(i)));

  beforeAll(async () => {
    ev = await evaluate({ run_id: runId, checkpoint: 'best', subsets: ['test', 'val'], batch_size: 5 });
    all = (await call<{ items: ResultRecord[]; total: number }>(s.app, 'GET', `${evalUrl}/results?page_size=500&sort=file`)).body.data.items;
  }, 120_000);

  it('reports status, config and the aggregate in the contract shape', () => {
    expect(ev.status).toBe('succeeded');
    expect(ev.config).toMatchObject({ run_id: runId, checkpoint: 'best', subsets: ['test', 'val'], tta: false, batch_size: 5, classes: CLASSES });
    expect(ev.evaluated).toBe(pooled().length);
    expect(ev.problems).toEqual([]);
    const a = ev.aggregate!;
    expect(Object.keys(a.per_class).sort()).toEqual([...CLASSES].sort());
    expect(a.top_k['3']).toBeGreaterThanOrEqual(a.accuracy);
    expect(a.top_k['5']).toBeUndefined(); // 4 classes
    expect(a.confusion_matrix.labels).toEqual(CLASSES);
    expect(a.confusion_matrix.matrix.flat().reduce((x, y) => x + y, 0)).toBe(ev.evaluated);
    for (const k of ['precision', 'recall', 'f1'] as const) {
      expect(a.macro[k]).toBeGreaterThanOrEqual(0);
      expect(a.weighted[k]).toBeLessThanOrEqual(1);
    }
    expect(a.log_loss).toBeGreaterThan(0);
    expect(a.ece).toBeGreaterThanOrEqual(0);
    expect(a.roc_auc.macro).not.toBeNull();
    // not a degenerate model that predicts one class for everything
    expect(a.confusion_matrix.matrix.map((_, k) => a.confusion_matrix.matrix.reduce((x, row) => x + row[k], 0)).filter((n) => n > 0).length).toBeGreaterThan(1);
  });

  it('tags every image with its subset; metrics match a recomputation from results.jsonl', async () => {
    const text = await fs.readFile(path.join(expDir, 'evaluation', 'results.jsonl'), 'utf8');
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as ResultRecord);
    expect(lines).toHaveLength(ev.evaluated);
    const bySubset = new Map(pooled().map((i) => [i.id, subsetOf(i)]));
    const m = CLASSES.map(() => CLASSES.map(() => 0));
    for (const r of lines) {
      expect(r.subset).toBe(bySubset.get(r.image_id));
      expect(r.label).toBe(images.find((i) => i.id === r.image_id)?.label);
      m[CLASSES.indexOf(r.label)][CLASSES.indexOf(r.predicted)] += 1;
    }
    expect(ev.aggregate!.confusion_matrix.matrix).toEqual(m);
    expect(ev.aggregate!.accuracy).toBeCloseTo(lines.filter((r) => r.correct).length / lines.length, 12);
    const recall = CLASSES.map((_, k) => m[k][k] / m[k].reduce((x, y) => x + y, 0));
    expect(ev.aggregate!.balanced_accuracy).toBeCloseTo(recall.reduce((x, y) => x + y, 0) / recall.length, 12);
    const agg = JSON.parse(await fs.readFile(path.join(expDir, 'evaluation', 'aggregate.json'), 'utf8')) as { schema_version: number; metrics: unknown };
    expect(agg.schema_version).toBe(1);
    expect(agg.metrics).toEqual(ev.aggregate);
    const stored = JSON.parse(await fs.readFile(path.join(expDir, 'evaluation', 'evaluation.json'), 'utf8')) as { schema_version: number; status: string };
    expect(stored).toMatchObject({ schema_version: 1, status: 'succeeded' });
  });

  it('filters, sorts and pages the per-image results', async () => {
    const q = async (qs: string) => (await call<{ items: ResultRecord[]; total: number }>(s.app, 'GET', `${evalUrl}/results?${qs}`)).body.data;
    expect(all).toHaveLength(ev.evaluated);
    const pages: ResultRecord[] = [];
    for (let page = 1; page <= Math.ceil(all.length / 4); page++) {
      const got = await q(`page=${page}&page_size=4&sort=file`);
      expect(got.total).toBe(all.length);
      pages.push(...got.items);
    }
    expect(pages.map((r) => r.image_id)).toEqual(all.map((r) => r.image_id));
    expect((await q(`page=99&page_size=4`)).items).toEqual([]);

    const wrong = await q('only=misclassified&page_size=500');
    expect(wrong.total).toBe(all.filter((r) => !r.correct).length);
    expect(wrong.items.every((r) => !r.correct)).toBe(true);
    const circles = await q('label=circle&page_size=500');
    expect(circles.total).toBe(all.filter((r) => r.label === 'circle').length);
    const test = await q('subset=test&page_size=500');
    expect(test.total).toBe(all.filter((r) => r.subset === 'test').length);
    expect(test.total).toBeGreaterThan(0);
    // a confusion-matrix cell: true/predicted pair
    const cell = await q(`label=${CLASSES[1]}&predicted=${CLASSES[2]}&page_size=500`);
    expect(cell.total).toBe(ev.aggregate!.confusion_matrix.matrix[1][2]);
    expect(cell.items.every((r) => r.label === CLASSES[1] && r.predicted === CLASSES[2])).toBe(true);
    const desc = (await q('sort=confidence_desc&page_size=500')).items.map((r) => r.confidence);
    expect(desc).toEqual([...desc].sort((a, b) => b - a));
    const ranged = await q('min_conf=0.5&max_conf=0.9&page_size=500');
    expect(ranged.items.every((r) => r.confidence >= 0.5 && r.confidence <= 0.9)).toBe(true);
    // default: mistakes first, the most confident mistake on top
    const first = (await q('')).items;
    const nWrong = wrong.total;
    expect(first.slice(0, Math.min(nWrong, first.length)).every((r) => !r.correct)).toBe(true);

    for (const bad of ['page=0', 'page_size=501', 'only=sometimes', 'subset=none', 'min_conf=0.9&max_conf=0.1', 'sort=random']) {
      const res = await call(s.app, 'GET', `${evalUrl}/results?${bad}`);
      expect([res.status, res.body.error.code], bad).toEqual([400, 'VALIDATION_ERROR']);
    }
  });

  it('opens one image with its top predictions', async () => {
    const one = await call<ResultRecord>(s.app, 'GET', `${evalUrl}/results/${all[0].image_id}`);
    expect(one.body.data).toEqual(all[0]);
    expect(one.body.data.top_k).toHaveLength(4);
    expect((await call(s.app, 'GET', `${evalUrl}/results/img-zzzzzzzz`)).status).toBe(404);
  });

  it('exports the results as CSV and the metrics as JSON', async () => {
    const res = await s.app.inject({ method: 'GET', url: `${evalUrl}/results.csv` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    expect(String(res.headers['content-disposition'])).toMatch(/attachment/);
    const rows = res.body.trimEnd().split('\r\n');
    expect(rows[0]).toBe('image_id,file,subset,label,predicted,confidence,correct,top1_label,top1_score,top2_label,top2_score,top3_label,top3_score,top4_label,top4_score');
    expect(rows).toHaveLength(all.length + 1);
    const ids = rows.slice(1).map((r) => r.split(',')[0]).sort();
    expect(ids).toEqual(all.map((r) => r.image_id).sort());
    const json = await s.app.inject({ method: 'GET', url: `${evalUrl}/metrics.json` });
    expect(json.statusCode).toBe(200);
    expect(json.json()).toEqual(ev.aggregate);
  });

  it('streams the job progress over SSE', async () => {
    const sse = await s.app.inject({ method: 'GET', url: `/api/jobs/${ev.job_id}/events` });
    const events = parseSse(sse.body);
    expect(events.some((e) => e.event === 'progress')).toBe(true);
    expect(events.at(-1)?.event).toBe('done');
  });
});

describe('evaluation API: a failed or pending re-evaluation keeps the last good one', () => {
  let before: EvaluationBody;
  let resultsBefore: ResultRecord[];
  let csvBefore: string;
  const evalNames = async () => (await fs.readdir(expDir)).filter((n) => n.includes('evaluation')).sort();
  const stagedFile = (status: string, jobId: string) => {
    const now = new Date().toISOString();
    return {
      schema_version: 1,
      status,
      config: { run_id: runId, checkpoint: 'last', subsets: ['train'], tta: false, batch_size: 8, dataset_id: p.datasetId, split_name: 'main', model: 'small_cnn', input_size: 32, classes: CLASSES },
      job_id: jobId,
      problems: [], problems_total: 0, evaluated: 0, error: null, created_at: now, finished_at: null, updated_at: now,
    };
  };
  /** What a client can read of the evaluation: must stay the previous one. */
  async function expectPreviousServed(): Promise<void> {
    const res = await call<{ items: ResultRecord[]; total: number }>(s.app, 'GET', `${evalUrl}/results?page_size=500&sort=file`);
    expect(res.status).toBe(200);
    expect(res.body.data.items).toEqual(resultsBefore);
    const one = await call<ResultRecord>(s.app, 'GET', `${evalUrl}/results/${resultsBefore[0].image_id}`);
    expect(one.body.data).toEqual(resultsBefore[0]);
    const csv = await s.app.inject({ method: 'GET', url: `${evalUrl}/results.csv` });
    expect([csv.statusCode, csv.body]).toEqual([200, csvBefore]);
    const json = await s.app.inject({ method: 'GET', url: `${evalUrl}/metrics.json` });
    expect(json.statusCode).toBe(200);
    expect(json.json()).toEqual(before.aggregate);
  }

  beforeAll(async () => {
    before = (await call<EvaluationBody>(s.app, 'GET', evalUrl)).body.data;
    expect(before.status).toBe('succeeded');
    resultsBefore = (await call<{ items: ResultRecord[] }>(s.app, 'GET', `${evalUrl}/results?page_size=500&sort=file`)).body.data.items;
    csvBefore = (await s.app.inject({ method: 'GET', url: `${evalUrl}/results.csv` })).body;
  });

  it('a re-evaluation that fails leaves the previous evaluation in place, with the failure beside it', async () => {
    const ckpt = path.join(expDir, 'runs', runId, 'checkpoints', 'last.ckpt');
    const saved = await fs.readFile(ckpt);
    await fs.writeFile(ckpt, Buffer.from('not a checkpoint'));
    try {
      const started = await call<{ job: { id: string } }>(s.app, 'POST', evalUrl, { run_id: runId, checkpoint: 'last', subsets: ['val'] });
      expect(started.status, JSON.stringify(started.body)).toBe(202);
      expect((await waitForJob(s.app, started.body.data.job.id, 60_000)).status).toBe('failed');
      await s.app.studio.evaluation.wait(p.pid, expId);
    } finally {
      await fs.writeFile(ckpt, saved);
    }
    const after = (await call<EvaluationBody>(s.app, 'GET', evalUrl)).body.data;
    expect(after).toMatchObject({ status: 'succeeded', config: before.config, aggregate: before.aggregate, job_id: before.job_id, evaluated: before.evaluated });
    expect(after.error).toBeUndefined();
    expect(after.last_attempt).toMatchObject({ status: 'failed', config: { run_id: runId, checkpoint: 'last', subsets: ['val'] } });
    expect(after.last_attempt!.error.code).toMatch(/^[A-Z_]+$/);
    expect(Date.parse(after.last_attempt!.finished_at)).toBeGreaterThan(0);
    await expectPreviousServed();
    expect(await evalNames()).toEqual(['evaluation']);
  }, 60_000);

  it('so does one the studio was stopped during (found on the next read)', async () => {
    await fs.mkdir(path.join(expDir, '.evaluation-next'), { recursive: true });
    await fs.writeFile(path.join(expDir, '.evaluation-next', 'evaluation.json'), JSON.stringify(stagedFile('running', 'job-zzzzzzzz')));
    await fs.writeFile(path.join(expDir, '.evaluation-next', 'results.jsonl'), '{"half a line');
    const after = (await call<EvaluationBody>(s.app, 'GET', evalUrl)).body.data;
    expect(after).toMatchObject({ status: 'succeeded', aggregate: before.aggregate, last_attempt: { status: 'failed', error: { code: 'INTERRUPTED' }, config: { subsets: ['train'] } } });
    expect(await evalNames()).toEqual(['evaluation']);
    await expectPreviousServed();
  });

  it('while a re-evaluation is queued or running, results, CSV and metrics.json still serve the previous one', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const job = await s.app.studio.jobs.submit({ kind: 'evaluate', project_id: p.pid, run: async () => gate });
    try {
      await fs.mkdir(path.join(expDir, '.evaluation-next'), { recursive: true });
      await fs.writeFile(path.join(expDir, '.evaluation-next', 'evaluation.json'), JSON.stringify(stagedFile('running', job.id)));
      const got = (await call<EvaluationBody>(s.app, 'GET', evalUrl)).body.data;
      expect(got).toMatchObject({ status: 'running', job_id: job.id, aggregate: null });
      await expectPreviousServed();
      expect(await evalNames()).toEqual(['.evaluation-next', 'evaluation']);
    } finally {
      release();
      await s.app.studio.jobs.wait(job.id);
      await fs.rm(path.join(expDir, '.evaluation-next'), { recursive: true, force: true });
    }
  });

  it('refuses unknown or over-long results query parameters', async () => {
    for (const qs of ['bogus=1', 'sort=file&pge=2', `label=${'x'.repeat(201)}`, `predicted=${'x'.repeat(201)}`]) {
      const res = await call(s.app, 'GET', `${evalUrl}/results?${qs}`);
      expect([res.status, res.body.error?.code], qs).toEqual([400, 'VALIDATION_ERROR']);
    }
    const ok = await call<{ total: number }>(s.app, 'GET', `${evalUrl}/results?label=${'x'.repeat(200)}`);
    expect([ok.status, ok.body.data.total]).toEqual([200, 0]);
  });
});

describe('evaluation API: broken images, replacement, reset', () => {
  it('reports corrupt and missing images, evaluates the rest, and replaces the previous evaluation', async () => {
    const test = images.filter((i) => subsetOf(i) === 'test');
    const [corrupt, missing] = test;
    const dsDir = path.join(s.settings.workspace, 'projects', p.pid, 'datasets', p.datasetId);
    await fs.writeFile(path.join(dsDir, corrupt.file), Buffer.from('not an image at all'));
    await fs.rm(path.join(dsDir, missing.file));
    const ev = await evaluate({ run_id: runId, checkpoint: 'last', subsets: ['test'], tta: true });
    expect(ev.status).toBe('succeeded');
    expect(ev.config).toMatchObject({ checkpoint: 'last', subsets: ['test'], tta: true, batch_size: 32 });
    expect(ev.evaluated).toBe(test.length - 2);
    expect(ev.problems_total).toBe(2);
    expect(ev.problems.map((x) => x.image_id).sort()).toEqual([corrupt.id, missing.id].sort());
    expect(ev.problems.find((x) => x.image_id === missing.id)).toMatchObject({ file: missing.file, reason: 'the image file is missing' });
    const res = (await call<{ items: ResultRecord[]; total: number }>(s.app, 'GET', `${evalUrl}/results?page_size=500`)).body.data;
    expect(res.total).toBe(test.length - 2);
    expect(res.items.every((r) => r.subset === 'test')).toBe(true);
    // the swap left one evaluation folder and no staging or aside folders behind
    expect((await fs.readdir(expDir)).filter((n) => n.includes('evaluation')).sort()).toEqual(['evaluation']);
  }, 120_000);

  it('refuses a second evaluation while one runs, and reset stops it and deletes everything', async () => {
    const body = { run_id: runId, checkpoint: 'best', subsets: ['val', 'train'] };
    // two starts at once: exactly one gets the slot
    const both = await Promise.all([call<{ job: { id: string } }>(s.app, 'POST', evalUrl, body), call<{ job: { id: string } }>(s.app, 'POST', evalUrl, body)]);
    expect(both.map((r) => r.status).sort()).toEqual([202, 409]);
    const first = both.find((r) => r.status === 202)!;
    const third = await call(s.app, 'POST', evalUrl, body);
    expect([third.status, third.body.error.code]).toEqual([409, 'CONFLICT']);
    const running = (await call<EvaluationBody>(s.app, 'GET', evalUrl)).body.data;
    expect(['queued', 'running']).toContain(running.status);
    expect(running.aggregate).toBeNull();

    const reset = await call<{ deleted: boolean }>(s.app, 'DELETE', evalUrl);
    expect(reset.body.data).toEqual({ deleted: true });
    expect(['cancelled', 'succeeded']).toContain((await waitForJob(s.app, first.body.data.job.id)).status);
    expect((await call<EvaluationBody>(s.app, 'GET', evalUrl)).body.data.status).toBe('none');
    expect((await fs.readdir(expDir)).filter((n) => n.includes('evaluation'))).toEqual([]);
    expect((await call(s.app, 'GET', `${evalUrl}/results`)).status).toBe(404);
    expect((await call<{ deleted: boolean }>(s.app, 'DELETE', evalUrl)).body.data).toEqual({ deleted: false });
  }, 60_000);

  it('records an evaluation whose job died with the studio as failed (interrupted), on the next read', async () => {
    const now = new Date().toISOString();
    const staged = {
      schema_version: 1,
      status: 'running',
      config: { run_id: runId, checkpoint: 'best', subsets: ['val'], tta: false, batch_size: 8, dataset_id: p.datasetId, split_name: 'main', model: 'small_cnn', input_size: 32, classes: CLASSES },
      job_id: 'job-zzzzzzzz', // no such job: the process that ran it is gone
      problems: [], problems_total: 0, evaluated: 0, error: null, created_at: now, finished_at: null, updated_at: now,
    };
    await fs.mkdir(path.join(expDir, '.evaluation-next'), { recursive: true });
    await fs.writeFile(path.join(expDir, '.evaluation-next', 'evaluation.json'), JSON.stringify(staged));
    await fs.writeFile(path.join(expDir, '.evaluation-next', 'results.jsonl'), '{"half a line');
    await fs.mkdir(path.join(expDir, '.evaluation-old.0123456789ab'));
    const got = (await call<EvaluationBody>(s.app, 'GET', evalUrl)).body.data;
    expect(got).toMatchObject({ status: 'failed', error: { code: 'INTERRUPTED' }, aggregate: null, config: { subsets: ['val'] } });
    expect((await fs.readdir(expDir)).filter((n) => n.includes('evaluation'))).toEqual(['evaluation']);
    expect(await fs.readdir(path.join(expDir, 'evaluation'))).toEqual(['evaluation.json']);
    expect((await call(s.app, 'GET', `${evalUrl}/results`)).status).toBe(404);
    expect((await call<{ deleted: boolean }>(s.app, 'DELETE', evalUrl)).body.data).toEqual({ deleted: true });
  });

  it('offers only checkpoints whose file exists, and refuses a missing one', async () => {
    const ckpt = path.join(expDir, 'runs', runId, 'checkpoints', 'last.ckpt');
    await fs.rm(ckpt);
    const list = await call<Array<{ checkpoint: string }>>(s.app, 'GET', `/api/projects/${p.pid}/experiments/${expId}/checkpoints`);
    expect(list.body.data.map((c) => c.checkpoint)).toEqual(['best']);
    const res = await call(s.app, 'POST', evalUrl, { run_id: runId, checkpoint: 'last', subsets: ['val'] });
    expect([res.status, res.body.error.code]).toEqual([404, 'NOT_FOUND']);
  });
});
