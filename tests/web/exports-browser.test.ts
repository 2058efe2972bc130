import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import yauzl from 'yauzl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadSettings } from '../../src/config.ts';
import { renderShapeImage } from '../../src/datasets/synthetic.ts';
import { trainedExperiment, type TrainedExperiment } from './evaluation-fixtures.ts';

/**
 * Deploying in a real browser (Debian's chromium, driven by playwright-core): on a small CNN
 * trained for two epochs on the example shapes, export it from the form and follow the job, read
 * the comparison table, try an image (chosen with the file input, then dropped onto the box, then
 * again on another variant), download the package zip and check what it holds, delete the export.
 * Screenshots land in tmp/screenshots/ for a person to look at.
 */
const CHROMIUM = '/usr/bin/chromium';
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = path.join(REPO, 'tmp', 'screenshots');

if (!existsSync(CHROMIUM)) console.warn(`browser test skipped: ${CHROMIUM} is missing (CI installs it: apt-get install chromium)`);

/** The names of a zip's entries. */
function zipEntries(file: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err ?? new Error('no zip'));
      const names: string[] = [];
      zip.on('entry', (e: yauzl.Entry) => {
        names.push(e.fileName);
        zip.readEntry();
      });
      zip.on('end', () => resolve(names));
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}

describe.skipIf(!existsSync(CHROMIUM))('deploying in a browser', () => {
  let dir: string;
  let app: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let base: string;
  let t: TrainedExperiment;
  let imageFile: string;
  const errors: string[] = [];

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-export-web-'));
    await fs.mkdir(SHOTS, { recursive: true });
    app = await buildApp(loadSettings({ STUDIO_WORKSPACE: path.join(dir, 'ws'), STUDIO_EXAMPLE: 'off' }));
    t = await trainedExperiment(app, { name: 'Shapes <cnn>' });
    imageFile = path.join(dir, 'circle.png');
    await fs.writeFile(imageFile, await renderShapeImage({ shape: 'circle', size: { width: 96, height: 96 }, seed: 7, format: 'png' }));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 }, acceptDownloads: true });
    page.on('pageerror', (e) => errors.push(e.message));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const shot = async (name: string) => {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  };
  const topk = () => page.locator('#try-topk li').allTextContents();

  it('exports from the form, compares the variants, tries an image, downloads the zip and deletes', async () => {
    await page.goto(`${base}/projects/${t.projectId}/exports`);
    await page.locator('#export-form').waitFor();
    expect(await page.locator('#compare-table').count()).toBe(0);
    await shot('export-01-empty');

    // fp32 and int8, benchmarked: fp16 off.
    await page.uncheck('[name="variant.fp16"]');
    expect(await page.isChecked('[name=benchmark]')).toBe(true);
    await page.selectOption('[name=checkpoint]', `${t.runId}:best`);
    await page.click('#export-start');
    // The board shows the running job (unless it was done before the board came back), follows it
    // over SSE, and comes back by itself with the new export when it is done — no reload.
    await page.locator('#export-progress, #compare-table tr[data-variant="int8"]').first().waitFor();
    if (await page.locator('#export-progress').count()) await shot('export-02-running');
    await page.locator('#compare-table tr[data-variant="int8"]').waitFor({ timeout: 150_000 });
    expect(await page.locator('#export-progress').count()).toBe(0);
    await expect.poll(() => page.locator('#export-status').textContent()).toBe('succeeded');
    expect(await page.locator('#compare-table tr[data-variant]').count()).toBe(2);
    const validations = await page.locator('#compare-table [data-validation]').evaluateAll((els) => els.map((e) => e.getAttribute('data-validation')));
    expect(validations).toHaveLength(2);
    expect(await page.locator('#bench-table tbody tr').count()).toBeGreaterThanOrEqual(2);
    await shot('export-03-compare');

    // Try it: choose a file, the top predictions come back as bars (top 5, or every class when fewer).
    const x = (await app.studio.exports.list(t.projectId, t.experimentId))[0];
    const shown = Math.min(5, x.manifest!.labels.length);
    await page.setInputFiles('#export-try input[type=file]', imageFile);
    await expect.poll(async () => (await topk()).length, { timeout: 30_000 }).toBe(shown);
    expect(await page.locator('[data-try-result] .badge').textContent()).toBe('fp32');
    const scores = await page.locator('#try-topk .topk-head .num').allTextContents();
    const sum = scores.reduce((a, s) => a + Number(s.replace('%', '')), 0);
    expect(sum).toBeGreaterThan(99);
    expect(sum).toBeLessThan(101);
    expect(await page.locator('[data-try-preview] img').count()).toBe(1);
    await shot('export-04-try');

    // Another variant predicts the same image again.
    await page.selectOption('[data-try-variant]', 'int8');
    await expect.poll(() => page.locator('[data-try-result] .badge').textContent(), { timeout: 30_000 }).toBe('int8');
    expect((await topk()).length).toBe(shown);

    // Dropping a file onto the box works as choosing one; a non-image is refused plainly.
    await page.evaluate(async () => {
      const zone = document.querySelector('[data-try-drop]')!;
      const dt = new DataTransfer();
      dt.items.add(new File(['not an image at all'], 'notes.txt', { type: 'text/plain' }));
      zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await page.locator('[data-try-result] .alert.error').waitFor({ timeout: 30_000 });
    expect(await page.locator('[data-try-result]').textContent()).toContain('UNSUPPORTED_MEDIA');
    await shot('export-05-try-refused');
    const png = await fs.readFile(imageFile);
    await page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
      document.querySelector('[data-try-drop]')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, png.toString('base64'));
    await expect.poll(async () => (await topk()).length, { timeout: 30_000 }).toBe(shown);
    expect(await page.locator('[data-try-name]').textContent()).toBe('dropped.png');

    // The manifest opens; the package downloads as a zip holding what the manifest lists.
    await page.click('#export-manifest summary');
    expect(await page.locator('#manifest-json').isVisible()).toBe(true);
    const manifest = JSON.parse((await page.locator('#manifest-json').textContent()) ?? '{}') as { files: { name: string }[] };
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-download')]);
    // named after the experiment and its variants (the experiment here is "Shapes <cnn>")
    expect(download.suggestedFilename()).toBe('Shapes-cnn-fp32-int8.zip');
    const saved = path.join(dir, 'package.zip');
    await download.saveAs(saved);
    const names = await zipEntries(saved);
    for (const f of manifest.files) expect(names).toContain(f.name);
    expect(names).toContain('manifest.json');
    expect(names).toContain('model.int8.onnx');
    expect(names).not.toContain('model.fp16.onnx');
    await shot('export-06-manifest');

    // Delete, after the confirmation.
    page.once('dialog', (d) => void d.accept());
    await page.click('#export-delete');
    await page.locator('#export-detail').waitFor({ state: 'detached' });
    expect(await page.locator('#compare-table').count()).toBe(0);
    expect(await app.studio.exports.list(t.projectId, t.experimentId)).toEqual([]);
    expect(errors).toEqual([]);
  }, 300_000);
});
