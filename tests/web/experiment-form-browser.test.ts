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
import { makeShapesProject, writeShapesFolder, type ShapesProject } from '../api/runs-fixtures.ts';
import { CHROMIUM, launchBrowser } from './helpers.ts';

/**
 * The new-experiment form in chromium at 1280×800: the validation and test choices under the
 * split keep what was chosen through the split check's swap, nothing in the Data card is cut,
 * and a double click on "Create and start a run" makes one experiment with one run. The
 * screenshot lands in tmp/screenshots/ for a person to look at.
 */
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = path.join(REPO, 'tmp', 'screenshots');

describe.skipIf(!existsSync(CHROMIUM))('the experiment form in a browser', () => {
  let dir: string;
  let app: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let errors: string[];
  let base: string;
  let p: ShapesProject;
  let heldOut: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-expform-'));
    app = await buildApp(loadSettings({ STUDIO_WORKSPACE: path.join(dir, 'ws'), STUDIO_EXAMPLE: 'off' }));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    p = await makeShapesProject(app, dir, { perClass: 4, size: 32 });
    const src = path.join(dir, 'held-out');
    await writeShapesFolder(src, 2, 32, 9);
    const started = await call<{ dataset: { id: string }; job: { id: string } }>(app, 'POST', `/api/projects/${p.pid}/datasets`, { name: 'held-out photos', task: 'classification', source: { kind: 'folder', path: src } });
    expect((await waitForJob(app, started.body.data.job.id, 60_000)).status).toBe('succeeded');
    heldOut = started.body.data.dataset.id;
    ({ browser, page, errors } = await launchBrowser({ width: 1280, height: 800 }));
    await fs.mkdir(SHOTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('keeps the validation choice through the split check, cuts nothing, and creates once on a double click', async () => {
    await page.goto(`${base}/projects/${p.pid}/experiments/new`);
    await page.waitForSelector('select[name="val_dataset_id"]');
    const swapped = page.waitForResponse((r) => r.url().includes('/experiments/split-check'));
    await page.selectOption('select[name="val_dataset_id"]', heldOut);
    await swapped;
    await page.waitForFunction((id) => (document.querySelector('select[name="val_dataset_id"]') as HTMLSelectElement | null)?.value === id, heldOut);
    // the split changes: the choice stays
    const again = page.waitForResponse((r) => r.url().includes('/experiments/split-check'));
    await page.selectOption('select[name="split_name"]', 'main');
    await page.dispatchEvent('select[name="split_name"]', 'change');
    await again;
    expect(await page.$eval('select[name="val_dataset_id"]', (el) => (el as HTMLSelectElement).value)).toBe(heldOut);
    expect(await page.$eval('select[name="test_dataset_id"]', (el) => (el as HTMLSelectElement).value)).toBe('');

    const cut = await page.evaluate(() => {
      const out: string[] = [];
      const card = document.querySelector('#split-check')!.closest('.card') as HTMLElement;
      const box = card.getBoundingClientRect();
      for (const el of Array.from(card.querySelectorAll<HTMLElement>('*'))) {
        const r = el.getBoundingClientRect();
        if (r.width > 0 && r.right > box.right + 1) out.push(`${el.tagName} ${el.className}`);
        if (el.tagName === 'SELECT' && el.scrollWidth > el.clientWidth + 40) out.push(`select ${el.getAttribute('name')} text cut`);
      }
      return out;
    });
    expect(cut).toEqual([]);
    const data = await page.$('#split-check');
    await data!.scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SHOTS, 'experiment-form-second-dataset.png') });

    await page.fill('input[name="name"]', 'Double click');
    await page.fill('input[name="hyperparameters.epochs"]', '1');
    const start = page.locator('button[type=submit][value="1"]');
    await start.dblclick();
    await page.waitForURL(/\/training\?experiment=exp-[0-9a-z]{8}&run=run-[0-9a-z]{8}/);
    const made = (await app.studio.experiments.list(p.pid)).filter((e) => e.name === 'Double click');
    expect(made).toHaveLength(1);
    expect(made[0].val_dataset_id).toBe(heldOut);
    const runs = await app.studio.runs.list(p.pid, made[0].id);
    expect(runs).toHaveLength(1);
    await app.studio.runs.wait(p.pid, made[0].id, runs[0].id);
    expect(errors).toEqual([]);
  }, 120_000);
});
