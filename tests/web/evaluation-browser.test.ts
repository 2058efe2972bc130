import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.ts';
import { call, waitForJob } from '../api/helpers.ts';
import { SHAPE_CLASSES, writeShapesFolder } from '../api/runs-fixtures.ts';
import { heldEvaluationStudio, trainedExperiment, type HeldEvaluationStudio, type TrainedExperiment } from './evaluation-fixtures.ts';

/**
 * The evaluation page in a real browser (Debian's chromium, driven by playwright-core): open the
 * page of a trained experiment, run an evaluation from the form (progress over SSE, then the
 * metrics), click a confusion-matrix cell and see the grid filtered to that pair, open a result's
 * top predictions, fold a section away (Alpine.js), re-evaluate (the previous metrics stay on
 * view, dimmed, until the new ones arrive), reset. Screenshots land in tmp/screenshots/.
 */
const CHROMIUM = '/usr/bin/chromium';
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = path.join(REPO, 'tmp', 'screenshots');

describe.skipIf(!existsSync(CHROMIUM))('the evaluation page in a browser', () => {
  let dir: string;
  let studio: HeldEvaluationStudio;
  let app: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let base: string;
  let t: TrainedExperiment;
  const errors: string[] = [];

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-eval-web-'));
    await fs.mkdir(SHOTS, { recursive: true });
    studio = await heldEvaluationStudio(loadSettings({ STUDIO_WORKSPACE: path.join(dir, 'ws'), STUDIO_EXAMPLE: 'off' }));
    app = studio.app;
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    t = await trainedExperiment(app, { name: 'Shapes <quick> CNN', perClass: 16 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.on('pageerror', (e) => errors.push(e.message));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await studio?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const shot = async (name: string) => {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  };
  /** Thumbnails load lazily; the full-page screenshots want them all, so they are asked for now. */
  const imagesLoaded = async () => {
    await page.evaluate(() => document.querySelectorAll<HTMLImageElement>('#eval-results .tile img').forEach((i) => (i.loading = 'eager')));
    await page.waitForFunction(() => Array.from(document.querySelectorAll<HTMLImageElement>('#eval-results .tile img')).every((i) => i.complete && i.naturalWidth > 0));
  };

  it('runs an evaluation, filters the grid from the confusion matrix, shows a result, resets', async () => {
    await page.goto(`${base}/projects/${t.projectId}/training`);
    await page.click('.sidebar a[href$="/evaluation"]');
    await page.getByRole('heading', { name: 'Evaluation', level: 1 }).waitFor();
    await page.locator('#eval-status', { hasText: 'not evaluated' }).waitFor();
    // Only the run's existing checkpoints are offered.
    expect(await page.locator('#eval-form select[name=checkpoint] option').allTextContents()).toEqual([
      expect.stringMatching(/^Run 1 · best \(epoch \d/),
      expect.stringMatching(/^Run 1 · last \(epoch 2\)/),
    ]);
    await shot('eval-01-not-evaluated');

    await page.check('#eval-form input[name="subset.val"]');
    await page.check('#eval-form input[name="subset.test"]');
    await page.fill('#eval-form input[name=batch_size]', '8');
    await page.click('#eval-start');
    // The form's answer swaps the board: a live progress box, then (on the job's `done`) the metrics.
    await page.locator('#confusion-matrix').waitFor({ timeout: 90_000 });
    await page.locator('#eval-status', { hasText: 'evaluated' }).waitFor();
    await expect.poll(() => page.locator('#eval-charts').getAttribute('data-drawn')).toBe('4');
    await imagesLoaded();
    await shot('eval-02-metrics');
    // Every legend swatch sits on one line with its label, and no metric card cuts its subtitle.
    const keys = await page.locator('#eval-metrics .cm-legend .cm-key').evaluateAll((els) =>
      els.map((e) => ({ text: e.textContent!.trim(), oneLine: e.getBoundingClientRect().height < 24 })),
    );
    expect(keys.map((k) => k.text)).toEqual(['correct', 'mistaken', 'shade: share of the true class']);
    expect(keys.every((k) => k.oneLine)).toBe(true);
    const clipped = await page.locator('#eval-metrics .eval-stats .stat .small').evaluateAll((els) =>
      els.filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent),
    );
    expect(clipped).toEqual([]);

    const state = await app.studio.evaluation.get(t.projectId, t.experimentId);
    expect(state.config).toMatchObject({ subsets: ['test', 'val'], batch_size: 8 });
    const { labels, matrix } = state.aggregate!.confusion_matrix;
    // A mistaken pair when there is one (the most interesting click), else the fullest cell.
    const cells = labels.flatMap((l, i) => labels.map((p, j) => ({ l, p, n: matrix[i][j], off: i !== j }))).filter((c) => c.n > 0);
    const pick = cells.find((c) => c.off) ?? cells.sort((a, b) => b.n - a.n)[0];
    const cell = page.locator(`#confusion-matrix a[data-cm-cell][data-label="${pick.l}"][data-predicted="${pick.p}"]`);
    expect(await cell.textContent()).toBe(String(pick.n));
    await cell.click();
    await expect.poll(() => page.url()).toContain(`predicted=${encodeURIComponent(pick.p)}`);
    await expect.poll(() => page.locator('#eval-results .tile').count()).toBe(Math.min(48, pick.n));
    expect(new Set(await page.locator('#eval-results .tile').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-label')}→${e.getAttribute('data-predicted')}`)))).toEqual(
      new Set([`${pick.l}→${pick.p}`]),
    );
    expect(await page.locator('#eval-filters select[name=label]').inputValue()).toBe(pick.l);
    expect(await page.locator('#eval-filters select[name=predicted]').inputValue()).toBe(pick.p);
    await expect.poll(() => cell.evaluate((a) => a.parentElement!.classList.contains('selected'))).toBe(true);
    await imagesLoaded();
    // The grid was scrolled into view: its section head below the sticky top bar (or as high as the page's end allows).
    const headTop = async () => Math.round((await page.locator('#eval-images').boundingBox())!.y);
    await expect.poll(async () => {
      const y = await headTop();
      const atEnd = await page.evaluate(() => Math.ceil(window.scrollY + window.innerHeight) >= document.documentElement.scrollHeight);
      return y === 72 || (atEnd && y > 56 && y < 450);
    }).toBe(true);
    await page.waitForTimeout(100);
    await page.screenshot({ path: path.join(SHOTS, 'eval-03-filtered.png') });

    // One result: its top predictions, best first, the true class marked.
    await page.locator('#eval-results .tile').first().click();
    await page.locator('#modal #topk').waitFor();
    expect(await page.locator('#modal #topk li').count()).toBe(Math.min(5, labels.length));
    const scores = (await page.locator('#modal #topk .topk-head .num').allTextContents()).map((s) => parseFloat(s));
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    await page.waitForFunction(() => document.querySelector<HTMLImageElement>('#modal .modal-image img')?.complete === true);
    await page.screenshot({ path: path.join(SHOTS, 'eval-04-result.png') });
    await page.click('#modal [data-close-modal]');

    // Clearing the filters shows every result again, mistakes first.
    await page.click('#eval-clear');
    await expect.poll(() => page.locator('#eval-results .tile').count()).toBe(Math.min(48, state.evaluated));

    // The sections fold away and back (Alpine.js).
    await page.click('#eval-metrics .eval-toggle');
    await expect.poll(() => page.locator('#eval-metrics-body').isVisible()).toBe(false);
    expect(await page.locator('#eval-metrics .eval-toggle').getAttribute('aria-expanded')).toBe('false');
    await page.click('#eval-metrics .eval-toggle');
    await expect.poll(() => page.locator('#eval-metrics-body').isVisible()).toBe(true);

    // Re-evaluating with TTA: the previous metrics and results stay on view, dimmed and labelled
    // with the new one's progress (the evaluation is held at 3 of 10 images until released).
    const accuracyTile = page.locator('#eval-metrics .eval-stats .stat .value').first();
    const previousAccuracy = await accuracyTile.textContent();
    studio.hold();
    await page.check('#eval-form input[name=tta]');
    await page.click('#eval-start');
    await page.locator('#eval-progress').waitFor();
    await page.locator('#eval-metrics[data-previous] [data-eval-previous]', { hasText: /Previous evaluation \(.+\) — re-evaluating… 30%/ }).waitFor();
    expect(await page.locator('#eval-images[data-previous] [data-eval-previous]').count()).toBe(1);
    expect(await accuracyTile.textContent()).toBe(previousAccuracy);
    await expect.poll(() => page.locator('#eval-charts').getAttribute('data-drawn')).toBe('4');
    expect(await page.locator('#eval-results .tile').count()).toBe(Math.min(48, state.evaluated));
    // A progress event moves the box's bar and every percentage on the board (studio.js's follower).
    studio.report(7, 10);
    await expect.poll(() => page.locator('[data-eval-pct]').allTextContents()).toEqual(['70%', '70%', '70%']);
    await expect.poll(() => page.locator('#eval-progress [data-eval-bar] > div').evaluate((d) => (d as HTMLElement).style.width)).toBe('70%');
    await imagesLoaded();
    await shot('eval-05-re-evaluating');
    studio.release();
    // On the job's `done` the board comes again: the new metrics, nothing marked previous.
    await page.locator('#eval-progress').waitFor({ state: 'detached', timeout: 90_000 });
    expect(await page.locator('[data-previous], [data-eval-previous]').count()).toBe(0);
    await page.locator('#eval-status', { hasText: 'evaluated' }).waitFor();
    await expect.poll(() => page.locator('.eval-summary').textContent()).toContain('flip TTA on');
    const again = await app.studio.evaluation.get(t.projectId, t.experimentId);
    expect(again.config).toMatchObject({ tta: true });
    expect(await accuracyTile.textContent()).toBe(`${(again.aggregate!.accuracy * 100).toFixed(1)}%`);

    // Reset asks first, then the evaluation is gone at once.
    page.once('dialog', (d) => void d.accept());
    await page.click('#eval-reset');
    await page.locator('#eval-status', { hasText: 'not evaluated' }).waitFor();
    expect(await page.locator('#confusion-matrix').count()).toBe(0);
    expect((await app.studio.evaluation.get(t.projectId, t.experimentId)).status).toBe('none');
    expect(errors).toEqual([]);
  }, 180_000);

  it('evaluates the run on a second, separately imported dataset', async () => {
    const src = path.join(dir, 'held-out');
    await writeShapesFolder(src, 4, 32, 7);
    const started = await call<{ dataset: { id: string }; job: { id: string } }>(app, 'POST', `/api/projects/${t.projectId}/datasets`, {
      name: 'held-out',
      task: 'classification',
      source: { kind: 'folder', path: src },
    });
    expect(started.status).toBe(202);
    expect((await waitForJob(app, started.body.data.job.id, 60_000)).status).toBe('succeeded');
    const other = started.body.data.dataset.id;
    await page.goto(`${base}/projects/${t.projectId}/evaluation?experiment=${t.experimentId}`);
    await page.selectOption('#eval-form select[name=dataset_id]', other);
    // The split's subsets do not apply to a whole dataset.
    await expect.poll(() => page.locator('#eval-form .eval-subsets').evaluate((f) => (f as HTMLFieldSetElement).disabled)).toBe(true);
    await page.click('#eval-start');
    await page.locator('.eval-summary', { hasText: 'all of dataset held-out' }).waitFor({ timeout: 90_000 });
    const state = await app.studio.evaluation.get(t.projectId, t.experimentId);
    // Images of a class the run does not know ('cross' when it was not trained on) are listed, not evaluated.
    const known = SHAPE_CLASSES.filter((c) => state.config!.classes.includes(c)).length;
    expect(state).toMatchObject({ status: 'succeeded', evaluated: 4 * known, problems_total: 4 * (SHAPE_CLASSES.length - known), config: { dataset_id: other, whole_dataset: true } });
    const src0 = await page.locator('#eval-results .tile img').first().getAttribute('src');
    expect(src0).toContain(`/datasets/${other}/`);
    // The form remembers the choice.
    expect(await page.locator('#eval-form select[name=dataset_id]').inputValue()).toBe(other);
    await imagesLoaded();
    await shot('eval-06-other-dataset');
    expect(errors).toEqual([]);
  }, 120_000);
});
