import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { DocType } from '../../src/schemas/common.ts';
import { openWorkspace, type Workspace } from '../../src/storage/workspace.ts';
import { tempRoot } from './helpers.ts';

const CounterSchema = z.object({ schema_version: z.literal(1), n: z.number().int(), seen: z.array(z.string()) });
type Counter = z.infer<typeof CounterSchema>;
const CounterDoc: DocType<Counter> = { name: 'counter', version: 1, schema: CounterSchema };

let dir: string;
let cleanup: () => Promise<void>;
let ws: Workspace;
beforeEach(async () => {
  ({ dir, cleanup } = await tempRoot('workspace'));
  ws = await openWorkspace(path.join(dir, 'ws'));
});
afterEach(() => cleanup());

describe('openWorkspace', () => {
  it('creates the layout and a versioned studio.json, and keeps it on reopen', async () => {
    expect((await fs.readdir(ws.root)).sort()).toEqual(['jobs', 'projects', 'studio.json', 'tmp']);
    const studio = await ws.studio();
    expect(studio).toMatchObject({ schema_version: 1, example_offered: false });
    await ws.updateStudio((s) => ({ ...s, example_offered: true }));
    const again = await openWorkspace(ws.root);
    expect(await again.studio()).toEqual({ ...studio, example_offered: true });
  });

  it('refuses a studio.json from a newer studio', async () => {
    await fs.writeFile(ws.studioFile(), JSON.stringify({ schema_version: 9, created_at: new Date().toISOString(), example_offered: false }));
    await expect(openWorkspace(ws.root).then((w) => w.studio())).rejects.toMatchObject({ code: 'SCHEMA_VERSION' });
  });
});

