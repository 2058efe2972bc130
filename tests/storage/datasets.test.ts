import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDatasetsService } from '../../src/core/datasets.ts';
import { ProjectDoc } from '../../src/schemas/project.ts';
import { DatasetDoc, DatasetV1Doc, type StoredImage } from '../../src/schemas/dataset.ts';
import { SHARD_SIZE, shardFile } from '../../src/storage/datasets.ts';
import { Workspace, openWorkspace } from '../../src/storage/workspace.ts';
import { tempRoot } from './helpers.ts';

const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'dataset-v1.json');
const pid = 'proj-00000001';
let dir: string;
let cleanup: () => Promise<void>;
let ws: Workspace;
let n = 0;

beforeAll(async () => ({ dir, cleanup } = await tempRoot('datasets-store')));
afterAll(() => cleanup());
beforeEach(async () => {
  ws = await openWorkspace(path.join(dir, `ws${n++}`));
  const now = new Date().toISOString();
  await ws.write(ProjectDoc, ws.projectFile(pid), { schema_version: 1, id: pid, name: 'p', description: '', created_at: now, updated_at: now });
});

const hex = (i: number) => i.toString(16).padStart(16, '0');
const rec = (i: number, label: string | null = i % 2 ? 'a' : 'b'): StoredImage => ({
  id: `img-${i.toString(36).padStart(8, '0')}`,
  file: `images/${hex(i)}.png`,
  width: 8,
  height: 8,
  hash: hex(i).repeat(4),
  label,
});

async function makeDataset(did: string, count: number): Promise<void> {
  const now = new Date().toISOString();
  await ws.datasets.create(pid, { id: did, name: did, task: 'classification', status: 'ready', classes: ['a', 'b'], target_names: [], import_report: null, error: null, created_at: now, updated_at: now });
  await ws.datasets.transact(pid, did, (tx) => tx.append(Array.from({ length: count }, (_, i) => rec(i))));
}

const files = async (did: string, sub: string) => (await fs.readdir(path.join(ws.datasetDir(pid, did), sub)).catch(() => [] as string[])).sort();

describe('dataset store: version 1 → 2', () => {
  it('migrates a version-1 dataset.json on first read: same images, labels, annotations, splits and report', async () => {
    const did = 'ds-v1fixtur';
    const v1 = JSON.parse(await fs.readFile(FIXTURE, 'utf8'));
    await fs.mkdir(ws.datasetDir(pid, did), { recursive: true });
    await fs.copyFile(FIXTURE, ws.datasetFile(pid, did));

    const header = await ws.datasets.header(pid, did);
    expect(header?.schema_version).toBe(2);
    expect(JSON.parse(await fs.readFile(ws.datasetFile(pid, did), 'utf8')).schema_version).toBe(2);
    expect(header?.counts).toMatchObject({ images: 30, unlabeled: 4 });
    const expected = new Map<string, number>();
    for (const img of v1.images) if (img.label !== null) expected.set(img.label, (expected.get(img.label) ?? 0) + 1);
    expect([...header!.counts.class_counts].sort()).toEqual([...expected].sort());
    expect(expected.get('__proto__')).toBeGreaterThan(0);
    expect(header?.splits.map((s) => s.name)).toEqual(['default', 'holdout']);

    // What every reader of the whole dataset gets is the version-1 file's content.
    const whole = await ws.getDataset(pid, did);
    expect(whole.images).toEqual(v1.images);
    expect(whole.split_names).toEqual(v1.split_names);
    expect(whole.import_report).toEqual(v1.import_report);
    expect(whole.classes).toEqual(v1.classes);

    // And the service answers as it did.
    const service = createDatasetsService(ws);
    const s = await service.get(pid, did);
    expect(s).toMatchObject({ image_count: 30, unlabeled_count: 4, split_names: ['default', 'holdout'] });
    const split = await service.getSplit(pid, did, 'holdout');
    expect(split.counts).toEqual({ train: 15, val: 0, test: 15, none: 0 });
    const img = await service.getImage(pid, did, 'img-00000005');
    expect(img.annotations).toEqual(v1.images[5].annotations);
    expect(img.splits).toEqual({ default: 'train', holdout: 'test' });
  });

  it('a crash mid-migration (shards written, header not) leaves version 1, migrated again on the next read', async () => {
    const did = 'ds-v1fixtur';
    await fs.mkdir(path.join(ws.datasetDir(pid, did), 'shards'), { recursive: true });
    await fs.copyFile(FIXTURE, ws.datasetFile(pid, did));
    // What an earlier, killed migration left: a shard file no header names.
    await fs.writeFile(path.join(ws.datasetDir(pid, did), 'shards', '000000.1.json'), '{"schema_version":1,"images":[]}');
    expect((await ws.read(DatasetV1Doc, ws.datasetFile(pid, did)))?.images).toHaveLength(30);
    await ws.datasets.index(pid, did);
    expect((await ws.getDataset(pid, did)).images).toHaveLength(30);
    expect(await ws.datasets.verify(pid, did)).toEqual([]);
  });
});

