import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.ts';
import type { EvaluationService } from '../../src/core/evaluation.ts';
import { count, get, hx } from './helpers.ts';
import { heldEvaluationStudio, trainedExperiment, type HeldEvaluationStudio, type TrainedExperiment } from './evaluation-fixtures.ts';

/**
 * The evaluation page while a re-evaluation is queued or running: the last good metrics and
 * results stay on the page, dimmed and labelled as the previous evaluation with the new one's
 * progress, until the new ones replace them. The evaluation thread is held (after one progress
 * report) so the in-between state is there to look at, not a race to catch.
 */
let dir: string;
let s: HeldEvaluationStudio;
let app: FastifyInstance;
let evaluation: EvaluationService;
let t: TrainedExperiment;
let boardUrl: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-eval-prev-'));
  s = await heldEvaluationStudio(loadSettings({ STUDIO_WORKSPACE: path.join(dir, 'ws'), STUDIO_EXAMPLE: 'off' }));
  app = s.app;
  evaluation = app.studio.evaluation;
  t = await trainedExperiment(app, { name: 'Shapes CNN' });
  boardUrl = `/projects/${t.projectId}/evaluation?experiment=${t.experimentId}`;
  await evaluation.start(t.projectId, t.experimentId, { run_id: t.runId, checkpoint: 'last', subsets: ['test'] });
  const done = await evaluation.wait(t.projectId, t.experimentId);
  if (done.status !== 'succeeded') throw new Error(`evaluation ${done.status}: ${JSON.stringify(done.error)}`);
}, 120_000);

afterAll(async () => {
  await s?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const board = () => hx(app, 'GET', boardUrl, undefined, { 'hx-target': 'evaluation' });
const accuracyTile = (html: string) => /Accuracy<\/div><div class="value">([^<]+)</.exec(html)?.[1];

describe('re-evaluating keeps the previous evaluation on the page', () => {
  it('shows nothing marked previous when no evaluation runs', async () => {
    const res = await board();
    expect(res.body).toContain('id="eval-metrics"');
    expect(res.body).not.toContain('data-previous');
    expect(res.body).not.toContain('Previous evaluation');
    expect(res.body).not.toContain('id="eval-progress"');
  });

  it('while queued or running: the previous metrics and results, dimmed and labelled with the progress; then the new ones', async () => {
    const before = await evaluation.get(t.projectId, t.experimentId);
    const beforeAccuracy = `${(before.aggregate!.accuracy * 100).toFixed(1)}%`;
    s.hold();
    const started = await hx(app, 'POST', `/projects/${t.projectId}/experiments/${t.experimentId}/evaluation`, {
      checkpoint: `${t.runId}:best`,
      'subset.test': 'on',
      'subset.val': 'on',
      tta: 'on',
      batch_size: '4',
    });
    expect(started.statusCode).toBe(202);

    // Queued (the job not begun) or running (held at the gate): either way the previous stays.
    await expect.poll(async () => (await evaluation.get(t.projectId, t.experimentId)).status).toMatch(/^(queued|running)$/);
    const during = await board();
    expect(during.body).toContain('id="eval-progress"');
    expect(during.body).toMatch(/id="eval-start" disabled/);
    expect(during.body).toContain('id="eval-previous-hint"');
    expect(during.body).toMatch(/<section class="card eval-section eval-stale" id="eval-metrics" data-previous/);
    expect(during.body).toMatch(/<section class="card eval-section eval-stale" id="eval-images" data-previous/);
    expect(count(during.body, 'data-eval-previous')).toBe(2);
    expect(accuracyTile(during.body)).toBe(beforeAccuracy);
    expect(during.body).toContain(`of <b data-eval-total>${before.evaluated}</b> results`);
    expect(count(during.body, 'data-cm-cell')).toBe(before.aggregate!.confusion_matrix.labels.length ** 2);
    // The previous files stay downloadable; stopping is offered, not a plain reset.
    expect(during.body).toContain('id="eval-csv"');
    expect(during.body).toContain('Stop and reset');

    // Once the job reported its 3 of 10 images, the label carries the percentage (a page load too).
    await expect.poll(async () => (await evaluation.get(t.projectId, t.experimentId)).status).toBe('running');
    await expect.poll(async () => (await get(app, boardUrl)).body).toMatch(new RegExp(`<b>Previous evaluation</b> \\(Run \\d+ · ${before.config!.checkpoint} · [^)]+\\) — re-evaluating… <b data-eval-pct>30%</b>`));
    // The service says what the evaluation on view evaluated, and when.
    const live = await evaluation.get(t.projectId, t.experimentId);
    expect(live.previous).toEqual({ config: before.config, finished_at: before.finished_at });
    const page = await get(app, boardUrl);
    expect(page.body).toMatch(/^<!doctype html>/);
    expect(page.body).toContain('data-eval-previous');

    // The grid's filters and a result's details still answer from the previous evaluation.
    const grid = await hx(app, 'GET', `${boardUrl}&only=correct`, undefined, { 'hx-target': 'eval-results' });
    expect(grid.statusCode).toBe(200);
    expect(grid.body.startsWith('<div id="eval-results"')).toBe(true);
    const tile = /id="result-(img-[0-9a-z]+)"/.exec(grid.body);
    if (tile) expect((await hx(app, 'GET', `/projects/${t.projectId}/experiments/${t.experimentId}/evaluation/images/${tile[1]}`)).statusCode).toBe(200);

    s.release();
    const done = await evaluation.wait(t.projectId, t.experimentId);
    expect(done.status).toBe('succeeded');
    const after = await board();
    expect(after.body).not.toContain('data-previous');
    expect(after.body).not.toContain('Previous evaluation');
    expect(after.body).not.toContain('id="eval-progress"');
    expect(after.body).toContain('flip TTA on · batch 4');
    expect(after.body).toContain(`of <b data-eval-total>${done.evaluated}</b> results`);
    expect(done.evaluated).toBeGreaterThan(before.evaluated);
    expect(accuracyTile(after.body)).toBe(`${(done.aggregate!.accuracy * 100).toFixed(1)}%`);
  }, 60_000);

  it('a first evaluation has nothing previous to show: only its progress', async () => {
    await evaluation.reset(t.projectId, t.experimentId);
    s.hold();
    await evaluation.start(t.projectId, t.experimentId, { run_id: t.runId, checkpoint: 'last', subsets: ['test'] });
    await expect.poll(async () => (await evaluation.get(t.projectId, t.experimentId)).status).toMatch(/^(queued|running)$/);
    const during = await board();
    expect(during.body).toContain('id="eval-progress"');
    expect(during.body).not.toContain('id="eval-metrics"');
    expect(during.body).not.toContain('id="eval-images"');
    expect(during.body).not.toContain('data-previous');
    expect(during.body).not.toContain('id="eval-previous-hint"');
    s.release();
    expect((await evaluation.wait(t.projectId, t.experimentId)).status).toBe('succeeded');
    expect((await board()).body).toContain('id="eval-metrics"');
  }, 60_000);
});