describe('JSON documents', () => {
  const file = () => path.join(ws.root, 'projects', 'counter.json');

  it('writes pretty, versioned, validated JSON and reads it back', async () => {
    await ws.write(CounterDoc, file(), { schema_version: 1, n: 3, seen: [] });
    const text = await fs.readFile(file(), 'utf8');
    expect(JSON.parse(text)).toEqual({ schema_version: 1, n: 3, seen: [] });
    expect(await ws.read(CounterDoc, file())).toEqual({ schema_version: 1, n: 3, seen: [] });
  });

  it('reads a missing file as null, and get() as NOT_FOUND', async () => {
    expect(await ws.read(CounterDoc, file())).toBeNull();
    await expect(ws.get(CounterDoc, file(), 'counter', 'c1')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses to write a value that fails its schema', async () => {
    const bad = { schema_version: 1, n: 1.5, seen: [] } as unknown as Counter;
    await expect(ws.write(CounterDoc, file(), bad)).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(await ws.read(CounterDoc, file())).toBeNull();
  });

  it('refuses unknown or missing schema_version with SCHEMA_VERSION, bad content with STORAGE_CORRUPT', async () => {
    await fs.writeFile(file(), JSON.stringify({ schema_version: 2, n: 1, seen: [] }));
    await expect(ws.read(CounterDoc, file())).rejects.toMatchObject({ code: 'SCHEMA_VERSION', message: expect.stringContaining('newer studio') });
    await fs.writeFile(file(), JSON.stringify({ n: 1, seen: [] }));
    await expect(ws.read(CounterDoc, file())).rejects.toMatchObject({ code: 'SCHEMA_VERSION' });
    await fs.writeFile(file(), '{"schema_version":1,"n":');
    await expect(ws.read(CounterDoc, file())).rejects.toMatchObject({ code: 'STORAGE_CORRUPT' });
    await fs.writeFile(file(), JSON.stringify({ schema_version: 1, n: 'x', seen: [] }));
    await expect(ws.read(CounterDoc, file())).rejects.toMatchObject({ code: 'STORAGE_CORRUPT' });
  });

  it('does not let a __proto__ key in a stored file reach any prototype', async () => {
    await fs.writeFile(file(), '{"schema_version":1,"n":1,"seen":[],"__proto__":{"polluted":true}}');
    const v = await ws.read(CounterDoc, file());
    expect(v).toEqual({ schema_version: 1, n: 1, seen: [] });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
  });

  it('serves repeated reads from the cache and sees a change made behind its back', async () => {
    await ws.write(CounterDoc, file(), { schema_version: 1, n: 1, seen: [] });
    const a = await ws.read(CounterDoc, file());
    const b = await ws.read(CounterDoc, file());
    expect(b).toBe(a); // same parsed object: no re-parse
    // Another process replaces the file (new inode, as an atomic write does).
    const other = await openWorkspace(ws.root);
    await other.write(CounterDoc, file(), { schema_version: 1, n: 2, seen: [] });
    expect((await ws.read(CounterDoc, file()))?.n).toBe(2);
  });

  it('update() hands out a private copy: a throwing update changes nothing', async () => {
    await ws.write(CounterDoc, file(), { schema_version: 1, n: 1, seen: [] });
    const before = await ws.read(CounterDoc, file());
    await expect(
      ws.update(CounterDoc, file(), (c) => {
        c!.n = 99;
        c!.seen.push('x');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(before).toEqual({ schema_version: 1, n: 1, seen: [] });
    expect(await ws.read(CounterDoc, file())).toEqual({ schema_version: 1, n: 1, seen: [] });
    expect(await fs.readdir(path.dirname(file()))).toEqual(['counter.json']);
  });

  it('modify() of a file whose folder is gone is NOT_FOUND and does not recreate the folder', async () => {
    const gone = path.join(ws.root, 'projects', 'gone', 'counter.json');
    await expect(ws.modify(CounterDoc, gone, 'counter', 'c', (c) => c)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await ws.exists(path.dirname(gone))).toBe(false);
    await ws.update(CounterDoc, gone, (c) => c ?? { schema_version: 1 as const, n: 0, seen: [] });
    expect((await ws.modify(CounterDoc, gone, 'counter', 'c', (c) => ({ ...c, n: c.n + 1 }))).n).toBe(1);
  });

  it('loses no update among many concurrent ones in one process', async () => {
    await ws.write(CounterDoc, file(), { schema_version: 1, n: 0, seen: [] });
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        ws.update(CounterDoc, file(), async (c) => {
          await new Promise((r) => setTimeout(r, Math.random() * 3));
          return { ...c!, n: c!.n + 1, seen: [...c!.seen, `t${i}`] };
        }),
      ),
    );
    const end = await ws.read(CounterDoc, file());
    expect(end?.n).toBe(40);
    expect(new Set(end?.seen).size).toBe(40);
  });

  it('loses no update when two processes update the same file at once', async () => {
    await ws.write(CounterDoc, file(), { schema_version: 1, n: 0, seen: [] });
    const script = path.resolve(import.meta.dirname, 'counter-writer.ts');
        const run = (tag: string) =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', script, ws.root, file(), tag, '25'], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer ${tag} exited ${code}: ${err}`))));
      });
    // This process joins in too.
    const mine = (async () => {
      for (let i = 0; i < 25; i++) await ws.update(CounterDoc, file(), (c) => ({ ...c!, n: c!.n + 1, seen: [...c!.seen, `main-${i}`] }));
    })();
    await Promise.all([run('a'), run('b'), mine]);
    const end = await ws.read(CounterDoc, file());
    expect(end?.n).toBe(75);
    expect(new Set(end?.seen).size).toBe(75);
  });
});

