/**
 * `npm run bench:scale -- --images 10000,100000,1000000` — what a dataset edit, page, split and
 * open cost as the dataset grows (issue "Datasets at scale").
 *
 * Each size runs in its own child process (so peak RSS is that size's). Per size: the records are
 * written straight through the dataset store in batches of 10,000 (classification, 10 classes,
 * two boxes per image; no image files — every figure here is about records), then the studio is
 * started afresh on the workspace and, through the API (`app.inject`): the dataset's first open
 * (first image page), 200 relabels, 100 box edits, a stratified split, 200 filtered pages and 200
 * unfiltered ones at random offsets, and the summary. The import's speed is timed on real
 * generated PNGs through the import job (`--import-images`, default 1,000), once. `--startup`
 * times a studio start on a workspace with ten 100,000-image datasets.
 * One JSON line per figure on stdout: {"figure", "images", "value", "unit", "goal"}.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { buildApp } from '../src/app.ts';
import { loadSettings } from '../src/config.ts';
import { createServices } from '../src/core/services.ts';
import { ProjectDoc } from '../src/schemas/project.ts';
import type { StoredImage } from '../src/schemas/dataset.ts';
import { openWorkspace, type Workspace } from '../src/storage/workspace.ts';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '10000,100000,1000000' },
    one: { type: 'string' },
    'import-images': { type: 'string', default: '1000' },
    startup: { type: 'boolean', default: false },
    'startup-only': { type: 'boolean', default: false },
    'seed-only': { type: 'string' },
    root: { type: 'string' },
    dataset: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});

const CLASSES = 10;
const emit = (figure: string, images: number | null, value: number, unit: string, goal: string | null = null) =>
  console.log(JSON.stringify({ figure, images, value: Math.round(value * 100) / 100, unit, goal }));
const log = (msg: string) => process.stderr.write(`${msg}\n`);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const PID = 'proj-bench001';

function record(i: number): StoredImage {
  const hex = (i + 1).toString(16).padStart(16, '0');
  return {
    id: `img-${i.toString(36).padStart(8, '0')}`,
    file: `images/${hex}.png`,
    width: 640,
    height: 480,
    hash: hex.repeat(4),
    label: `class${i % CLASSES}`,
    annotations: [
      { category: `class${i % CLASSES}`, bbox: [10 + (i % 50), 20, 100, 80] },
      { category: `class${(i + 3) % CLASSES}`, bbox: [200, 150 + (i % 30), 60, 90] },
    ],
    source: `class${i % CLASSES}/img${i}.png`,
  };
}

/** A project and an n-image dataset written straight through the store. */
async function seed(ws: Workspace, did: string, n: number): Promise<void> {
  const now = new Date().toISOString();
  if ((await ws.read(ProjectDoc, ws.projectFile(PID))) === null) {
    await ws.write(ProjectDoc, ws.projectFile(PID), { schema_version: 1, id: PID, name: 'scale', description: '', created_at: now, updated_at: now });
  }
  const classes = Array.from({ length: CLASSES }, (_, c) => `class${c}`);
  await ws.datasets.create(PID, { id: did, name: `${n} images`, task: 'classification', status: 'ready', classes, target_names: [], import_report: null, error: null, created_at: now, updated_at: now });
  for (let start = 0; start < n; start += 10_000) {
    const batch = Array.from({ length: Math.min(10_000, n - start) }, (_, k) => record(start + k));
    await ws.datasets.transact(PID, did, (tx) => tx.append(batch));
  }
}

async function du(dir: string): Promise<number> {
  let total = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    total += e.isDirectory() ? await du(full) : (await fs.stat(full)).size;
  }
  return total;
}

