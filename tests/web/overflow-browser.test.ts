import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadSettings } from '../../src/config.ts';
import { CHROMIUM, launchBrowser, overflowing } from './helpers.ts';
import { WEIGHTS_FIXTURES } from '../models/weights/fixtures.ts';

/**
 * Nothing on the main pages is wider than the card it sits in, at 1280 and at 1024 px (the
 * hardening issue: a table's delete buttons hidden, the Deploy comparison's Validation column cut,
 * metric cards cutting their subtitles). The example project gets a run, an evaluation and an
 * export through the API, and the Models page pretrained weights, so every page has its content.
 */

describe.skipIf(!existsSync(CHROMIUM))('no page element wider than its card', () => {
  let dir: string;
  let app: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let base: string;
  let urls: string[] = [];

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-overflow-'));
    app = await buildApp(loadSettings({ STUDIO_WORKSPACE: path.join(dir, 'ws'), STUDIO_EXAMPLE: 'on' }));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    const api = async (method: string, url: string, payload?: unknown) => (await app.inject({ method: method as 'GET', url, ...(payload ? { payload: payload as object } : {}) })).json().data;
    const until = async (url: string, done: (d: { status: string }) => boolean) => {
      for (let i = 0; i < 600; i++) {
        const d = await api('GET', url);
        if (done(d)) return d;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`timed out: ${url}`);
    };
    const [project] = await api('GET', '/api/projects');
    const [dataset] = await api('GET', `/api/projects/${project.id}/datasets`);
    const exp = await api('POST', `/api/projects/${project.id}/experiments`, { name: 'Shapes with a rather long experiment name', dataset_id: dataset.id, split_name: 'default', model: { architecture: 'small_cnn' }, hyperparameters: { epochs: 2 } });
    const base2 = `/api/projects/${project.id}/experiments/${exp.id}`;
    const { run } = await api('POST', `${base2}/runs`, {});
    await until(`${base2}/runs/${run.id}`, (r) => !['queued', 'running'].includes(r.status));
    await api('POST', `${base2}/evaluation`, { run_id: run.id, checkpoint: 'last', subsets: ['test', 'val'] });
    await until(`${base2}/evaluation`, (e) => !['queued', 'running'].includes(e.status));
    await api('POST', `${base2}/exports`, { run_id: run.id, checkpoint: 'last', variants: ['fp32', 'fp16', 'int8'], benchmark: true });
    await until(`${base2}/exports`, (xs) => Array.isArray(xs) && xs.every((x: { status: string }) => !['queued', 'running'].includes(x.status)));
    // The Models page with pretrained weights (the architecture that has some is the one shown).
    const loaded = await api('POST', '/api/models/mobilenet_v3_small/weights', { path: path.join(WEIGHTS_FIXTURES, 'mobilenet_v3_small.pth') });
    await app.studio.jobs.wait(loaded.job.id);
    const p = `/projects/${project.id}`;
    urls = ['/', p, `${p}/datasets/${dataset.id}`, '/models', `${p}/experiments/new`, `${p}/training`, `${p}/evaluation`, `${p}/exports`];
    ({ browser, page } = await launchBrowser());
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  for (const width of [1280, 1024]) {
    it(`at ${width} px`, { timeout: 120_000 }, async () => {
      await page.setViewportSize({ width, height: 800 });
      const found: Record<string, string[]> = {};
      for (const url of urls) {
        await page.goto(base + url);
        await page.waitForLoadState('networkidle');
        const o = await overflowing(page);
        if (o.length) found[url] = o;
      }
      expect(found).toEqual({});
    });
  }
});
