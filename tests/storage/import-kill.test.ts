import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.ts';
import { createServices } from '../../src/core/services.ts';
import { writeSyntheticFolder } from '../../src/datasets/synthetic.ts';
import { DatasetDoc } from '../../src/schemas/dataset.ts';
import { parseDoc } from '../../src/storage/json-doc.ts';
import { tempRoot } from './helpers.ts';

/**
 * The studio process dies (SIGKILL) in the middle of an import, after the worker wrote image files
 * whose records had not reached dataset.json yet. The next start removes exactly those files: every
 * file left in images/ and .thumbs/ is one the dataset lists, and every listed one is still there.
 */
const REPO = path.resolve(import.meta.dirname, '../..');
const IMAGES = 120;

let dir: string;
let cleanup: () => Promise<void>;
let port: number;
let server: ChildProcess | undefined;
let stderr = '';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

async function api<T>(method: 'GET' | 'POST', url: string, body?: unknown): Promise<{ status: number; data: T }> {
  const res = await request(`http://127.0.0.1:${port}${url}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const env = (await res.body.json()) as { data: T };
  return { status: res.statusCode, data: env.data };
}

const workspace = () => path.join(dir, 'ws');

async function startServer(): Promise<ChildProcess> {
  // node with tsx as a loader (not the tsx CLI, whose child would survive a SIGKILL of the CLI).
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: REPO,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', STUDIO_WORKSPACE: workspace(), STUDIO_EXAMPLE: 'off' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', (d: Buffer) => void (stderr += d.toString()));
  const t0 = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${stderr.slice(-2000)}`);
    try {
      if ((await api('GET', '/api/projects')).status === 200) return child;
    } catch {
      // not listening yet
    }
    if (Date.now() - t0 > 60_000) throw new Error('server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function names(d: string): Promise<string[]> {
  return (await fs.readdir(d).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();
}

beforeAll(async () => {
  const t = await tempRoot('import-kill');
  dir = t.dir;
  cleanup = t.cleanup;
  port = await freePort();
  await writeSyntheticFolder(path.join(dir, 'src'), { classes: ['circle', 'square', 'triangle'], perClass: IMAGES / 3, size: 256, seed: 7 });
  server = await startServer();
});

afterAll(async () => {
  if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
  await cleanup();
});

describe('an import killed mid-way', () => {
  it('leaves, after the restart, no image or thumbnail file that its dataset does not list', async () => {
    const project = await api<{ id: string }>('POST', '/api/projects', { name: 'kill' });
    expect(project.status).toBe(201);
    const pid = project.data.id;
    const started = await api<{ dataset: { id: string } }>('POST', `/api/projects/${pid}/datasets`, {
      name: 'shapes',
      task: 'classification',
      source: { kind: 'folder', path: path.join(dir, 'src') },
    });
    expect(started.status).toBe(202);
    const did = started.data.dataset.id;
    const dsDir = path.join(workspace(), 'projects', pid, 'datasets', did);

    // Killed as soon as the worker has stored a few images: well before the import's end, and
    // before its first batch of records (every 500 images or 2 s) is due.
    const t0 = Date.now();
    while ((await names(path.join(dsDir, 'images'))).length < 3) {
      if (Date.now() - t0 > 60_000) throw new Error(`the import stored nothing: ${stderr.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    server!.kill('SIGKILL');
    await new Promise((r) => server!.once('exit', r));

    const listed = async () => {
      const ds = parseDoc(DatasetDoc, await fs.readFile(path.join(dsDir, 'dataset.json'), 'utf8'), 'dataset.json');
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
