import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDatasetsService } from '../../src/core/datasets.ts';
import { createProjectsService } from '../../src/core/projects.ts';
import { DatasetDoc } from '../../src/schemas/dataset.ts';
import { createImportSink, normalizeLabel, type SinkImage } from '../../src/storage/import-sink.ts';
import { openWorkspace, type Workspace } from '../../src/storage/workspace.ts';
import { tempRoot } from './helpers.ts';

let cleanup: () => Promise<void>;
let ws: Workspace;
let pid: string;
let did: string;
beforeEach(async () => {
  const t = await tempRoot('sink');
  cleanup = t.cleanup;
  ws = await openWorkspace(path.join(t.dir, 'ws'));
  pid = (await createProjectsService(ws).create({ name: 'p' })).id;
  did = (await createDatasetsService(ws).create(pid, { name: 'd', task: 'detection' })).id;
});
afterEach(() => cleanup());

function image(n: number, label: string | null, extra: Partial<SinkImage> = {}): SinkImage {
  const buffer = Buffer.from(`bytes ${n}`);
  return { hash: createHash('sha256').update(buffer).digest('hex'), ext: 'jpg', buffer, thumbnail: Buffer.from(`t${n}`), width: 4, height: 3, label, source_path: `x/${n}.jpg`, ...extra };
}

const stored = () => ws.readDataset(pid, did);

describe('import sink', () => {
  it('stores files content-addressed and records in batches', async () => {
    const sink = createImportSink(ws, pid, did, { flushEvery: 3, flushIntervalMs: 60_000 });
    await sink.addImage(image(1, 'a'));
    await sink.addImage(image(2, 'b'));
    expect((await stored())?.images).toHaveLength(0);
    await sink.addImage(image(3, 'a'));
    expect((await stored())?.images).toHaveLength(3);
    await sink.addImage(image(4, null, { annotations: [{ category: 'b', bbox: [0, 0, 2, 2] }] }));
    await sink.close();
    const ds = await stored();
    expect(ds?.images.map((i) => i.label)).toEqual(['a', 'b', 'a', null]);
    expect(ds?.images[3].annotations).toEqual([{ category: 'b', bbox: [0, 0, 2, 2] }]);
    const rec = ds!.images[0];
    expect(rec.file).toBe(`images/${rec.hash.slice(0, 16)}.jpg`);
    expect(await fs.readFile(path.join(ws.datasetDir(pid, did), rec.file), 'utf8')).toBe('bytes 1');
    expect(await fs.readFile(path.join(ws.thumbsDir(pid, did), `${rec.hash.slice(0, 16)}.webp`), 'utf8')).toBe('t1');
    expect(ds?.status).toBe('importing');
  });

  it('finishes with declared classes first, then any other label; gives new images a none in every split', async () => {
    const sink = createImportSink(ws, pid, did);
    await sink.addImage(image(1, 'zebra'));
    await sink.addImage(image(2, 'cat'));
    await sink.addImage(image(1, 'zebra')); // same hash: recorded once
    const ds = await sink.finish({ imported: 2, skipped: [{ file: 'bad.jpg', reason: 'corrupt' }], duplicates: 0, classes: ['dog', 'cat'], elapsed_ms: 5 });
    expect(ds.status).toBe('ready');
    expect(ds.classes).toEqual(['dog', 'cat', 'zebra']);
    expect(ds.counts.images).toBe(2);
    expect(ds.import_report?.skipped).toEqual([{ file: 'bad.jpg', reason: 'corrupt' }]);

    await createDatasetsService(ws).createSplit(pid, did, { name: 's', ratios: { train: 1, val: 0, test: 0 }, stratify: true, seed: 0 });
    const later = createImportSink(ws, pid, did);
    await later.addImage(image(3, 'cat'));
    await later.close();
    expect((await stored())?.images.map((i) => i.split)).toEqual([['train'], ['train'], ['none']]);
  });

  it('brings labels into the stored shape', async () => {
    expect(normalizeLabel('  cat\u0007 \n')).toBe('cat');
    expect(normalizeLabel('\t\n')).toBeNull();
    expect(normalizeLabel('x'.repeat(300))).toHaveLength(200);
    const sink = createImportSink(ws, pid, did);
    await sink.addImage(image(1, ' a\u0000b '));
    const ds = await sink.finish({ imported: 1, skipped: [], duplicates: 0, classes: [], elapsed_ms: 1 });
    expect((await stored())?.images[0].label).toBe('a b');
  });

  it('marks the dataset failed, keeping what was stored', async () => {
    const sink = createImportSink(ws, pid, did);
    await sink.addImage(image(1, 'a'));
    const ds = await sink.fail({ code: 'BAD_ARCHIVE', message: 'not a zip' });
    expect(ds).toMatchObject({ status: 'failed', error: { code: 'BAD_ARCHIVE', message: 'not a zip' } });
    expect(ds.counts.images).toBe(1);
    expect((await stored())?.images).toHaveLength(1);
  });

  it('stops when the dataset was deleted under it, and refuses unsafe names', async () => {
    const sink = createImportSink(ws, pid, did);
    await expect(sink.addImage(image(1, 'a', { ext: '../x' }))).rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(sink.addImage(image(1, 'a', { hash: '../../etc' }))).rejects.toMatchObject({ code: 'INTERNAL' });
    await createDatasetsService(ws).remove(pid, did);
    await expect(sink.addImage(image(2, 'a'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await ws.exists(ws.datasetDir(pid, did))).toBe(false);
  });
});
