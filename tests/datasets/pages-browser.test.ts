import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadSettings } from '../../src/config.ts';
import { renderShapeImage } from '../../src/datasets/synthetic.ts';
import { ensureTasks } from './tasks.ts';
import { CHROMIUM, launchBrowser } from '../web/helpers.ts';

/**
 * Multi-label and regression datasets in a real browser: the new-dataset form shows the CSV options
 * of the task chosen (and posts only those), a CSV import of each task, the dataset pages' charts
 * drawn, labels edited with checkboxes and targets with number inputs. Screenshots at 1280×800 land
 * in tmp/screenshots/ for a person to look at.
 */
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = path.join(REPO, 'tmp', 'screenshots');
const SHAPES = ['circle', 'square', 'triangle'] as const;
const N = 24;

describe.skipIf(!existsSync(CHROMIUM))('multi-label and regression datasets in a browser', () => {
  let dir: string;
  let app: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let base: string;
  let projectUrl: string;
  const errors: string[] = [];
  let lastJobText = '';

  beforeAll(async () => {
    ensureTasks();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-tasks-web-'));
    const imgs = path.join(dir, 'imgs');
    await fs.mkdir(imgs, { recursive: true });
    const ml = ['file,labels'];
    const reg = ['file,size,count'];
    for (let i = 0; i < N; i++) {
      const shape = SHAPES[i % 3];
      await fs.writeFile(path.join(imgs, `${i}.png`), await renderShapeImage({ shape, size: { width: 64, height: 64 }, seed: i + 1, format: 'png' }));
      const extra = i % 4 === 0 ? [] : [SHAPES[(i + 1) % 3]];
      ml.push(`${i}.png,${[shape, ...extra, ...(i % 5 === 0 ? ['a-rather-long-label-name'] : [])].join(';')}`);
      reg.push(`${i}.png,${(10 + ((i * 37) % 50) / 3).toFixed(2)},${i % 7}`);
    }
    reg.push('bad.png,n/a,1');
    await fs.writeFile(path.join(dir, 'ml.csv'), ml.join('\n') + '\n');
    await fs.writeFile(path.join(dir, 'reg.csv'), reg.join('\n') + '\n');
    await fs.mkdir(SHOTS, { recursive: true });
    app = await buildApp(loadSettings({ STUDIO_WORKSPACE: path.join(dir, 'ws'), STUDIO_EXAMPLE: 'off' }));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    const project = await app.studio.projects.create({ name: 'Tasks' });
    projectUrl = `${base}/projects/${project.id}`;
    ({ browser, page } = await launchBrowser());
    page.on('pageerror', (e) => errors.push(e.message));
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const shot = async (name: string, fullPage = true) => {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });
  };

  /** Imports a CSV from the CSV tab with the task and fields given, then opens the dataset. */
  async function importCsv(name: string, task: string, fields: Record<string, string>): Promise<void> {
    await page.goto(projectUrl);
    await page.click('[data-tab="csv"]');
    const form = page.locator('[data-panel="csv"] form');
    await form.locator('input[name=name]').fill(name);
    await form.locator('select[name=task]').selectOption(task);
    for (const [k, v] of Object.entries(fields)) {
      const el = form.locator(`[name=${k}]`);
      if ((await el.evaluate((e) => e.tagName)) === 'SELECT') await el.selectOption(v);
      else await el.fill(v);
    }
    await form.locator('button[type=submit]').click();
    const job = page.locator('.job').first();
    await job.locator('.badge.succeeded').waitFor({ timeout: 60_000 });
    lastJobText = (await job.textContent()) ?? '';
    await job.getByRole('link', { name: 'Open dataset' }).click();
    await page.getByRole('heading', { name }).waitFor();
  }

  it('shows the CSV options of the task chosen, and only posts those', async () => {
    await page.goto(projectUrl);
    await page.click('[data-tab="csv"]');
    const form = page.locator('[data-panel="csv"] form');
    const targets = form.locator('input[name=target_columns]');
    const separator = form.locator('select[name=label_separator]');
    expect(await targets.isVisible()).toBe(false);
    expect(await separator.isVisible()).toBe(false);
    await form.locator('select[name=task]').selectOption('regression');
    expect(await targets.isVisible()).toBe(true);
    expect(await targets.isDisabled()).toBe(false);
    expect(await separator.isDisabled()).toBe(true);
    await page.locator('#new-dataset').screenshot({ path: path.join(SHOTS, 'tasks-01-new-regression-csv.png') });
    await form.locator('select[name=task]').selectOption('multilabel');
    expect(await separator.isVisible()).toBe(true);
    expect(await targets.isDisabled()).toBe(true);
    await page.locator('#new-dataset').screenshot({ path: path.join(SHOTS, 'tasks-02-new-multilabel-csv.png') });
  });

  it('imports a multi-label CSV: chips, images per label, cardinality chart; labels edited with checkboxes', async () => {
    await importCsv('Shapes multi', 'multilabel', { path: path.join(dir, 'ml.csv'), images_root: path.join(dir, 'imgs') });
    await expect.poll(() => page.locator('#grid .tile').count()).toBe(N);
    await page.waitForFunction(() => Array.from(document.querySelectorAll<HTMLImageElement>('#grid .tile img')).every((i) => i.complete && i.naturalWidth > 0));
    // Both charts drawn by Chart.js (a canvas it sized).
    await page.waitForFunction(() => ['class-chart', 'cardinality-chart'].every((id) => (document.getElementById(id) as HTMLCanvasElement | null)?.width ?? 0 > 0));
    expect(await page.locator('#grid .tile .chip').count()).toBeGreaterThan(N);
    await shot('tasks-03-multilabel-dataset');

    await page.selectOption('#filters select[name=label]', 'a-rather-long-label-name');
    await expect.poll(() => page.locator('#grid .tile').count()).toBe(5);

    await page.locator('#grid .tile').first().click();
    await page.locator('#modal .modal').waitFor();
    const boxes = page.locator('#modal input[type=checkbox]');
    expect(await boxes.count()).toBe(4);
    await page.locator('#modal label.check', { hasText: 'square' }).locator('input').check();
    await page.locator('#modal .modal').screenshot({ path: path.join(SHOTS, 'tasks-04-multilabel-detail.png') });
    await page.click('#modal button[type=submit]');
    await page.locator('#modal .modal', { hasText: 'Labels saved.' }).waitFor();
    await page.click('#modal [data-close-modal]');
  });

  it('imports a regression CSV: the invalid row reported, target values on tiles, stats and histograms; values edited', async () => {
    await importCsv('Shapes size', 'regression', { path: path.join(dir, 'reg.csv'), images_root: path.join(dir, 'imgs'), target_columns: 'size, count' });
    expect(lastJobText).toContain('invalid_target');
    expect(lastJobText).toContain("column 'size': 'n/a' is not a number");
    await expect.poll(() => page.locator('#grid .tile').count()).toBe(N);
    await page.waitForFunction(() => ['target-chart-0', 'target-chart-1'].every((id) => ((document.getElementById(id) as HTMLCanvasElement | null)?.width ?? 0) > 0));
    expect(await page.locator('#target-stats tbody tr').count()).toBe(2);
    await page.waitForFunction(() => Array.from(document.querySelectorAll<HTMLImageElement>('#grid .tile img')).every((i) => i.complete && i.naturalWidth > 0));
    await shot('tasks-05-regression-dataset');

    await page.locator('#grid .tile').first().click();
    await page.locator('#modal .modal').waitFor();
    await page.fill('#modal input[name=target_0]', '99.5');
    await page.locator('#modal .modal').screenshot({ path: path.join(SHOTS, 'tasks-06-regression-detail.png') });
    await page.click('#modal button[type=submit]');
    await page.locator('#modal .modal', { hasText: 'Values saved.' }).waitFor();
    expect((await page.locator('#grid .tile').first().locator('.target-values').textContent())?.replace(/\s+/g, ' ')).toContain('size 99.5');
    expect(errors).toEqual([]);
  });
});
