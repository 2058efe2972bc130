import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDatasetsService } from '../../src/core/datasets.ts';
import { createProjectsService } from '../../src/core/projects.ts';
import { DatasetDoc } from '../../src/schemas/dataset.ts';
import { removeUnrecordedImages } from '../../src/storage/cleanup.ts';
import { createImportSink, type SinkImage } from '../../src/storage/import-sink.ts';
import { openWorkspace, type Workspace } from '../../src/storage/workspace.ts';
import { tempRoot } from './helpers.ts';

let cleanup: () => Promise<void>;
let dir: string;
let ws: Workspace;
let pid: string;
let lines: string[];
const log = (l: string) => void lines.push(l);

beforeEach(async () => {
  const t = await tempRoot('sweep');
  cleanup = t.cleanup;
  dir = t.dir;
  ws = await openWorkspace(path.join(t.dir, 'ws'));
  pid = (await createProjectsService(ws).create({ name: 'p' })).id;
  lines = [];
});
afterEach(() => cleanup());

function image(n: number): SinkImage {
  const buffer = Buffer.from(`bytes ${n}`);
  return { hash: createHash('sha256').update(buffer).digest('hex'), ext: n % 2 ? 'jpg' : 'png', buffer, thumbnail: Buffer.from(`t${n}`), width: 4, height: 3, label: 'a', source_path: `${n}.jpg` };
}

/** A dataset whose sink recorded images 1..recorded, then wrote files for the rest and "died". */
async function datasetWithOrphans(recorded: number, orphans: number, status: 'ready' | 'failed' | 'importing' = 'failed'): Promise<string> {
  const did = (await createDatasetsService(ws).create(pid, { name: 'd', task: 'classification' })).id;
  const sink = createImportSink(ws, pid, did, { flushEvery: 1_000_000, flushIntervalMs: 3_600_000 });
  for (let i = 1; i <= recorded; i++) await sink.addImage(image(i));
  await sink.flush();
  // The dying import: its files are on disk, their batch never reached dataset.json.
  const dead = createImportSink(ws, pid, did, { flushEvery: 1_000_000, flushIntervalMs: 3_600_000 });
  for (let i = recorded + 1; i <= recorded + orphans; i++) await dead.addImage(image(i));
  if (status !== 'importing') await ws.modify(DatasetDoc, ws.datasetFile(pid, did), 'dataset', did, (ds) => ({ ...ds, status }));
  return did;
}

async function listing(did: string): Promise<{ images: string[]; thumbs: string[] }> {
  const ls = async (d: string) => (await fs.readdir(d).catch(() => [] as string[])).sort();
  return { images: await ls(ws.imagesDir(pid, did)), thumbs: await ls(ws.thumbsDir(pid, did)) };
}

async function recordedFiles(did: string): Promise<{ images: string[]; thumbs: string[] }> {
  const ds = await ws.getDataset(pid, did);
  const images = ds.images.map((i) => i.file.slice('images/'.length)).sort();
  return { images, thumbs: images.map((f) => f.replace(/\.[^.]+$/, '.webp')).sort() };
}