async function one(n: number): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `studio-scale-${n}-`));
  try {
    const root = path.join(dir, 'ws');
    const did = 'ds-scale001';
    // Written by another process, so this one's peak RSS is the studio's alone.
    let t0 = performance.now();
    const w = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, '--seed-only', String(n), '--root', root], { stdio: 'inherit' });
    if (w.status !== 0) throw new Error('seeding failed');
    emit('records written through the store (not timed as import)', n, (performance.now() - t0) / 1000, 's');
    emit('on-disk size of the dataset (records only)', n, (await du(path.join(root, 'projects', PID, 'datasets', did))) / 1e6, 'MB');

    const settings = loadSettings({ STUDIO_WORKSPACE: root, STUDIO_EXAMPLE: 'off' });
    t0 = performance.now();
    const services = await createServices(settings);
    const app = await buildApp(settings, { services });
    emit('studio start-up', n, performance.now() - t0, 'ms');
    const base = `/api/projects/${PID}/datasets/${did}`;
    const req = async (method: 'GET' | 'PATCH' | 'POST', url: string, payload?: unknown) => {
      const s = performance.now();
      const res = await app.inject({ method, url, payload: payload as Record<string, unknown> | undefined });
      const ms = performance.now() - s;
      if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body.slice(0, 300)}`);
      return ms;
    };
    try {
      emit('dataset open (first image page, index built)', n, await req('GET', `${base}/images?page=1&page_size=50`), 'ms');
      const rssNow = (what: string) => emit(`RSS ${what}`, n, process.memoryUsage().rss / 2 ** 20, 'MB');
      rssNow('after the open');
      const rand = (k: number) => Math.floor(Math.random() * k);
      const relabel: number[] = [];
      for (let k = 0; k < 200; k++) relabel.push(await req('PATCH', `${base}/images/${record(rand(n)).id}`, { label: `class${rand(CLASSES + 2)}` }));
      emit('relabel p50', n, pct(relabel, 50), 'ms', '< 20');
      emit('relabel p99', n, pct(relabel, 99), 'ms');
      const boxes: number[] = [];
      for (let k = 0; k < 100; k++) {
        boxes.push(await req('PATCH', `${base}/images/${record(rand(n)).id}`, { annotations: [{ category: 'class1', bbox: [rand(100), rand(100), 50, 40] }] }));
      }
      emit('box edit p50', n, pct(boxes, 50), 'ms');
      emit('peak RSS before the split', n, process.resourceUsage().maxRSS / 1024, 'MB');
      emit('split (stratified, saved)', n, await req('POST', `${base}/splits`, { name: 'bench', ratios: { train: 0.8, val: 0.1, test: 0.1 }, stratify: true, seed: 1 }), 'ms');
      rssNow('after the split');
      const filtered: number[] = [];
      const pages = Math.max(1, Math.floor((n * 0.8) / CLASSES / 50));
      for (let k = 0; k < 200; k++) filtered.push(await req('GET', `${base}/images?label=class${rand(CLASSES)}&split=bench&subset=train&page=${1 + rand(pages)}&page_size=50`));
      emit('filtered page p50 (label + subset)', n, pct(filtered, 50), 'ms');
      emit('filtered page p99 (label + subset)', n, pct(filtered, 99), 'ms', '< 50');
      const plain: number[] = [];
      for (let k = 0; k < 200; k++) plain.push(await req('GET', `${base}/images?page=${1 + rand(Math.floor(n / 50))}&page_size=50`));
      emit('page p99 (no filter)', n, pct(plain, 99), 'ms', '< 50');
      const summary: number[] = [];
      for (let k = 0; k < 20; k++) summary.push(await req('GET', base));
      emit('dataset summary p50', n, pct(summary, 50), 'ms');
      emit('peak RSS', n, process.resourceUsage().maxRSS / 1024, 'MB', n >= 1_000_000 ? '< 1024' : null);
    } finally {
      await app.close();
    }
  } finally {
    if (!values.keep) await fs.rm(dir, { recursive: true, force: true });
  }
}

async function importSpeed(count: number): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-scale-import-'));
  try {
    const src = path.join(dir, 'src');
    for (let c = 0; c < CLASSES; c++) await fs.mkdir(path.join(src, `class${c}`), { recursive: true });
    for (let i = 0; i < count; i++) {
      const px = Buffer.from([(i * 37) % 256, (i * 91) % 256, (i * 13) % 256, Math.floor(i / 256) % 256]);
      await sharp(Buffer.concat(Array.from({ length: 64 }, () => px)), { raw: { width: 8, height: 8, channels: 4 } }).png().toFile(path.join(src, `class${i % CLASSES}`, `${i}.png`));
    }
    const settings = loadSettings({ STUDIO_WORKSPACE: path.join(dir, 'ws'), STUDIO_EXAMPLE: 'off' });
    const services = await createServices(settings);
    const app = await buildApp(settings, { services });
    try {
      const pid = (await app.inject({ method: 'POST', url: '/api/projects', payload: { name: 'import' } })).json().data.id as string;
      const t0 = performance.now();
      const res = await app.inject({ method: 'POST', url: `/api/projects/${pid}/datasets`, payload: { name: 'tiny', task: 'classification', source: { kind: 'folder', path: src } } });
      const { job } = res.json().data as { job: { id: string } };
      await services.jobs.wait(job.id);
      const s = (performance.now() - t0) / 1000;
      emit('import (tiny PNGs, folder, through the import job)', count, count / s, 'images/s');
    } finally {
      await app.close();
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function startup(): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-scale-startup-'));
  try {
    const root = path.join(dir, 'ws');
    for (let d = 0; d < 10; d++) {
      const w = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, '--seed-only', '100000', '--root', root, '--dataset', `ds-scale${String(d).padStart(3, '0')}`], { stdio: 'inherit' });
      if (w.status !== 0) throw new Error('seeding failed');
    }
    log('ten 100,000-image datasets written');
    const settings = loadSettings({ STUDIO_WORKSPACE: root, STUDIO_EXAMPLE: 'off' });
    const t0 = performance.now();
    const services = await createServices(settings);
    const app = await buildApp(settings, { services });
    const list = await app.inject({ method: 'GET', url: `/api/projects/${PID}/datasets` });
    const ms = performance.now() - t0;
    if (list.statusCode !== 200 || (list.json().data as unknown[]).length !== 10) throw new Error(`list: ${list.statusCode}`);
    emit('start-up to the first dataset list, ten 100,000-image datasets', 1_000_000, ms, 'ms', '< 2000');
    emit('peak RSS after that start-up', 1_000_000, process.resourceUsage().maxRSS / 1024, 'MB');
    await app.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

if (values['seed-only']) {
  await seed(await openWorkspace(values.root!), values.dataset ?? 'ds-scale001', Number(values['seed-only']));
} else if (values.one) {
  await one(Number(values.one));
} else if (values['startup-only']) {
  await startup();
} else {
  await importSpeed(Number(values['import-images']));
  for (const n of values.images.split(',').map(Number)) {
    log(`— ${n} images`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, '--one', String(n), ...(values.keep ? ['--keep'] : [])], { stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
  if (values.startup) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, '--startup-only'], { stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
}
