import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadSettings } from '../../src/config.ts';
import type { MultiLabelItem } from '../../src/tasks/multilabel/index.ts';
import type { RegressionItem } from '../../src/tasks/regression/index.ts';
import { ML_CLASSES, trainedTaskRun, type TaskRun } from '../evaluation/task-runs.ts';

/**
 * The evaluation page of a multi-label and a regression run: the task's board (its headline
 * numbers, per-class / per-target table, charts), its grid filters and order, the detail of one
 * result — rendered (app.inject), then in a real browser (chromium via playwright-core), where the
 * Chart.js charts draw and a screenshot at 1280×800 lands in tmp/screenshots/.
 */
const CHROMIUM = '/usr/bin/chromium';
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = path.join(REPO, 'tmp', 'screenshots');

let dir: string;
let app: FastifyInstance;
let ml: TaskRun;
let reg: TaskRun;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-eval-tasks-'));
  app = await buildApp(loadSettings({ STUDIO_WORKSPACE: path.join(dir, 'ws'), STUDIO_EXAMPLE: 'off' }));
  await app.ready();
  ml = await trainedTaskRun(app, dir, 'multilabel', { evaluate: true });
  reg = await trainedTaskRun(app, dir, 'regression', { evaluate: true });
}, 240_000);
afterAll(async () => {
  await app?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const page = (t: TaskRun, qs = '') => `/projects/${t.pid}/evaluation?experiment=${t.expId}${qs}`;
const get = (url: string, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url, headers });
const count = (html: string, s: string) => html.split(s).length - 1;

describe('the multi-label evaluation board', () => {
  let all: MultiLabelItem[];
  beforeAll(async () => {
    all = (await app.studio.evaluation.results<MultiLabelItem>(ml.pid, ml.expId, { page: 1, page_size: 500, sort: 'file' })).items;
  });

  it('shows mAP, micro/macro F1, exact match, hamming loss, the per-label table with thresholds and the PR chart', async () => {
    const res = await get(page(ml));
    expect(res.statusCode).toBe(200);
    for (const s of ['mAP', 'Micro F1', 'Macro F1', 'Exact match', 'Hamming loss', 'Suggested threshold', 'data-eval-task="multilabel"', 'data-eval-pr-class']) expect(res.body).toContain(s);
    expect(count(res.body, '<tr data-label=')).toBe(ML_CLASSES.length);
    expect(res.body).not.toContain('confusion-matrix');
    expect(res.body).toContain(`of <b data-eval-total>${all.length}</b> results`);
    // the experiment list shows mAP instead of accuracy
    expect(res.body).toMatch(/title="Mean average precision">mAP \d/);
  });

  it('filters the grid by label, missed and extra label', async () => {
    const c = ML_CLASSES[0];
    for (const [key, pred] of [
      ['label', (r: MultiLabelItem) => r.labels.includes(c)],
      ['missed', (r: MultiLabelItem) => r.missed.includes(c)],
      ['extra', (r: MultiLabelItem) => r.extra.includes(c)],
    ] as const) {
      const res = await get(page(ml, `&${key}=${c}`), { 'hx-request': 'true', 'hx-target': 'eval-results' });
      expect(res.statusCode).toBe(200);
      expect(res.body.startsWith('<div id="eval-results">'), key).toBe(true);
      expect(count(res.body, 'class="tile eval-tile'), key).toBe(Math.min(48, all.filter(pred).length));
    }
  });

  it('opens a result with true and predicted labels, scores, missed and extra marked', async () => {
    const r = all.find((x) => !x.correct) ?? all[0];
    const res = await get(`/projects/${ml.pid}/experiments/${ml.expId}/evaluation/images/${r.image_id}`, { 'hx-request': 'true' });
    expect(res.statusCode).toBe(200);
    expect(count(res.body, 'data-state=')).toBe(ML_CLASSES.length);
    for (const m of r.missed) expect(res.body).toMatch(new RegExp(`${m} <span class="small ml-missed">\\(missed\\)`));
    for (const m of r.extra) expect(res.body).toMatch(new RegExp(`${m} <span class="small ml-extra">\\(extra\\)`));
    const full = await get(`/projects/${ml.pid}/experiments/${ml.expId}/evaluation/images/${r.image_id}`);
    expect(full.statusCode).toBe(200);
    expect(full.body).toContain('id="ml-scores"');
  });
});

describe('the regression evaluation board', () => {
  let all: RegressionItem[];
  beforeAll(async () => {
    all = (await app.studio.evaluation.results<RegressionItem>(reg.pid, reg.expId, { page: 1, page_size: 500 })).items;
  });

  it('shows MAE, RMSE, R², median and max error, the per-target table and the charts; the grid worst first', async () => {
    const res = await get(page(reg));
    expect(res.statusCode).toBe(200);
    for (const s of ['MAE', 'RMSE', 'R²', 'Median AE', 'Max error', 'id="per-target"', 'data-eval-task="regression"', 'data-eval-chart="scatter"', 'data-eval-chart="residuals"']) expect(res.body).toContain(s);
    const ids = [...res.body.matchAll(/id="result-(img-[0-9a-z]{8})"/g)].map((m) => m[1]);
    expect(ids).toEqual(all.slice(0, ids.length).map((r) => r.image_id));
    const asc = await get(page(reg, '&sort=abs_error_asc'), { 'hx-request': 'true', 'hx-target': 'eval-results' });
    const first = [...asc.body.matchAll(/id="result-(img-[0-9a-z]{8})"/g)].map((m) => m[1])[0];
    expect(first).toBe(all.at(-1)!.image_id);
  });

  it('opens a result with true, predicted and error per target', async () => {
    const r = all[0];
    const res = await get(`/projects/${reg.pid}/experiments/${reg.expId}/evaluation/images/${r.image_id}`, { 'hx-request': 'true' });
    expect(res.statusCode).toBe(200);
    expect(count(res.body, '<tr data-target=')).toBe(2);
    expect(res.body).toContain('id="reg-values"');
  });
});

describe.skipIf(!existsSync(CHROMIUM))('the task boards in a browser', () => {
  let browser: Browser;
  let p: Page;
  let base: string;
  const errors: string[] = [];

  beforeAll(async () => {
    await fs.mkdir(SHOTS, { recursive: true });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-sync'] });
    p = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    p.on('pageerror', (e) => errors.push(e.message));
  }, 60_000);
  afterAll(async () => browser?.close());

  /** Nothing wider than the window: no horizontal scroll. */
  const noOverflow = async () => expect(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);

  it('multi-label: draws the PR curve of the chosen label and the per-label bars, filters by missed label, opens a result', async () => {
    await p.goto(`${base}${page(ml)}`);
    await p.waitForSelector('#eval-charts[data-drawn="2"]');
    await noOverflow();
    await p.screenshot({ path: path.join(SHOTS, 'eval-multilabel-board.png') });
    await p.locator('#eval-metrics').screenshot({ path: path.join(SHOTS, 'eval-multilabel-metrics.png') });
    await p.selectOption('[data-eval-pr-class]', '1');
    await expect.poll(() => p.locator('#eval-charts').getAttribute('data-pr-label')).toContain(ML_CLASSES[1]);
    await p.locator('#eval-images').screenshot({ path: path.join(SHOTS, 'eval-multilabel-grid.png') });
    const total = Number(await p.locator('[data-eval-total]').textContent());
    await p.selectOption('#eval-filters select[name=missed]', ML_CLASSES[0]);
    await expect.poll(() => p.url()).toContain(`missed=${ML_CLASSES[0]}`);
    await p.click('#eval-clear');
    await expect.poll(async () => Number(await p.locator('[data-eval-total]').textContent())).toBe(total);
    await p.locator('#eval-results .tile').first().click();
    await p.waitForSelector('#ml-scores');
    await p.screenshot({ path: path.join(SHOTS, 'eval-multilabel-detail.png') });
    expect(errors).toEqual([]);
  });

  it('regression: draws the scatter with y = x and the residual histogram per target, sorts by error, opens a result', async () => {
    await p.goto(`${base}${page(reg)}`);
    await p.waitForSelector('#eval-charts[data-drawn="2"]');
    await noOverflow();
    await p.screenshot({ path: path.join(SHOTS, 'eval-regression-board.png') });
    await p.locator('#eval-metrics').screenshot({ path: path.join(SHOTS, 'eval-regression-metrics.png') });
    await p.selectOption('[data-eval-target]', '1');
    await expect.poll(() => p.locator('#eval-charts').getAttribute('data-target')).toBe('x');
    await p.selectOption('#eval-filters select[name=sort]', 'abs_error_asc');
    await expect.poll(() => p.url()).toContain('sort=abs_error_asc');
    await p.locator('#eval-images').screenshot({ path: path.join(SHOTS, 'eval-regression-grid.png') });
    await p.locator('#eval-results .tile').first().click();
    await p.waitForSelector('#reg-values');
    await p.screenshot({ path: path.join(SHOTS, 'eval-regression-detail.png') });
    expect(errors).toEqual([]);
  });
});