describe('dataset store: commits', () => {
  it('a relabel rewrites one shard and the header, whatever the size', async () => {
    await makeDataset('ds-00000001', 3 * SHARD_SIZE + 10);
    expect(await files('ds-00000001', 'shards')).toHaveLength(4);
    const service = createDatasetsService(ws);
    const before = await files('ds-00000001', 'shards');
    await service.relabelImage(pid, 'ds-00000001', rec(SHARD_SIZE + 7).id, { label: 'c' });
    const after = await files('ds-00000001', 'shards');
    expect(after.filter((f) => !before.includes(f))).toHaveLength(1);
    expect(before.filter((f) => !after.includes(f))).toEqual([before[1]]);
    const s = await service.get(pid, 'ds-00000001');
    expect(s.classes).toEqual(['a', 'b', 'c']);
    expect(s.class_counts).toMatchObject({ c: 1 });
    expect(await ws.datasets.verify(pid, 'ds-00000001')).toEqual([]);
  });

  it('appends fill the last shard, then begin new ones; deletes shrink and drop shards', async () => {
    await makeDataset('ds-00000002', 10);
    await ws.datasets.transact(pid, 'ds-00000002', (tx) => tx.append(Array.from({ length: SHARD_SIZE }, (_, i) => rec(100 + i))));
    const header = await ws.datasets.header(pid, 'ds-00000002');
    expect(header?.shards.map((s) => s[2])).toEqual([SHARD_SIZE, 10]);
    const service = createDatasetsService(ws);
    for (let i = 0; i < 10; i++) await service.deleteImage(pid, 'ds-00000002', rec(100 + SHARD_SIZE - 10 + i).id);
    expect((await ws.datasets.header(pid, 'ds-00000002'))?.shards.map((s) => s[2])).toEqual([SHARD_SIZE]);
    const page = await service.listImages(pid, 'ds-00000002', { page: 3, page_size: 100 });
    expect(page.total).toBe(SHARD_SIZE);
    expect(page.items[0].id).toBe(rec(100 + 190).id);
    expect(await ws.datasets.verify(pid, 'ds-00000002')).toEqual([]);
  });

  it('a deleted image leaves its files to the commit, and `trash` covers a crash between them', async () => {
    await makeDataset('ds-00000003', 3);
    const dsDir = ws.datasetDir(pid, 'ds-00000003');
    await fs.mkdir(path.join(dsDir, 'images'), { recursive: true });
    for (let i = 0; i < 4; i++) await fs.writeFile(path.join(dsDir, 'images', `${hex(i)}.png`), 'x');
    await createDatasetsService(ws).deleteImage(pid, 'ds-00000003', rec(0).id);
    expect(await files('ds-00000003', 'images')).toEqual([`${hex(1)}.png`, `${hex(2)}.png`, `${hex(3)}.png`]);
    // A crash after a commit that trashed image 3 (its record gone), before the unlink:
    await ws.update(DatasetDoc, ws.datasetFile(pid, 'ds-00000003'), (h) => ({ ...h!, trash: [`images/${hex(3)}.png`, `images/${hex(1)}.png`] }));
    await ws.datasets.transact(pid, 'ds-00000003', (tx) => {
      tx.header.name = 'renamed';
    });
    // The next commit unlinks what no record names (3), and keeps what one does (1).
    expect(await files('ds-00000003', 'images')).toEqual([`${hex(1)}.png`, `${hex(2)}.png`]);
    expect((await ws.datasets.header(pid, 'ds-00000003'))?.trash).toEqual([]);
  });

  it('files a killed commit wrote but no header names are swept when the dataset is next opened', async () => {
    await makeDataset('ds-00000004', 5);
    const dsDir = ws.datasetDir(pid, 'ds-00000004');
    await fs.writeFile(path.join(dsDir, 'shards', '000007.9.json'), '{"schema_version":1,"images":[]}');
    await fs.mkdir(path.join(dsDir, 'splits'), { recursive: true });
    await fs.writeFile(path.join(dsDir, 'splits', 'x.9.json'), '{}');
    await fs.writeFile(path.join(dsDir, 'shards', 'notes.txt'), 'mine');
    const fresh = new Workspace(ws.root);
    await fresh.datasets.index(pid, 'ds-00000004');
    expect(await files('ds-00000004', 'shards')).toEqual([...(await fresh.datasets.header(pid, 'ds-00000004'))!.shards.map((s) => shardFile(s).slice(7)), 'notes.txt'].sort());
    expect(await files('ds-00000004', 'splits')).toEqual([]);
  });

  it('another thread’s commit is seen on the next read; concurrent relabels lose nothing', async () => {
    await makeDataset('ds-00000005', 50);
    const other = new Workspace(ws.root);
    const mine = createDatasetsService(ws);
    const theirs = createDatasetsService(other);
    expect((await mine.listImages(pid, 'ds-00000005', {})).total).toBe(50);
    await other.datasets.transact(pid, 'ds-00000005', (tx) => tx.append([rec(999)]));
    expect((await mine.listImages(pid, 'ds-00000005', {})).total).toBe(51);
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? mine : theirs).relabelImage(pid, 'ds-00000005', rec(i).id, { label: `c${i}` })));
    const whole = await ws.getDataset(pid, 'ds-00000005');
    for (let i = 0; i < 20; i++) expect(whole.images[i].label).toBe(`c${i}`);
    expect((await mine.get(pid, 'ds-00000005')).image_count).toBe(51);
    expect(await ws.datasets.verify(pid, 'ds-00000005')).toEqual([]);
  });

  it('splits are files written once; new images are in none; a split of the same name is refused', async () => {
    await makeDataset('ds-00000006', 40);
    const service = createDatasetsService(ws);
    const made = await service.createSplit(pid, 'ds-00000006', { name: 's', ratios: { train: 0.5, val: 0.5, test: 0 }, stratify: true, seed: 1 });
    expect(made.counts.train + made.counts.val).toBe(40);
    expect(await files('ds-00000006', 'splits')).toHaveLength(1);
    await ws.datasets.transact(pid, 'ds-00000006', (tx) => tx.append([rec(500)]));
    expect((await service.getImage(pid, 'ds-00000006', rec(500).id)).splits).toEqual({ s: 'none' });
    expect((await service.getSplit(pid, 'ds-00000006', 's')).counts.none).toBe(1);
    await expect(service.createSplit(pid, 'ds-00000006', { name: 's', ratios: { train: 1, val: 0, test: 0 } })).rejects.toMatchObject({ code: 'CONFLICT' });
    await service.deleteSplit(pid, 'ds-00000006', 's');
    expect(await files('ds-00000006', 'splits')).toEqual([]);
    expect((await service.get(pid, 'ds-00000006')).split_names).toEqual([]);
  });

  it('the checker notices a header whose counts or files do not match its shards', async () => {
    await makeDataset('ds-00000007', 20);
    await ws.update(DatasetDoc, ws.datasetFile(pid, 'ds-00000007'), (h) => ({ ...h!, counts: { ...h!.counts, unlabeled: 3 } }));
    expect(await ws.datasets.verify(pid, 'ds-00000007')).toEqual(['the header counts differ from the records']);
    const h = (await ws.datasets.header(pid, 'ds-00000007'))!;
    await fs.rm(path.join(ws.datasetDir(pid, 'ds-00000007'), shardFile(h.shards[0])));
    expect((await new Workspace(ws.root).datasets.verify(pid, 'ds-00000007')).some((p) => p.includes('is gone'))).toBe(true);
  });
});
