import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadSettings } from '../../src/config.ts';
import { makeShapesProject, type ShapesProject } from '../api/runs-fixtures.ts';
import { WEIGHTS_FIXTURES } from '../models/weights/fixtures.ts';
import { CHROMIUM, cutSelects, launchBrowser, overflowing } from './helpers.ts';

/**
 * Pretrained weights in chromium at 1280×800: a .pth uploaded on the Models page, its load
 * followed live (htmx's SSE extension) until the list shows it ready; the offline download's
 * manual way beside its button; then the new-experiment form's Weights select, whose choice
 * becomes the experiment's `model.weights_id`. Nothing is cut at 1280 or 1024 px; the screenshots
 * land in tmp/screenshots/ for a person to look at.
 */
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = path.join(REPO, 'tmp', 'screenshots');
const PTH = path.join(WEIGHTS_FIXTURES, 'mobilenet_v3_small.pth');

describe.skipIf(!existsSync(CHROMIUM))('pretrained weights in a browser', () => {
  let dir: string;
  let app: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let errors: string[];
  let base: string;
  let p: ShapesProject;
  const requests: string[] = [];

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-weights-browser-'));
    // The download host is a closed local port: this machine is "offline", and no test reaches the network.
    app = await buildApp(
      loadSettings({ STUDIO_WORKSPACE: path.join(dir, 'ws'), STUDIO_EXAMPLE: 'off', STUDIO_WEIGHTS_BASE_URL: 'http://127.0.0.1:9/', STUDIO_WEIGHTS_TIMEOUT_MS: '2000' }),
    );
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    p = await makeShapesProject(app, dir, { perClass: 4, size: 32 });
    ({ browser, page, errors } = await launchBrowser({ width: 1280, height: 800 }));
    page.on('request', (r) => requests.push(r.url()));
    await fs.mkdir(SHOTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('uploads a .pth on the Models page, follows its load live, and lists the weights ready', async () => {
    await page.goto(`${base}/models`);
    // choosing the architecture in the catalog swaps the board and puts the choice in the URL
    await page.click('#model-mobilenet_v3_small a.model-pick');
    await page.waitForURL(/\/models\?model=mobilenet_v3_small$/);
    await page.waitForSelector('#weights-panel[data-weights-model="mobilenet_v3_small"]');
    expect(await page.$eval('#model-mobilenet_v3_small', (el) => el.className)).toBe('selected');

    await page.setInputFiles('#weights-upload-form input[type=file]', PTH);
    expect(await page.textContent('#weights-upload-form [data-file-name]')).toBe('mobilenet_v3_small.pth');
    await page.click('#weights-upload-form button[type=submit]');
    // the record appears with its live widget, then its job ends and the list comes again
    const item = page.locator('#weights-list [data-weights]').first();
    await item.waitFor();
    await page.waitForSelector('#weights-list [data-weights][data-status="ready"]', { timeout: 60_000 });
    expect(requests.some((u) => /\/models\/mobilenet_v3_small\/weights\/wt-[0-9a-z]{8}\/live\?last_event_id=\d+$/.test(u))).toBe(true);
    expect(requests.some((u) => u.endsWith('/models/mobilenet_v3_small/weights/list?settled=1'))).toBe(true);
    const [w] = await app.studio.weights.list('mobilenet_v3_small');
    expect(w).toMatchObject({ status: 'ready', file_name: 'mobilenet_v3_small.pth', format: 'torchvision_pth' });
    const ready = page.locator(`#weights-${w.id}`);
    expect(await ready.locator('.weights-name').textContent()).toBe('mobilenet_v3_small.pth');
    expect(await ready.locator('.weights-sha').getAttribute('title')).toBe(w.sha256);
    expect(await ready.locator('.weights-n').textContent()).toBe('210');
    // the catalog counts it (it came again on models-changed)
    await page.waitForSelector('#model-mobilenet_v3_small [data-weights-count="1"]');
    // the full sha256 is one click away
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    await ready.locator('[data-copy]').click();
    await expect.poll(() => ready.locator('[data-copy-label]').textContent()).toBe('Copied');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(w.sha256);
    // the skipped list opens
    await ready.locator('details summary').click();
    expect(await ready.locator('.weights-skipped').isVisible()).toBe(true);
    expect(await ready.locator('.weights-skipped').textContent()).toContain('batch-norm step counter: not used');
    expect(await overflowing(page)).toEqual([]);
    await page.locator('#weights-panel').scrollIntoViewIfNeeded();
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(SHOTS, 'models-weights-01-loaded.png') });
    await ready.locator('details summary').click();

    // Offline: the download's refusal is the manual way, beside the button, in words.
    await page.click('#weights-panel [role=tab][data-tab="download"]');
    await page.click('#weights-download-form button[type=submit]');
    const note = page.locator('#weights-download-note [data-offline]');
    await note.waitFor();
    expect(await note.textContent()).toContain('This machine is offline');
    expect(await note.textContent()).toContain('http://127.0.0.1:9/mobilenet_v3_small-047dcff4.pth');
    expect(await note.textContent()).not.toMatch(/OFFLINE|503/);
    await note.scrollIntoViewIfNeeded();
    expect(await overflowing(page)).toEqual([]);
    await page.screenshot({ path: path.join(SHOTS, 'models-weights-02-offline.png') });
    // its "upload it" link goes to the Upload tab
    await note.locator('button[data-tab="upload"]').click();
    expect(await page.isVisible('#weights-upload-form')).toBe(true);
    expect(await page.getAttribute('#weights-panel [role=tab][data-tab="upload"]', 'aria-selected')).toBe('true');

    await page.setViewportSize({ width: 1024, height: 800 });
    expect(await overflowing(page)).toEqual([]);
    await page.setViewportSize({ width: 1280, height: 800 });
    expect(errors).toEqual([]);
  }, 120_000);

  it('picks the weights in the new-experiment form and creates an experiment that starts from them', async () => {
    const [w] = await app.studio.weights.list('mobilenet_v3_small');
    await page.goto(`${base}/projects/${p.pid}/experiments/new`);
    // small_cnn is preselected: random initialisation only
    expect(await page.$eval('select[name="model.weights_id"]', (el) => (el as HTMLSelectElement).value)).toBe('');
    const swapped = page.waitForResponse((r) => r.url().includes('/experiments/model-weights'));
    await page.selectOption('select[name="model.choice"]', 'arch:mobilenet_v3_small');
    await swapped;
    await page.waitForSelector(`select[name="model.weights_id"] option[value="${w.id}"]`, { state: 'attached' });
    const options = await page.$$eval('select[name="model.weights_id"] option', (os) => os.map((o) => o.textContent));
    expect(options[0]).toBe('Random initialisation');
    expect(options[1]).toMatch(/^mobilenet_v3_small\.pth · \d{1,2} [A-Z][a-z]{2}( \d{4})?$/);
    expect(await page.textContent('[data-model-note]')).toBe('Catalog models start from random weights.');
    expect(await page.isVisible('[data-weights-detail]')).toBe(false);
    await page.selectOption('select[name="model.weights_id"]', w.id);
    expect(await page.textContent('[data-model-note]')).toContain('Pretrained');
    // under the select: where the chosen weights came from
    expect(await page.textContent('[data-weights-detail]')).toMatch(/^Uploaded \d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d · 210 tensors · sha256 [0-9a-f]{12}…$/);
    expect(await page.isVisible('[data-weights-hint]')).toBe(false);

    await page.fill('input[name="name"]', 'From pretrained');
    await page.fill('input[name="model.input_size"]', '32');
    await page.fill('input[name="hyperparameters.epochs"]', '1');
    const model = page.locator('select[name="model.choice"]');
    await model.scrollIntoViewIfNeeded();
    await page.evaluate(() => window.scrollBy(0, -120));
    expect(await overflowing(page)).toEqual([]);
    expect(await cutSelects(page, 'select[name^="model."]')).toEqual([]);
    await page.screenshot({ path: path.join(SHOTS, 'models-weights-03-form.png') });

    await page.click('button[type=submit][value="0"]');
    await page.waitForURL(/\/training\?experiment=exp-[0-9a-z]{8}$/);
    const made = (await app.studio.experiments.list(p.pid)).filter((e) => e.name === 'From pretrained');
    expect(made).toHaveLength(1);
    expect(made[0].model).toMatchObject({ architecture: 'mobilenet_v3_small', weights_id: w.id });
    expect(await page.textContent('#training-list')).toContain('mobilenet_v3_small · pretrained');

    // back to an imported-backbone-free catalog model without weights: random again, and the line says so
    await page.goto(`${base}/projects/${p.pid}/experiments/new`);
    const again = page.waitForResponse((r) => r.url().includes('/experiments/model-weights'));
    await page.selectOption('select[name="model.choice"]', 'arch:mobilenet_v3_small');
    await again;
    await page.waitForSelector(`select[name="model.weights_id"] option[value="${w.id}"]`, { state: 'attached' });
    await page.selectOption('select[name="model.weights_id"]', w.id);
    const back = page.waitForResponse((r) => r.url().includes('/experiments/model-weights'));
    await page.selectOption('select[name="model.choice"]', 'arch:resnet18');
    await back;
    await page.waitForFunction(() => !document.querySelector('select[name="model.weights_id"] option[value^="wt-"]'));
    expect(await page.textContent('[data-model-note]')).toBe('Catalog models start from random weights.');
    expect(errors).toEqual([]);
  }, 120_000);
});
