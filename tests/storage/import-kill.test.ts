import type { ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.ts';
import { createServices } from '../../src/core/services.ts';
import { writeSyntheticFolder } from '../../src/datasets/synthetic.ts';
import { Workspace } from '../../src/storage/workspace.ts';
import { freePort, studioProcess, type StudioProcess } from '../studio-process.ts';
import { tempRoot } from './helpers.ts';

/**
 * The studio process dies (SIGKILL) in the middle of an import, after the worker wrote image files
 * whose records had not reached dataset.json yet. The next start removes exactly those files: every
 * file left in images/ and .thumbs/ is one the dataset lists, and every listed one is still there.
 */
const IMAGES = 120;

let dir: string;
let cleanup: () => Promise<void>;
let studio: StudioProcess;
let server: ChildProcess | undefined;

const workspace = () => path.join(dir, 'ws');

async function names(d: string): Promise<string[]> {
  return (await fs.readdir(d).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();
}

beforeAll(async () => {
  const t = await tempRoot('import-kill');
  dir = t.dir;
  cleanup = t.cleanup;
  studio = studioProcess(await freePort(), workspace());
  await writeSyntheticFolder(path.join(dir, 'src'), { classes: ['circle', 'square', 'triangle'], perClass: IMAGES / 3, size: 256, seed: 7 });
  server = await studio.start();
});

afterAll(async () => {
  if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
  await cleanup();
});

describe('an import killed mid-way', () => {
  it('leaves, after the restart, no image or thumbnail file that its dataset does not list', async () => {
    const project = await studio.api<{ id: string }>('POST', '/api/projects', { name: 'kill' });
    expect(project.status).toBe(201);
    const pid = project.body.data.id;
    const started = await studio.api<{ dataset: { id: string } }>('POST', `/api/projects/${pid}/datasets`, {
      name: 'shapes',
      task: 'classification',
      source: { kind: 'folder', path: path.join(dir, 'src') },
    });
    expect(started.status).toBe(202);
    const did = started.body.data.dataset.id;
    const dsDir = path.join(workspace(), 'projects', pid, 'datasets', did);

    // Killed as soon as the worker has stored a few images: well before the import's end, and
    // before its first batch of records (every 500 images or 2 s) is due.
    const t0 = Date.now();
    while ((await names(path.join(dsDir, 'images'))).length < 3) {
      if (Date.now() - t0 > 60_000) throw new Error(`the import stored nothing: ${studio.stderr().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    server!.kill('SIGKILL');
    await new Promise((r) => server!.once('exit', r));

    const listed = async () => {
      const ds = await new Workspace(workspace()).getDataset(pid, did);
      const images = ds.images.map((i) => i.file.slice('images/'.length)).sort();
      return { ds, images, thumbs: images.map((f) => f.replace(/\.[^.]+$/, '.webp')).sort() };
    };
    const before = await listed();
    const onDisk = await names(path.join(dsDir, 'images'));
    expect(before.ds.status).toBe('importing');
    expect(before.images.length).toBeLessThan(IMAGES);
    // The situation under test: files on disk that dataset.json does not list.
    expect(onDisk.length).toBeGreaterThan(before.images.length);
    expect(onDisk).toEqual(expect.arrayContaining(before.images));

    // The restart: the same start-up the server runs, before it would take requests.
    const services = await createServices(loadSettings({ STUDIO_WORKSPACE: workspace(), STUDIO_EXAMPLE: 'off' }));
    try {
      const after = await listed();
      expect(after.ds.status).toBe('failed');
      expect(after.ds.error?.code).toBe('INTERRUPTED');
      expect(after.images).toEqual(before.images);
      expect(await names(path.join(dsDir, 'images'))).toEqual(after.images);
      expect(await names(path.join(dsDir, '.thumbs'))).toEqual(after.thumbs);
    } finally {
      await services.close();
    }
  });
});
