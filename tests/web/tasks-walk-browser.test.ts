import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadSettings } from '../../src/config.ts';
import { writeMultilabelCsv, writeRegressionCsv } from '../api/task-fixtures.ts';
import { CHROMIUM, launchBrowser } from './helpers.ts';

/**
 * Multi-label and regression walked through as a new user would, in a real browser (Debian's
 * chromium by playwright-core) at 1280×800: import a CSV from the new-dataset form, save a split,
 * create an experiment from the form and start it, watch the run's live curves of the task's
 * metric, evaluate and see the task's board, export, and try an image on the Deploy page.
 * Screenshots land in tmp/screenshots/walk-<task>-*.png for a person to look at.
 */
const SHOTS = path.join(fileURLToPath(new URL('../../', import.meta.url)), 'tmp', 'screenshots');

interface Case {
  task: 'multilabel' | 'regression';
  write(dir: string): Promise<{ csv: string; root: string }>;
  fill(page: Page): Promise<void>;
  /** The run panel's headline metric title and the evaluation board's first figure. */
  metric: string;
  board: RegExp;
  answer: RegExp;
}

const CASES: Case[] = [
  {
    task: 'multilabel',
    write: (dir) => writeMultilabelCsv(dir, 240),
    fill: async () => {},
    metric: 'mAP',
    board: /mAP/,
    answer: /circle|square|triangle/,
  },
  {
    task: 'regression',
    write: (dir) => writeRegressionCsv(dir, 240),
    fill: async (page) => page.locator('[data-panel="csv"] input[name="target_columns"]').fill('radius'),
    metric: 'MAE',
    board: /R²/,
    answer: /radius/,
  },
];

describe.skipIf(!existsSync(CHROMIUM))('multi-label and regression from import to deploy in a browser', () => {
  let dir: string;
  let app: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let base: string;
  const errors: string[] = [];

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-walk-'));
    await fs.mkdir(SHOTS, { recursive: true });
    app = await buildApp(loadSettings({ STUDIO_WORKSPACE: path.join(dir, 'ws'), STUDIO_EXAMPLE: 'off' }));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    ({ browser, page } = await launchBrowser());
    page.on('pageerror', (e) => errors.push(e.message));
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const api = async <T>(url: string): Promise<T> => ((await (await fetch(base + url)).json()) as { data: T }).data;
  async function until<T>(what: string, f: () => Promise<T | null | undefined | false>, ms = 120_000): Promise<T> {
    const t0 = Date.now();
    for (;;) {
      const v = await f();
      if (v) return v;
      if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const shot = async (name: string) => {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  };

  for (const c of CASES) {
    it(`${c.task}: imports a CSV, splits, trains live, evaluates and deploys`, { timeout: 300_000 }, async () => {
      const src = await c.write(path.join(dir, c.task));
      const project = (await (await fetch(`${base}/api/projects`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: `${c.task} walk` }) })).json()) as { data: { id: string } };
      const pid = project.data.id;

      // Import from the new-dataset form's CSV tab.
      await page.goto(`${base}/projects/${pid}`);
      await page.locator('[data-tab="csv"]').click();
      const csv = page.locator('[data-panel="csv"]');
      await csv.locator('input[name="name"]').fill(`${c.task} set`);
      await csv.locator('select[name="task"]').selectOption(c.task);
      await csv.locator('input[name="path"]').fill(src.csv);
      await csv.locator('input[name="images_root"]').fill(src.root);
      await c.fill(page);
      await csv.getByRole('button', { name: 'Import CSV' }).click();
      const ds = await until('the import', async () => (await api<{ id: string; status: string; task: string }[]>(`/api/projects/${pid}/datasets`)).find((d) => d.status === 'ready'));
      expect(ds.task).toBe(c.task);

      // The dataset page: the task's stats; save the default split.
      await page.goto(`${base}/projects/${pid}/datasets/${ds.id}`);
      await page.locator('#split-form').getByRole('button', { name: 'Save split' }).click();
      await page.locator('#splits table').waitFor();
      await shot(`walk-${c.task}-1-dataset`);

      // A new experiment from the form, started at once; no augmentation that moves the shapes.
      await page.goto(`${base}/projects/${pid}/experiments/new`);
      await page.locator('select[name="dataset_id"]').selectOption(ds.id);
      await page.locator(`#task-fields [data-task="${c.task}"]`).waitFor();
      await page.locator('input[name="hyperparameters.epochs"]').fill('8');
      await page.locator('input[name="hyperparameters.lr"]').fill('0.003');
      for (const name of ['augmentation.random_resized_crop.enabled', 'augmentation.horizontal_flip.enabled']) await page.locator(`input[name="${name}"]`).uncheck();
      await shot(`walk-${c.task}-2-experiment`);
      await page.getByRole('button', { name: 'Create and start a run' }).click();

      // The training page follows the run: the task's metric stat and chart fill in live.
      await page.locator('#run-panel').waitFor();
      expect(await page.locator('#run-panel .chart-title').nth(1).textContent()).toBe(c.metric);
      await page.locator('#run-panel[data-points]:not([data-points="0"])').waitFor({ timeout: 120_000 });
      await page.locator('#run-panel[data-status="succeeded"]').waitFor({ timeout: 120_000 });
      expect(await page.locator('[data-last="val_metric"]').textContent()).not.toBe('—');
      await shot(`walk-${c.task}-3-training`);

      // Evaluate the best checkpoint: the task's board and grid.
      await page.goto(`${base}/projects/${pid}/evaluation`);
      await page.locator('#eval-start').click();
      await page.locator('#eval-results').waitFor({ timeout: 120_000 });
      await page.locator('#evaluation', { hasText: c.board }).waitFor();
      await shot(`walk-${c.task}-4-evaluation`);

      // Export fp32 without the benchmark, then try an image.
      await page.goto(`${base}/projects/${pid}/exports`);
      for (const v of ['fp16', 'int8']) await page.locator(`input[name="variant.${v}"]`).uncheck();
      await page.locator('input[name="benchmark"]').uncheck();
      await page.locator('#export-start').click();
      await page.locator('[data-try] input[type="file"]').waitFor({ state: 'attached', timeout: 120_000 });
      const image = (await fs.readdir(src.root)).filter((f) => f.endsWith('.png'))[0];
      await page.locator('[data-try] input[type="file"]').setInputFiles(path.join(src.root, image));
      await page.locator('#try-result', { hasText: c.answer }).waitFor({ timeout: 30_000 });
      await shot(`walk-${c.task}-5-deploy`);

      // Nothing wider than the window at 1280 px.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow).toBeLessThanOrEqual(0);
      expect(errors).toEqual([]);
    });
  }
});
