import { createWriteStream, existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import yazl from 'yazl';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadSettings } from '../../src/config.ts';
import { renderShapeImage } from '../../src/datasets/synthetic.ts';

/**
 * The whole first slice in a real browser (Debian's chromium, driven by playwright-core): create a
 * project, upload a zip made here, watch the import finish, open the grid, filter a class, make a
 * split. Screenshots land in tmp/screenshots/ for a person to look at.
 */
const CHROMIUM = '/usr/bin/chromium';
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = path.join(REPO, 'tmp', 'screenshots');
const CLASSES = { circle: 14, square: 12, triangle: 10 } as const;
const TOTAL = Object.values(CLASSES).reduce((a, b) => a + b, 0);

if (!existsSync(CHROMIUM)) console.warn(`browser test skipped: ${CHROMIUM} is missing (CI installs it: apt-get install chromium)`);

async function makeZip(file: string): Promise<void> {
  const zip = new yazl.ZipFile();
  let seed = 1;
  for (const [label, n] of Object.entries(CLASSES)) {
    for (let i = 0; i < n; i++) {
      const shape = label as keyof typeof CLASSES;
      const png = await renderShapeImage({ shape, size: { width: 96, height: 72 }, seed: seed++, format: i % 3 === 0 ? 'jpeg' : 'png' });
      zip.addBuffer(png, `shapes/${label}/${label}-${i}.${i % 3 === 0 ? 'jpg' : 'png'}`);
    }
  }
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(file));
}

describe.skipIf(!existsSync(CHROMIUM))('the studio in a browser', () => {
  let dir: string;
  let app: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let base: string;
  let zipFile: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-web-'));
    zipFile = path.join(dir, 'shapes.zip');
    await makeZip(zipFile);
    await fs.mkdir(SHOTS, { recursive: true });
    const settings = loadSettings({ STUDIO_WORKSPACE: path.join(dir, 'ws'), STUDIO_EXAMPLE: 'off' });
    app = await buildApp(settings);
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.on('pageerror', (e) => console.error('page error:', e.message));
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const shot = async (name: string) => {
    // From the top: full-page captures of a scrolled page misplace the sticky bars.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  };

  it('creates a project, imports a zip, browses, filters and splits it', async () => {
    await page.goto(base + '/');
    await page.getByRole('heading', { name: 'No projects yet' }).waitFor();
    await shot('01-projects-empty');

    await page.fill('#new-project-form input[name=name]', 'Shapes <demo>');
    await page.fill('#new-project-form input[name=description]', 'Circles, squares and triangles');
    await page.click('#new-project-form button[type=submit]');
    // a new project opens at once
    await page.getByRole('heading', { name: 'Shapes <demo>' }).waitFor();
    await page.waitForURL(/\/projects\/proj-[0-9a-z]{8}$/);
    await shot('02-project-new');

    // Something that is not a zip is refused by the API, and the page says why.
    await page.fill('#upload-form input[name=name]', 'not a zip');
    await page.setInputFiles('#upload-form input[type=file]', { name: 'fake.zip', mimeType: 'application/zip', buffer: Buffer.from('plain text, not an archive') });
    await page.click('#upload-form button[type=submit]');
    await page.locator('#toasts .toast', { hasText: 'not a zip' }).waitFor();
    expect(await page.locator('.job').count()).toBe(0);

    await page.fill('#upload-form input[name=name]', 'Shapes v1');
    await page.setInputFiles('#upload-form input[type=file]', zipFile);
    await page.click('#upload-form button[type=submit]');
    const job = page.locator('.job');
    await job.locator('.badge.succeeded').waitFor({ timeout: 60_000 });
    expect(await job.locator('[data-report-imported]').textContent()).toBe(String(TOTAL));
    // The datasets table refreshed itself when the job finished.
    await page.locator('#dataset-list .badge.ready').waitFor();
    await shot('03-project-imported');

    await job.getByRole('link', { name: 'Open dataset' }).click();
    await page.getByRole('heading', { name: 'Shapes v1' }).waitFor();
    await expect.poll(() => page.locator('#grid .tile').count()).toBe(TOTAL);
    await page.waitForFunction(() => Array.from(document.querySelectorAll<HTMLImageElement>('#grid .tile img')).every((i) => i.complete && i.naturalWidth > 0));
    await shot('04-dataset');

    await page.selectOption('#filters select[name=label]', 'circle');
    await expect.poll(() => page.locator('#grid .tile').count()).toBe(CLASSES.circle);
    expect(new Set(await page.locator('#grid .tile .lbl').allTextContents())).toEqual(new Set(['circle']));
    expect(page.url()).toContain('label=circle');
    await shot('05-filtered');

    await page.locator('#grid .tile').first().click();
    await page.locator('#modal .modal').waitFor();
    await page.waitForFunction(() => document.querySelector<HTMLImageElement>('#modal .modal-image img')?.complete === true);
    // The modal fades in: the screenshot waits for its animations to end.
    await page.waitForFunction(() => document.getAnimations().every((a) => a.playState !== 'running'));
    await page.screenshot({ path: path.join(SHOTS, '06-image-detail.png') });
    // → and ← step through the images, the buttons too
    const shown = () => page.locator('#image-title .mono').textContent();
    const first = await shown();
    await page.keyboard.press('ArrowRight');
    await expect.poll(shown).not.toBe(first);
    await page.click('#modal [data-image-prev]');
    await expect.poll(shown).toBe(first);
    await page.click('#modal [data-close-modal]');

    await page.fill('#split-form input[name=name]', 'holdout');
    await page.fill('#split-form input[name=train]', '60');
    await page.fill('#split-form input[name=val]', '20');
    await page.fill('#split-form input[name=test]', '20');
    const preview = page.locator('#split-preview table');
    await preview.waitFor();
    await expect.poll(async () => (await page.locator('#split-preview').textContent()) ?? '').toContain('holdout');
    await shot('07-split-preview');
    await page.click('#split-form button[type=submit]');
    const row = page.locator('#splits tr#split-holdout');
    await row.waitFor();
    const cells = (await row.locator('td.num').allTextContents()).slice(0, 3).map(Number);
    expect(cells.reduce((a, b) => a + b, 0)).toBe(TOTAL);
    // The split filter of the grid now offers the new split.
    await expect.poll(() => page.locator('#split-filter option[value=holdout]').count()).toBe(1);
    await shot('08-split-saved');

    // A refused action shows a toast and leaves the page as it was.
    await page.fill('#split-form input[name=name]', 'holdout');
    await page.click('#split-form button[type=submit]');
    await page.locator('#toasts .toast', { hasText: 'already exists' }).waitFor();
    await page.screenshot({ path: path.join(SHOTS, '09-error-toast.png') });
    expect(await page.locator('#splits tr#split-holdout').count()).toBe(1);

    // Deleting asks first (hx-confirm).
    page.once('dialog', (d) => void d.accept());
    await page.click('#splits tr#split-holdout button');
    await expect.poll(() => page.locator('#splits tr#split-holdout').count()).toBe(0);
  });
});
