import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadSettings } from '../../src/config.ts';
import { ensureExampleProject } from '../../src/core/example.ts';

/**
 * Training in a real browser (Debian's chromium, driven by playwright-core): import a backbone on
 * the Models page, create an experiment (a refused value first, shown beside its field), start a
 * run, watch the curves grow live, reload mid-run, cancel, resume, start another run and compare.
 * The dataset is the example project's shapes at 32 px, small_cnn at 32 px, so epochs are short.
 * Screenshots land in tmp/screenshots/ for a person to look at.
 */
const CHROMIUM = '/usr/bin/chromium';
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = path.join(REPO, 'tmp', 'screenshots');
const BACKBONE = path.resolve(REPO, '../shared/fixtures/onnx-interop/mobilenet_v3_small_eval_opset13.onnx');
const EPOCHS = 40;

if (!existsSync(CHROMIUM)) console.warn(`browser test skipped: ${CHROMIUM} is missing (CI installs it: apt-get install chromium)`);

describe.skipIf(!existsSync(CHROMIUM))('training in a browser', () => {
  let dir: string;
  let app: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let base: string;
  let projectId: string;
  const errors: string[] = [];

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-train-web-'));
    await fs.mkdir(SHOTS, { recursive: true });
    app = await buildApp(loadSettings({ STUDIO_WORKSPACE: path.join(dir, 'ws'), STUDIO_EXAMPLE: 'off' }));
    const example = await ensureExampleProject(app.studio.store, { perClass: 24, size: 32 });
    if (!example) throw new Error('example project not made');
    projectId = example.id;
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.on('pageerror', (e) => errors.push(e.message));
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const shot = async (name: string) => {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  };
  /** Points on the run panel's loss chart (Chart.js's own data, so what is drawn). */
  const chartPoints = () =>
    page.evaluate(() => {
      const canvas = document.querySelector<HTMLCanvasElement>('#run-panel canvas[data-chart="loss"]');
      const chart = canvas ? (window as unknown as { Chart: { getChart(c: HTMLCanvasElement): { data: { datasets: { data: unknown[] }[] } } | undefined } }).Chart.getChart(canvas) : undefined;
      return chart ? chart.data.datasets[0].data.length : -1;
    });
  const status = () => page.locator('#run-panel [data-run-status]').textContent();

  it.skipIf(!existsSync(BACKBONE))('lists the catalog and imports an ONNX backbone by upload', async () => {
    await page.goto(base + '/models');
    await page.locator('#models-list tr#model-small_cnn').waitFor();
    await page.fill('#model-upload-form input[name=name]', 'MobileNetV3 <small>');
    await page.setInputFiles('#model-upload-form input[type=file]', BACKBONE);
    await page.click('#model-upload-form button[type=submit]');
    const row = page.locator('#models-list tr', { hasText: 'MobileNetV3 <small>' });
    await row.waitFor({ timeout: 60_000 });
    expect(await row.textContent()).toContain('224×224');
    await shot('training-01-models');
  }, 120_000);

  it('creates an experiment, trains live, survives a reload, cancels, resumes and compares', async () => {
    await page.goto(`${base}/projects/${projectId}/training`);
    await page.getByRole('heading', { name: 'No experiments yet' }).waitFor();
    await shot('training-02-empty');

    await page.getByRole('link', { name: 'New experiment' }).first().click();
    await page.getByRole('heading', { name: 'New experiment' }).waitFor();
    await expect.poll(() => page.locator('#aug-preview img').count()).toBe(8);

    // A preset fills the fields; then our own values for a fast run.
    await page.click('[data-preset=quick]');
    expect(await page.inputValue('[name="hyperparameters.epochs"]')).toBe('5');
    // the preset in use is shown (and said to assistive technology)
    expect(await page.getAttribute('[data-preset=quick]', 'aria-pressed')).toBe('true');
    expect(await page.getAttribute('[data-preset=thorough]', 'aria-pressed')).toBe('false');
    await page.fill('[name=name]', 'Shapes <cnn>');
    await page.selectOption('[name="model.choice"]', 'arch:small_cnn');
    await page.fill('[name="model.input_size"]', '32');
    await page.fill('[name="hyperparameters.epochs"]', String(EPOCHS));
    await page.fill('[name="hyperparameters.batch_size"]', '16');
    await page.fill('[name="hyperparameters.lr"]', '50');
    // an option that is off has its sub-fields off too
    expect(await page.isDisabled('[name="augmentation.rotation.degrees"]')).toBe(true);
    await page.check('[name="augmentation.rotation.enabled"]');
    expect(await page.isDisabled('[name="augmentation.rotation.degrees"]')).toBe(false);
    await page.locator('#aug-preview img').first().waitFor();
    await page.click('button[type=submit][value="0"]');
    const refusal = page.locator('#experiment-errors .form-errors');
    await refusal.waitFor();
    expect(await refusal.textContent()).toContain('Learning rate');
    await expect.poll(() => page.getAttribute('[name="hyperparameters.lr"]', 'aria-invalid')).toBe('true');
    await shot('training-03-form-refused');

    await page.fill('[name="hyperparameters.lr"]', '0.003');
    await page.click('button[type=submit][value="1"]');
    await page.waitForURL(/\/training\?experiment=exp-[^&]+&run=run-/);
    await page.locator('#run-panel').waitFor();

    // The curves grow over SSE, without a reload.
    await expect.poll(chartPoints, { timeout: 120_000, interval: 100 }).toBeGreaterThanOrEqual(2);
    await expect.poll(status).toBe('running');
    await shot('training-04-running');

    // A reload renders what was learnt so far and follows the stream from there.
    const before = await chartPoints();
    await page.reload();
    await page.locator('#run-panel').waitFor();
    // The charts are drawn by the deferred script, a moment after the panel is parsed.
    await expect.poll(chartPoints).toBeGreaterThanOrEqual(before);
    await expect.poll(chartPoints, { timeout: 60_000, interval: 100 }).toBeGreaterThan(before);

    page.once('dialog', (d) => void d.accept());
    await page.click('#cancel-run');
    await expect.poll(status, { timeout: 60_000 }).toBe('cancelled');
    // The board is rendered again around the cancelled run, its curves kept.
    await expect.poll(chartPoints).toBeGreaterThanOrEqual(3);
    const kept = await chartPoints();
    expect(kept).toBeLessThan(EPOCHS);
    await page.locator('#resume-run').waitFor();
    await shot('training-05-cancelled');

    await page.click('#resume-run');
    await expect.poll(chartPoints, { timeout: 60_000, interval: 100 }).toBeGreaterThan(kept);
    await shot('training-06-resumed');
    await expect.poll(status, { timeout: 180_000, interval: 500 }).toBe('succeeded');
    await expect.poll(chartPoints).toBe(EPOCHS);
    // the whole log, from before the resume too, and the run's training time, not the resumed job's alone
    const log = (await page.locator('#run-panel [data-run-log]').textContent()) ?? '';
    expect(log).toContain('training small_cnn');
    expect(log).toContain('resuming from epoch');
    await page.locator('#run-panel details.run-details summary').click();
    await shot('training-07-succeeded');

    // Another run of the same experiment; the two are compared on one chart.
    await page.click('#start-run');
    await expect.poll(() => page.locator('#training-list .run-link').count()).toBe(2);
    await expect.poll(chartPoints, { timeout: 60_000, interval: 100 }).toBeGreaterThanOrEqual(2);
    page.once('dialog', (d) => void d.accept());
    await page.click('#cancel-run');
    await expect.poll(status, { timeout: 60_000 }).toBe('cancelled');
    await page.locator('#compare canvas').waitFor();
    // The canvas is in the page before Chart.js has drawn on it: wait for the chart itself.
    const lines = () =>
      page.evaluate(() => {
        const canvas = document.querySelector<HTMLCanvasElement>('#compare canvas');
        const chart = canvas ? (window as unknown as { Chart: { getChart(c: HTMLCanvasElement): { data: { datasets: unknown[] } } | undefined } }).Chart.getChart(canvas) : undefined;
        return chart?.data.datasets.length ?? 0;
      });
    await expect.poll(lines, { timeout: 10_000, interval: 100 }).toBe(2);
    await shot('training-08-compare');
    // One column on a small laptop.
    await page.setViewportSize({ width: 1024, height: 800 });
    // Nothing sticks out sideways once the charts have redrawn at the new width.
    await expect.poll(() => page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1024);
    await shot('training-09-narrow');
    expect(errors).toEqual([]);
  }, 300_000);
});