describe('removeUnrecordedImages', () => {
  it('removes exactly the image and thumbnail files that dataset.json does not record', async () => {
    const did = await datasetWithOrphans(4, 3);
    const before = await listing(did);
    expect(before.images).toHaveLength(7);
    expect(before.thumbs).toHaveLength(7);
    const expected = await recordedFiles(did);
    expect(expected.images).toHaveLength(4);

    const out = await removeUnrecordedImages(ws, log);

    expect(await listing(did)).toEqual(expected);
    const gone = [...before.images.filter((f) => !expected.images.includes(f)).map((f) => `images/${f}`), ...before.thumbs.filter((f) => !expected.thumbs.includes(f)).map((f) => `.thumbs/${f}`)].sort();
    expect(gone).toHaveLength(6);
    expect(out.removed.map((r) => ({ ...r, files: [...r.files].sort() }))).toEqual([{ project_id: pid, dataset_id: did, files: gone }]);
    expect(lines).toEqual([`dataset ${did} of project ${pid}: removed 6 unrecorded files (3 images, 3 thumbnails)`]);
    // Every recorded file is still served.
    const ds = await ws.getDataset(pid, did);
    for (const img of ds.images) await expect(ws.datasetFilePath(pid, did, img.file)).resolves.toContain(img.file);

    // A second pass finds nothing and logs nothing.
    lines = [];
    expect(await removeUnrecordedImages(ws, log)).toEqual({ removed: [], untouched: [] });
    expect(lines).toEqual([]);
  });

  it('treats each dataset by its own dataset.json, ready ones included', async () => {
    const a = await datasetWithOrphans(2, 1, 'ready');
    const b = await datasetWithOrphans(0, 2, 'failed');
    // b's orphans are the very bytes (so the same names) that a records: b's copies go, a's stay.
    const expectedA = await recordedFiles(a);
    expect((await listing(b)).images).toEqual(expectedA.images);
    const out = await removeUnrecordedImages(ws, log);
    expect(await listing(a)).toEqual(expectedA);
    expect(await listing(b)).toEqual({ images: [], thumbs: [] });
    expect(out.removed.map((r) => [r.dataset_id, r.files.length]).sort()).toEqual(
      [
        [a, 2],
        [b, 4],
      ].sort(),
    );
  });

  it('leaves alone what it does not recognise: other names, folders, symlinks, temp files', async () => {
    const did = await datasetWithOrphans(1, 0);
    const imagesDir = ws.imagesDir(pid, did);
    const thumbsDir = ws.thumbsDir(pid, did);
    const outside = path.join(dir, 'outside.jpg');
    await fs.writeFile(outside, 'precious');
    const keep = [
      path.join(imagesDir, 'notes.txt'),
      path.join(imagesDir, 'ABCDEF0123456789.jpg'), // upper-case hex: not a name the sink writes
      path.join(imagesDir, '0123456789abcdef.toolongext'),
      path.join(thumbsDir, '0123456789abcdef.png'), // thumbnails are always webp
      path.join(imagesDir, `.0123456789abcdef.jpg.${process.pid}.1.0123456789ab.tmp`), // a live temp file
      path.join(ws.datasetDir(pid, did), '0123456789abcdef.jpg'), // not in images/
    ];
    for (const f of keep) await fs.writeFile(f, 'x');
    await fs.mkdir(path.join(imagesDir, 'fedcba9876543210.jpg'));
    // A symlink with a candidate's name, pointing out of the workspace: neither it nor its target goes.
    await fs.symlink(outside, path.join(imagesDir, '1111111111111111.jpg'));
    await removeUnrecordedImages(ws, log);
    for (const f of keep) await expect(fs.readFile(f, 'utf8')).resolves.toBe('x');
    expect((await fs.lstat(path.join(imagesDir, 'fedcba9876543210.jpg'))).isDirectory()).toBe(true);
    expect((await fs.lstat(path.join(imagesDir, '1111111111111111.jpg'))).isSymbolicLink()).toBe(true);
    expect(await fs.readFile(outside, 'utf8')).toBe('precious');
  });

  it('never follows a symlinked images/ or .thumbs/ folder out of the workspace', async () => {
    const did = await datasetWithOrphans(0, 0);
    const elsewhere = path.join(dir, 'elsewhere');
    await fs.mkdir(elsewhere);
    await fs.writeFile(path.join(elsewhere, '0123456789abcdef.jpg'), 'precious');
    await fs.writeFile(path.join(elsewhere, '0123456789abcdef.webp'), 'precious');
    await fs.rm(ws.imagesDir(pid, did), { recursive: true, force: true });
    await fs.rm(ws.thumbsDir(pid, did), { recursive: true, force: true });
    await fs.symlink(elsewhere, ws.imagesDir(pid, did));
    await fs.symlink(elsewhere, ws.thumbsDir(pid, did));
    expect((await removeUnrecordedImages(ws, log)).removed).toEqual([]);
    expect((await fs.readdir(elsewhere)).sort()).toEqual(['0123456789abcdef.jpg', '0123456789abcdef.webp']);
  });

  it('leaves a dataset with unreadable dataset.json, or one still importing, untouched and logs it', async () => {
    const broken = await datasetWithOrphans(1, 1);
    const importing = await datasetWithOrphans(1, 1, 'importing');
    const swept = await datasetWithOrphans(1, 1);
    const brokenBefore = await listing(broken);
    const importingBefore = await listing(importing);
    await fs.writeFile(ws.datasetFile(pid, broken), '{"schema_version": 1, "id": ');
    // A fresh Workspace: the one above has the old document cached.
    const fresh = await openWorkspace(ws.root);
    const out = await removeUnrecordedImages(fresh, log);
    expect(await listing(broken)).toEqual(brokenBefore);
    expect(await listing(importing)).toEqual(importingBefore);
    expect(out.removed.map((r) => r.dataset_id)).toEqual([swept]);
    expect(out.untouched.map((u) => u.dataset_id).sort()).toEqual([broken, importing].sort());
    expect(lines.find((l) => l.includes(broken))).toMatch(/dataset\.json is unreadable.*left alone/);
    expect(lines.find((l) => l.includes(importing))).toMatch(/still in progress.*left alone/);
  });

  it('skips folders that are not datasets and copes with an empty workspace', async () => {
    await fs.mkdir(path.join(ws.datasetsDir(pid), 'not-a-dataset', 'images'), { recursive: true });
    await fs.writeFile(path.join(ws.datasetsDir(pid), 'not-a-dataset', 'images', '0123456789abcdef.jpg'), 'x');
    await fs.mkdir(path.join(ws.datasetsDir(pid), 'ds-00000000', 'images'), { recursive: true });
    await fs.writeFile(path.join(ws.datasetsDir(pid), 'ds-00000000', 'images', '0123456789abcdef.jpg'), 'x');
    const out = await removeUnrecordedImages(ws, log);
    expect(out.removed).toEqual([]);
    expect(out.untouched).toEqual([{ project_id: pid, dataset_id: 'ds-00000000', reason: 'no dataset.json' }]);
    await expect(fs.readFile(path.join(ws.datasetsDir(pid), 'not-a-dataset', 'images', '0123456789abcdef.jpg'), 'utf8')).resolves.toBe('x');
    await expect(fs.readFile(path.join(ws.datasetsDir(pid), 'ds-00000000', 'images', '0123456789abcdef.jpg'), 'utf8')).resolves.toBe('x');
  });
});