describe('paths', () => {
  it('refuses ids that are not ids before joining them into a path', () => {
    for (const bad of ['..', '../x', 'proj-../../', 'proj-ABCDEFGH', 'proj-1234567', '']) {
      expect(() => ws.projectDir(bad), bad).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    }
    expect(() => ws.datasetDir('proj-12345678', 'ds-../../..')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    expect(() => ws.jobFile('job-1234567/')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    expect(ws.datasetFile('proj-12345678', 'ds-abcdefgh')).toBe(path.join(ws.root, 'projects/proj-12345678/datasets/ds-abcdefgh/dataset.json'));
  });

  it('never reads or writes outside the workspace', async () => {
    await expect(ws.write(CounterDoc, path.join(dir, 'outside.json'), { schema_version: 1, n: 0, seen: [] })).rejects.toMatchObject({ code: 'PATH_OUTSIDE_ROOT' });
    await expect(ws.removeTree(dir)).rejects.toMatchObject({ code: 'PATH_OUTSIDE_ROOT' });
    await expect(ws.removeTree(ws.root)).rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(ws.removeTemp(ws.projectsDir())).rejects.toMatchObject({ code: 'PATH_OUTSIDE_ROOT' });
  });

  it('stores dataset files under safe names and serves only images/ and .thumbs/ of that dataset', async () => {
    const p = 'proj-12345678';
    const d = 'ds-abcdefgh';
    await fs.mkdir(ws.datasetDir(p, d), { recursive: true });
    expect(await ws.writeImage(p, d, '0123456789abcdef.png', Buffer.from('png'))).toBe('images/0123456789abcdef.png');
    expect(await ws.writeThumb(p, d, '0123456789abcdef.webp', Buffer.from('webp'))).toBe('.thumbs/0123456789abcdef.webp');
    await expect(ws.writeImage(p, d, '../x.png', Buffer.from('x'))).rejects.toMatchObject({ code: 'PATH_OUTSIDE_ROOT' });
    await expect(ws.writeImage(p, d, '.hidden', Buffer.from('x'))).rejects.toMatchObject({ code: 'PATH_OUTSIDE_ROOT' });

    const real = await ws.datasetFilePath(p, d, 'images/0123456789abcdef.png');
    expect(await fs.readFile(real, 'utf8')).toBe('png');
    await fs.writeFile(path.join(ws.datasetDir(p, d), 'dataset.json'), '{}');
    await expect(ws.datasetFilePath(p, d, 'dataset.json')).rejects.toMatchObject({ code: 'PATH_OUTSIDE_ROOT' });
    await expect(ws.datasetFilePath(p, d, 'images/../../../../studio.json')).rejects.toMatchObject({ code: 'PATH_OUTSIDE_ROOT' });
    await expect(ws.datasetFilePath(p, d, 'images/missing.png')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // A symlink planted among the images pointing out of the dataset is refused.
    await fs.symlink(ws.studioFile(), path.join(ws.imagesDir(p, d), 'ffffffffffffffff.png'));
    await expect(ws.datasetFilePath(p, d, 'images/ffffffffffffffff.png')).rejects.toMatchObject({ code: 'PATH_OUTSIDE_ROOT' });
    // So is a whole images/ folder swapped for a symlink to somewhere else.
    const elsewhere = path.join(dir, 'elsewhere');
    await fs.mkdir(elsewhere);
    await fs.writeFile(path.join(elsewhere, '0123456789abcdef.png'), 'foreign');
    await fs.rm(ws.imagesDir(p, d), { recursive: true });
    await fs.symlink(elsewhere, ws.imagesDir(p, d));
    await expect(ws.datasetFilePath(p, d, 'images/0123456789abcdef.png')).rejects.toMatchObject({ code: 'PATH_OUTSIDE_ROOT' });
  });
});

describe('temp files and jobs', () => {
  it('hands out temp paths that the start-up cleanup keeps while we live', async () => {
    const f = await ws.tempFile('upload');
    await fs.writeFile(f, 'zip bytes');
    const d = await ws.tempDir('example');
    expect(await ws.cleanupOrphans()).toEqual([]);
    expect(await fs.readFile(f, 'utf8')).toBe('zip bytes');
    await ws.removeTemp(d);
    await ws.removeTemp(f);
    expect(await fs.readdir(ws.tmpDir())).toEqual([]);
  });

  it('stores, updates and lists job records', async () => {
    const now = new Date().toISOString();
    await ws.writeJob({ schema_version: 1, id: 'job-00000001', kind: 'import', status: 'queued', progress: 0, created_at: now, updated_at: now });
    await ws.updateJob('job-00000001', (j) => ({ ...j, status: 'running', progress: 0.5 }));
    await fs.writeFile(path.join(ws.jobsDir(), 'job-00000002.json'), 'not json');
    await fs.writeFile(path.join(ws.jobsDir(), 'README'), 'x');
    const jobs = await ws.listJobs();
    expect(jobs.map((j) => [j.id, j.status, j.progress])).toEqual([['job-00000001', 'running', 0.5]]);
    await expect(ws.updateJob('job-00000003', (j) => j)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
