import { promises as fs } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { body, call, makeImageFolder, makeStudio, shapeImage, waitForJob, type TestStudio } from './helpers.ts';

interface Dataset {
  id: string;
  name: string;
  status: string;
  classes: string[];
  image_count: number;
  class_counts: Record<string, number>;
  split_names: string[];
  import_report: { imported: number; skipped: { file: string; reason: string; detail?: string }[] };
}
interface Item {
  id: string;
  file: string;
  width: number;
  height: number;
  label: string | null;
  split: string | null;
}
interface Page {
  items: Item[];
  page: number;
  page_size: number;
  total: number;
}
interface Split {
  name: string;
  counts: Record<string, number>;
  per_class: Record<string, Record<string, number>>;
}

/** A PNG whose header declares 50,000 × 50,000 pixels: a few dozen bytes that would decode to 2.5 GP. */
function gigapixelPng(): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(50_000, 0);
  ihdr.writeUInt32BE(50_000, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

let s: TestStudio;
let pid: string;
let ds: Dataset;
let base: string;

beforeAll(async () => {
  s = await makeStudio();
  pid = (await call<{ id: string }>(s.app, 'POST', '/api/projects', { name: 'grid' })).body.data.id;
  const src = path.join(s.dir, 'src');
  await makeImageFolder(src, { circle: 12, square: 8, triangle: 5 });
  const tiff = await sharp(await shapeImage('square', 500)).tiff().toBuffer();
  await fs.writeFile(path.join(src, 'square', 'scan.tif'), tiff);
  await fs.writeFile(path.join(src, 'circle', 'huge.png'), gigapixelPng());
  const started = await call<{ dataset: Dataset; job: { id: string } }>(s.app, 'POST', `/api/projects/${pid}/datasets`, {
    name: 'shapes',
    task: 'classification',
    source: { kind: 'folder', path: src },
  });
  await waitForJob(s.app, started.body.data.job.id);
  ds = (await call<Dataset>(s.app, 'GET', `/api/projects/${pid}/datasets/${started.body.data.dataset.id}`)).body.data;
  base = `/api/projects/${pid}/datasets/${ds.id}`;
});
afterAll(async () => s.close());

describe('datasets', () => {
  it('imported the folder; a gigapixel PNG is skipped, not decoded', async () => {
    expect(ds.status).toBe('ready');
    expect(ds.image_count).toBe(26);
    expect(ds.class_counts).toEqual({ circle: 12, square: 9, triangle: 5 });
    const huge = ds.import_report.skipped.find((x) => x.file.endsWith('huge.png'));
    expect(huge?.reason).toBe('too_large');
  });

  it('lists, renames and deletes datasets', async () => {
    const list = await call<Dataset[]>(s.app, 'GET', `/api/projects/${pid}/datasets`);
    expect(list.body.data.map((d) => d.id)).toContain(ds.id);
    const renamed = await call<Dataset>(s.app, 'PATCH', base, { name: 'Shapes <b>bold</b>' });
    expect(renamed.body.data.name).toBe('Shapes <b>bold</b>');
    expect((await call(s.app, 'PATCH', base, { name: '' })).body.error.code).toBe('VALIDATION_ERROR');
    expect((await call(s.app, 'PATCH', base, { task: 'detection' })).body.error.code).toBe('VALIDATION_ERROR');
    expect((await call(s.app, 'GET', `/api/projects/${pid}/datasets/ds-00000000`)).body.error.code).toBe('NOT_FOUND');
    expect((await call(s.app, 'DELETE', `/api/projects/${pid}/datasets/ds-00000000`)).body.error.code).toBe('NOT_FOUND');
  });
});

describe('images', () => {
  it('pages through the grid and filters by class', async () => {
    const p1 = (await call<Page>(s.app, 'GET', `${base}/images?page=1&page_size=10`)).body.data;
    expect(p1).toMatchObject({ page: 1, page_size: 10, total: 26 });
    expect(p1.items).toHaveLength(10);
    expect(p1.items[0]).toMatchObject({ width: 64, height: 48 });
    expect(p1.items[0].id).toMatchObject(expect.stringMatching(/^img-/));
    const p3 = (await call<Page>(s.app, 'GET', `${base}/images?page=3&page_size=10`)).body.data;
    expect(p3.items).toHaveLength(6);
    const all = new Set([...p1.items, ...p3.items].map((i) => i.id));
    expect(all.size).toBe(16);
    const tri = (await call<Page>(s.app, 'GET', `${base}/images?label=triangle&page_size=100`)).body.data;
    expect(tri.total).toBe(5);
    expect(tri.items.every((i) => i.label === 'triangle')).toBe(true);
    const beyond = (await call<Page>(s.app, 'GET', `${base}/images?page=99`)).body.data;
    expect(beyond.items).toEqual([]);
    expect((await call(s.app, 'GET', `${base}/images?page_size=100000`)).body.error.code).toBe('VALIDATION_ERROR');
  });

  it('serves thumbnails and files with their sniffed type and nosniff', async () => {
    const item = (await call<Page>(s.app, 'GET', `${base}/images?label=circle&page_size=1`)).body.data.items[0];
    const thumb = await s.app.inject({ method: 'GET', url: `${base}/images/${item.id}/thumbnail` });
    expect(thumb.statusCode).toBe(200);
    expect(thumb.headers['content-type']).toBe('image/webp');
    expect(thumb.headers['x-content-type-options']).toBe('nosniff');
    const meta = await sharp(thumb.rawPayload).metadata();
    expect(Math.max(meta.width, meta.height)).toBeLessThanOrEqual(128);
    const file = await s.app.inject({ method: 'GET', url: `${base}/images/${item.id}/file` });
    expect(file.headers['content-type']).toBe('image/png');
    expect(file.headers['x-content-type-options']).toBe('nosniff');
    expect(file.rawPayload.subarray(1, 4).toString()).toBe('PNG');
    const detail = (await call<{ id: string; label: string; width: number }>(s.app, 'GET', `${base}/images/${item.id}`)).body.data;
    expect(detail).toMatchObject({ id: item.id, label: 'circle', width: 64 });
  });

  it('converts TIFF to PNG for the browser, and gives the original on request', async () => {
    const items = (await call<Page>(s.app, 'GET', `${base}/images?label=square&page_size=100`)).body.data.items;
    const tif = items.find((i) => i.file.endsWith('.tif'));
    expect(tif).toBeDefined();
    const shown = await s.app.inject({ method: 'GET', url: `${base}/images/${tif!.id}/file` });
    expect(shown.headers['content-type']).toBe('image/png');
    const original = await s.app.inject({ method: 'GET', url: `${base}/images/${tif!.id}/file?original=1` });
    expect(original.headers['content-type']).toBe('image/tiff');
  });

  it('never serves a stored file whose bytes are markup, whatever its name', async () => {
    const item = (await call<Page>(s.app, 'GET', `${base}/images?label=triangle&page_size=1`)).body.data.items[0];
    // Plant markup under the image's own stored name (a tampered or corrupted workspace).
    const stored = path.join(s.settings.workspace, 'projects', pid, 'datasets', ds.id, item.file);
    const before = await fs.readFile(stored);
    await fs.writeFile(stored, '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>');
    try {
      const res = await s.app.inject({ method: 'GET', url: `${base}/images/${item.id}/file` });
      expect(res.statusCode).toBe(415);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(body(res).error.code).toBe('UNSUPPORTED_MEDIA');
      expect(res.body).not.toContain('<svg');
    } finally {
      await fs.writeFile(stored, before);
    }
  });

  it('refuses ids and paths that are not images of the dataset', async () => {
    for (const url of [
      `${base}/images/img-00000000/file`,
      `${base}/images/..%2F..%2Fdataset.json/file`,
      `${base}/images/img-../thumbnail`,
      `/api/projects/${pid}/datasets/ds-00000000/images/img-00000000/file`,
    ]) {
      const res = await s.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
      expect(body(res).error.code).toBe('NOT_FOUND');
    }
  });

  it('relabels and deletes an image', async () => {
    const item = (await call<Page>(s.app, 'GET', `${base}/images?label=triangle&page_size=1`)).body.data.items[0];
    const relabeled = await call<{ label: string }>(s.app, 'PATCH', `${base}/images/${item.id}`, { label: 'hexagon' });
    expect(relabeled.body.data.label).toBe('hexagon');
    expect((await call(s.app, 'PATCH', `${base}/images/${item.id}`, { label: 5 })).body.error.code).toBe('VALIDATION_ERROR');
    expect((await call(s.app, 'PATCH', `${base}/images/${item.id}`, { label: 'x', extra: 1 })).body.error.code).toBe('VALIDATION_ERROR');
    const del = await call(s.app, 'DELETE', `${base}/images/${item.id}`);
    expect(del.status).toBe(200);
    expect((await call(s.app, 'GET', `${base}/images/${item.id}`)).status).toBe(404);
    expect((await s.app.inject({ method: 'GET', url: `${base}/images/${item.id}/thumbnail` })).statusCode).toBe(404);
    const after = (await call<Dataset>(s.app, 'GET', base)).body.data;
    expect(after.image_count).toBe(25);
  });

  it('replaces an image’s boxes, alone or with its label; refuses a bad box by its path', async () => {
    const item = (await call<Page>(s.app, 'GET', `${base}/images?label=square&page_size=1`)).body.data.items[0];
    const boxes = [{ category: 'square', bbox: [4, 5, 20, 22] }, { category: '  lid ', bbox: [30, 30, 8, 8] }];
    const edited = await call<{ annotations: unknown[]; label: string }>(s.app, 'PATCH', `${base}/images/${item.id}`, { annotations: boxes });
    expect(edited.status).toBe(200);
    expect(edited.body.data.annotations).toEqual([{ category: 'square', bbox: [4, 5, 20, 22] }, { category: 'lid', bbox: [30, 30, 8, 8] }]);
    expect(edited.body.data.label).toBe('square');
    const both = await call<{ annotations: unknown[]; label: string }>(s.app, 'PATCH', `${base}/images/${item.id}`, { label: 'box', annotations: [] });
    expect(both.body.data).toMatchObject({ label: 'box', annotations: [] });
    const bad = await call(s.app, 'PATCH', `${base}/images/${item.id}`, { annotations: [{ category: 'x', bbox: [0, 0, -1, 2] }] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('annotations.0.bbox.2');
    expect((await call(s.app, 'PATCH', `${base}/images/${item.id}`, {})).body.error.code).toBe('VALIDATION_ERROR');
    await call(s.app, 'PATCH', `${base}/images/${item.id}`, { label: 'square' });
  });

  it('two concurrent PATCHes of the same dataset both land', async () => {
    const items = (await call<Page>(s.app, 'GET', `${base}/images?label=circle&page_size=4`)).body.data.items;
    const results = await Promise.all([
      call(s.app, 'PATCH', `${base}/images/${items[0].id}`, { label: 'ellipse' }),
      call(s.app, 'PATCH', `${base}/images/${items[1].id}`, { label: 'ring' }),
      call(s.app, 'PATCH', base, { name: 'renamed concurrently' }),
      call(s.app, 'PATCH', `${base}/images/${items[2].id}`, { label: 'dot' }),
    ]);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    const labels = await Promise.all(items.slice(0, 3).map(async (i) => (await call<{ label: string }>(s.app, 'GET', `${base}/images/${i.id}`)).body.data.label));
    expect(labels).toEqual(['ellipse', 'ring', 'dot']);
    expect((await call<Dataset>(s.app, 'GET', base)).body.data.name).toBe('renamed concurrently');
  });
});

describe('splits', () => {
  const ratios = { train: 0.6, val: 0.2, test: 0.2 };

  it('previews without saving, then saves, lists, filters and deletes', async () => {
    const preview = await call<Split>(s.app, 'POST', `${base}/splits`, { name: 'main', ratios, stratify: true, seed: 7, preview: true });
    expect(preview.status).toBe(200);
    expect(preview.body.data.name).toBe('main');
    const total = preview.body.data.counts.train + preview.body.data.counts.val + preview.body.data.counts.test;
    expect(total).toBeGreaterThan(0);
    expect((await call<Dataset>(s.app, 'GET', base)).body.data.split_names).toEqual([]);

    const made = await call<Split>(s.app, 'POST', `${base}/splits`, { name: 'main', ratios, stratify: true, seed: 7 });
    expect(made.status).toBe(201);
    expect(made.body.data.counts).toEqual(preview.body.data.counts);
    expect(made.body.data.per_class).toEqual(preview.body.data.per_class);
    const again = await call<Split>(s.app, 'POST', `${base}/splits`, { name: 'main', ratios, stratify: true, seed: 7 });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('CONFLICT');
    await call(s.app, 'POST', `${base}/splits`, { name: 'other', ratios: { train: 0.5, val: 0.5, test: 0 }, stratify: false, seed: 1 });

    const list = (await call<Split[]>(s.app, 'GET', `${base}/splits`)).body.data;
    expect(list.map((x) => x.name)).toEqual(['main', 'other']);
    const train = (await call<Page>(s.app, 'GET', `${base}/images?split=main&subset=train&page_size=500`)).body.data;
    expect(train.total).toBe(made.body.data.counts.train);
    expect(train.items.every((i) => i.split === 'train')).toBe(true);

    expect((await call(s.app, 'DELETE', `${base}/splits/main`)).status).toBe(200);
    expect((await call<Dataset>(s.app, 'GET', base)).body.data.split_names).toEqual(['other']);
    expect((await call(s.app, 'DELETE', `${base}/splits/main`)).body.error.code).toBe('NOT_FOUND');
  });

  it('gives the same files the same split when the folder is imported again (same seed)', async () => {
    const importAgain = async (name: string) => {
      const r = await call<{ dataset: Dataset; job: { id: string } }>(s.app, 'POST', `/api/projects/${pid}/datasets`, {
        name,
        task: 'classification',
        source: { kind: 'folder', path: path.join(s.dir, 'src') },
      });
      await waitForJob(s.app, r.body.data.job.id);
      return `/api/projects/${pid}/datasets/${r.body.data.dataset.id}`;
    };
    const byFile = async (b: string) => {
      expect((await call(s.app, 'POST', `${b}/splits`, { name: 'same', ratios, stratify: true, seed: 11 })).status).toBe(201);
      const items = (await call<Page>(s.app, 'GET', `${b}/images?split=same&page_size=500`)).body.data.items;
      return { ids: items.map((i) => i.id).sort(), split: Object.fromEntries(items.map((i) => [i.file, i.split])) };
    };
    const [b1, b2] = [await importAgain('shapes 1'), await importAgain('shapes 2')];
    const [one, two] = [await byFile(b1), await byFile(b2)];
    // new random ids, the same files, the same assignment
    expect(two.ids).not.toEqual(one.ids);
    expect(Object.keys(one.split).length).toBeGreaterThan(20);
    expect(two.split).toEqual(one.split);
    for (const b of [b1, b2]) expect((await call(s.app, 'DELETE', b)).status).toBe(200);
  });

  it('validates split requests', async () => {
    for (const bad of [
      { name: 'x', ratios: { train: 0.6, val: 0.6, test: 0 }, stratify: true, seed: 1 },
      { name: 'x y', ratios, stratify: true, seed: 1 },
      { name: 'x', ratios, stratify: 'yes', seed: 1 },
      { name: 'x', ratios: { ...ratios, holdout: 0 }, stratify: true, seed: 1 },
      { name: 'x', ratios, stratify: true, seed: -3 },
    ]) {
      const r = await call(s.app, 'POST', `${base}/splits`, bad);
      expect(r.status, JSON.stringify(bad)).toBe(400);
      expect(r.body.error.code).toBe('VALIDATION_ERROR');
    }
  });
});
