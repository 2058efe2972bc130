import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadSettings } from '../../src/config.ts';
import { call, waitForJob } from '../api/helpers.ts';
import { ML_CLASSES, REG_TARGETS, trainedTaskRun, type TaskRun } from '../evaluation/task-runs.ts';
import { CHROMIUM, launchBrowser } from './helpers.ts';

/**
 * The Deploy page's "Try it" for the multi-label and regression tasks in a real browser: a small
 * run of each (trained through the API) exported, an image chosen on the page, and the answer
 * drawn by the task's partial (views/tasks/<task>/predict-answer.eta) — the labels at or above
 * their thresholds with every score and its threshold mark; the values in the targets' units.
 * Screenshots at 1280×800 land in tmp/screenshots/.
 */
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = path.join(REPO, 'tmp', 'screenshots');

describe.skipIf(!existsSync(CHROMIUM))('trying multi-label and regression exports in a browser', () => {
  let dir: string;
  let app: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let base: string;
  const runs: Partial<Record<TaskRun['task'], TaskRun>> = {};
  const errors: string[] = [];

  async function exported(r: TaskRun): Promise<string> {
    const url = `/api/projects/${r.pid}/experiments/${r.expId}/exports`;
    const started = await call<{ export: { id: string }; job: { id: string } }>(app, 'POST', url, { run_id: r.runId, checkpoint: 'best', variants: ['fp32', 'int8'], benchmark: false });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    expect((await waitForJob(app, started.body.data.job.id, 120_000)).status).toBe('succeeded');
    return started.body.data.export.id;
  }

  /** An image of the run's dataset, as a person would pick it from disk. */
  async function someImage(r: TaskRun): Promise<string> {
    const folder = path.join(dir, `${r.task}-data`, 'images');
    const files = (await fs.readdir(folder)).sort();
    return path.join(folder, files[3]);
  }

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-export-tasks-web-'));
    await fs.mkdir(SHOTS, { recursive: true });
    app = await buildApp(loadSettings({ STUDIO_WORKSPACE: path.join(dir, 'ws'), STUDIO_EXAMPLE: 'off' }));
    for (const task of ['multilabel', 'regression'] as const) {
      runs[task] = await trainedTaskRun(app, dir, task);
      await exported(runs[task]!);
    }
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    ({ browser, page } = await launchBrowser());
    page.on('pageerror', (e) => errors.push(e.message));
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const shot = async (name: string) => {
    await page.locator('#export-try').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
  };

  it('multi-label: the labels present as chips, every label’s score with its threshold; another variant answers again', async () => {
    const r = runs.multilabel!;
    await page.goto(`${base}/projects/${r.pid}/exports?experiment=${r.expId}`);
    await page.setInputFiles('#export-try input[type=file]', await someImage(r));
    await page.locator('#try-labels').waitFor({ timeout: 30_000 });
    expect(await page.locator('[data-try-result] .badge').textContent()).toBe('fp32');
    expect(await page.locator('#try-scores li').evaluateAll((els) => els.map((e) => e.getAttribute('data-label')))).toEqual(ML_CLASSES);
    expect(await page.locator('#try-scores .ml-threshold').count()).toBe(ML_CLASSES.length);
    const present = await page.locator('.try-present [data-label]').evaluateAll((els) => els.map((e) => e.getAttribute('data-label')));
    const onRows = await page.locator('#try-scores li.is-top').evaluateAll((els) => els.map((e) => e.getAttribute('data-label')));
    expect([...present].sort()).toEqual([...onRows].sort());
    expect(Number(await page.locator('[data-present-count]').textContent())).toBe(present.length);
    await shot('export-tasks-01-multilabel-try');

    await page.selectOption('[data-try-variant]', 'int8');
    await expect.poll(() => page.locator('[data-try-result] .badge').textContent(), { timeout: 30_000 }).toBe('int8');
    expect(await page.locator('#try-scores li').count()).toBe(ML_CLASSES.length);
    expect(errors).toEqual([]);
  }, 60_000);

  it('regression: one value per target, in the targets’ units, equal to the API’s answer', async () => {
    const r = runs.regression!;
    await page.goto(`${base}/projects/${r.pid}/exports?experiment=${r.expId}`);
    const file = await someImage(r);
    await page.setInputFiles('#export-try input[type=file]', file);
    await page.locator('#try-values').waitFor({ timeout: 30_000 });
    expect(await page.locator('#try-values [data-target]').evaluateAll((els) => els.map((e) => e.getAttribute('data-target')))).toEqual(REG_TARGETS);
    const shown = await page.locator('#try-values dd').evaluateAll((els) => els.map((e) => Number(e.getAttribute('title'))));
    // the page shows the API's numbers (the title holds them unrounded)
    const exportId = (await call<{ id: string }[]>(app, 'GET', `/api/projects/${r.pid}/experiments/${r.expId}/exports`)).body.data[0].id;
    const form = new FormData();
    form.append('image', new Blob([await fs.readFile(file)], { type: 'image/png' }), 'x.png');
    const res = await fetch(`${base}/api/projects/${r.pid}/experiments/${r.expId}/exports/${exportId}/predict`, { method: 'POST', body: form });
    const values = ((await res.json()) as { data: { answer: { values: Record<string, number> } } }).data.answer.values;
    REG_TARGETS.forEach((name, j) => expect(Math.abs(shown[j] - values[name])).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(values[name]))));
    await shot('export-tasks-02-regression-try');
    expect(errors).toEqual([]);
  }, 60_000);
});
