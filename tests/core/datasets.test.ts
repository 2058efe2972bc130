import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDatasetsService } from '../../src/core/datasets.ts';
import { openWorkspace, type Workspace } from '../../src/storage/workspace.ts';
import { tempRoot } from '../storage/helpers.ts';
import { makeDataset } from './fixtures.ts';

let cleanup: () => Promise<void>;
let ws: Workspace;
beforeEach(async () => {
  const t = await tempRoot('datasets');
  cleanup = t.cleanup;
  ws = await openWorkspace(path.join(t.dir, 'ws'));
});
afterEach(() => cleanup());

describe('datasets service: datasets', () => {
  it('creates a dataset in importing state and summarizes a finished one', async () => {
    const { projectId, datasetId, datasets } = await makeDataset(ws, { cat: 5, dog: 3 }, 2);
    const s = await datasets.get(projectId, datasetId);
    expect(s).toMatchObject({
      id: datasetId,
      name: 'd',
      task: 'classification',
      status: 'ready',
      classes: ['cat', 'dog'],
      image_count: 10,
      class_counts: { cat: 5, dog: 3 },
      unlabeled_count: 2,
      split_names: [],
      error: null,
    });
    expect(s.import_report).toMatchObject({ imported: 10, skipped: [] });
    const fresh = await datasets.create(projectId, { name: 'second', task: 'detection' });
    expect(fresh).toMatchObject({ status: 'importing', image_count: 0, task: 'detection', import_report: null });
    expect((await datasets.list(projectId)).map((d) => d.id)).toEqual([datasetId, fresh.id]);
  });

  it('renames, marks failed, and deletes with its files', async () => {
    const { projectId, datasetId, datasets } = await makeDataset(ws, { a: 2 });
    expect((await datasets.update(projectId, datasetId, { name: '<b>new</b>' })).name).toBe('<b>new</b>');
    await expect(datasets.update(projectId, datasetId, { name: '' })).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(await datasets.markFailed(projectId, datasetId, { code: 'CANCELLED', message: 'stopped' })).toMatchObject({
      status: 'failed',
      error: { code: 'CANCELLED', message: 'stopped' },
    });
    const img = (await datasets.listImages(projectId, datasetId, {})).items[0];
    const file = await datasets.imageFilePath(projectId, datasetId, img.id);
    await datasets.remove(projectId, datasetId);
    await expect(fs.stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(datasets.get(projectId, datasetId)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await datasets.list(projectId)).toEqual([]);
  });

  it('answers NOT_FOUND for a missing project, dataset or malformed id', async () => {
    const { projectId, datasets } = await makeDataset(ws, { a: 1 });
    await expect(datasets.list('proj-00000000')).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('project') });
    await expect(datasets.create('proj-00000000', { name: 'x', task: 'classification' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(datasets.get(projectId, 'ds-00000000')).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('dataset') });
    await expect(datasets.get(projectId, '../../x')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(datasets.create(projectId, { name: 'x', task: 'boxes' as 'detection' })).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
  });

  it('two concurrent modifications of one dataset both land', async () => {
    const { projectId, datasetId, datasets } = await makeDataset(ws, { a: 6, b: 6 });
    const { items } = await datasets.listImages(projectId, datasetId, {});
    // A second service over its own workspace object, as a worker thread or second process would have.
    const other = createDatasetsService(await openWorkspace(ws.root));
    await Promise.all([
      datasets.relabelImage(projectId, datasetId, items[0].id, { label: 'x' }),
      other.relabelImage(projectId, datasetId, items[1].id, { label: 'y' }),
      datasets.update(projectId, datasetId, { name: 'renamed' }),
      other.createSplit(projectId, datasetId, { name: 's1', ratios: { train: 0.5, val: 0.5, test: 0 }, stratify: true, seed: 1 }),
      datasets.deleteImage(projectId, datasetId, items[2].id),
    ]);
    const s = await datasets.get(projectId, datasetId);
    expect(s).toMatchObject({ name: 'renamed', split_names: ['s1'], image_count: 11 });
    expect(s.class_counts).toMatchObject({ x: 1, y: 1 });
    expect((await datasets.getImage(projectId, datasetId, items[0].id)).label).toBe('x');
  });
});

describe('datasets service: images', () => {
  it('paginates in stored order and filters by label', async () => {
    const { projectId, datasetId, datasets } = await makeDataset(ws, { cat: 30, dog: 25 }, 5);
    const p1 = await datasets.listImages(projectId, datasetId, { page: 1, page_size: 20 });
    expect(p1).toMatchObject({ page: 1, page_size: 20, total: 60 });
    expect(p1.items).toHaveLength(20);
    expect(p1.items[0]).toEqual({ id: expect.stringMatching(/^img-/), file: expect.stringMatching(/^images\/[0-9a-f]{16}\.png$/), width: 11, height: 20, label: 'cat', split: null });
    const p3 = await datasets.listImages(projectId, datasetId, { page: 3, page_size: 20 });
    expect(p3.items.map((i) => i.label).slice(-5)).toEqual([null, null, null, null, null]);
    expect((await datasets.listImages(projectId, datasetId, { page: 4, page_size: 20 })).items).toEqual([]);
    const all = new Set([...p1.items, ...(await datasets.listImages(projectId, datasetId, { page: 2, page_size: 20 })).items, ...p3.items].map((i) => i.id));
    expect(all.size).toBe(60);

    const dogs = await datasets.listImages(projectId, datasetId, { label: 'dog', page_size: 10, page: 3 });
    expect(dogs.total).toBe(25);
    expect(dogs.items.map((i) => i.label)).toEqual(['dog', 'dog', 'dog', 'dog', 'dog']);
    expect((await datasets.listImages(projectId, datasetId, { label: 'zebra' })).total).toBe(0);
    // Query strings arrive as strings.
    expect((await datasets.listImages(projectId, datasetId, { page: '2', page_size: '7' } as unknown as { page: number })).items).toHaveLength(7);
    for (const bad of [{ page: 0 }, { page_size: 501 }, { subset: 'holdout' }, { split: '../x' }, { other: 1 }]) {
      await expect(datasets.listImages(projectId, datasetId, bad as object), JSON.stringify(bad)).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    }
  });

  it('filters by split subset and reports each image’s subset', async () => {
    const { projectId, datasetId, datasets } = await makeDataset(ws, { a: 10, b: 10 }, 2);
    await expect(datasets.listImages(projectId, datasetId, { subset: 'train' })).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    await datasets.createSplit(projectId, datasetId, { name: 'main', ratios: { train: 0.6, val: 0.2, test: 0.2 }, stratify: true, seed: 3 });
    await datasets.createSplit(projectId, datasetId, { name: 'alt', ratios: { train: 0.5, val: 0.5, test: 0 }, stratify: true, seed: 4 });
    const train = await datasets.listImages(projectId, datasetId, { subset: 'train', page_size: 100 });
    expect(train.total).toBe(12);
    expect(train.items.every((i) => i.split === 'train')).toBe(true);
    const altVal = await datasets.listImages(projectId, datasetId, { split: 'alt', subset: 'val', page_size: 100 });
    expect(altVal.total).toBe(10);
    expect(altVal.items.every((i) => i.split === 'val')).toBe(true);
    const none = await datasets.listImages(projectId, datasetId, { split: 'main', subset: 'none' });
    expect(none.items.map((i) => i.label)).toEqual([null, null]);
    const bTest = await datasets.listImages(projectId, datasetId, { split: 'main', subset: 'test', label: 'b' });
    expect(bTest.total).toBe(2);
    await expect(datasets.listImages(projectId, datasetId, { split: 'missing' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('gets, relabels and deletes an image', async () => {
    const { projectId, datasetId, datasets } = await makeDataset(ws, { cat: 2, dog: 1 });
    await datasets.createSplit(projectId, datasetId, { name: 's', ratios: { train: 1, val: 0, test: 0 }, stratify: false, seed: 0 });
    const [first, second] = (await datasets.listImages(projectId, datasetId, {})).items;
    const d = await datasets.getImage(projectId, datasetId, first.id);
    expect(d).toMatchObject({ id: first.id, file: first.file, label: 'cat', annotations: [], source: 'cat/1.png', splits: { s: 'train' } });
    expect(d.hash).toMatch(/^[0-9a-f]{64}$/);

    expect((await datasets.relabelImage(projectId, datasetId, first.id, { label: 'lion' })).label).toBe('lion');
    let s = await datasets.get(projectId, datasetId);
    expect(s.classes).toEqual(['cat', 'dog', 'lion']);
    expect(s.class_counts).toEqual({ cat: 1, dog: 1, lion: 1 });
    expect((await datasets.relabelImage(projectId, datasetId, first.id, { label: null })).label).toBeNull();
    expect((await datasets.get(projectId, datasetId)).unlabeled_count).toBe(1);
    await expect(datasets.relabelImage(projectId, datasetId, first.id, { label: '' })).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    await expect(datasets.relabelImage(projectId, datasetId, 'img-00000000', { label: 'x' })).rejects.toMatchObject({ code: 'NOT_FOUND' });

    const file = await datasets.imageFilePath(projectId, datasetId, second.id);
    const thumb = await datasets.thumbnailPath(projectId, datasetId, second.id);
    expect(thumb).toMatch(/\.thumbs\/[0-9a-f]{16}\.webp$/);
    expect((await fs.readFile(file)).toString()).toBe('image 1');
    await datasets.deleteImage(projectId, datasetId, second.id);
    s = await datasets.get(projectId, datasetId);
    expect(s.image_count).toBe(2);
    await expect(fs.stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(fs.stat(thumb)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(datasets.getImage(projectId, datasetId, second.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(datasets.imageFilePath(projectId, datasetId, second.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(datasets.deleteImage(projectId, datasetId, second.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses to serve an image whose file was swapped for a symlink out of the dataset', async () => {
    const { projectId, datasetId, datasets } = await makeDataset(ws, { a: 1 });
    const [img] = (await datasets.listImages(projectId, datasetId, {})).items;
    const file = path.join(ws.datasetDir(projectId, datasetId), img.file);
    await fs.rm(file);
    await fs.symlink(ws.studioFile(), file);
    await expect(datasets.imageFilePath(projectId, datasetId, img.id)).rejects.toMatchObject({ code: 'PATH_OUTSIDE_ROOT' });
  });

  it('keeps a class called __proto__ as plain data', async () => {
    const { projectId, datasetId, datasets } = await makeDataset(ws, { __proto__x: 1 });
    const [img] = (await datasets.listImages(projectId, datasetId, {})).items;
    await datasets.relabelImage(projectId, datasetId, img.id, { label: '__proto__' });
    const s = await datasets.get(projectId, datasetId);
    expect(Object.keys(s.class_counts)).toContain('__proto__');
    await datasets.createSplit(projectId, datasetId, { name: 's', ratios: { train: 1, val: 0, test: 0 }, stratify: true, seed: 0 });
    const [split] = await datasets.listSplits(projectId, datasetId);
    expect(Object.keys(split.per_class)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).train).toBeUndefined();
  });

  it('serves page 50 of a 10,000-image dataset from the parsed cache', async () => {
    const { projectId, datasetId, datasets } = await makeDataset(ws, { a: 1 });
    // Grow the dataset to 10,000 records directly (the image bytes do not matter here).
    await ws.datasets.transact(projectId, datasetId, async (tx) => {
      const [base] = await tx.records(0);
      const more = [];
      for (let i = 1; i < 10_000; i++) {
        const hex = i.toString(16).padStart(16, '0');
        more.push({ ...base, id: `img-${i.toString(36).padStart(8, '0')}`, file: `images/${hex}.png`, hash: hex.repeat(4), label: i % 2 ? 'a' : 'b' });
      }
      tx.append(more);
    });
    const first = await datasets.listImages(projectId, datasetId, { page: 50, page_size: 100 });
    expect(first.total).toBe(10_000);
    expect(first.items[0].id).toBe(`img-${(4900).toString(36).padStart(8, '0')}`);
    // Same index on the next read: no re-read of the 10,000 records.
    const a = await ws.datasets.index(projectId, datasetId);
    const version = a.version;
    await datasets.listImages(projectId, datasetId, { page: 50, page_size: 100, label: 'b' });
    expect(await ws.datasets.index(projectId, datasetId)).toBe(a);
    expect(a.version).toBe(version);
  });
});

describe('datasets service: splits', () => {
  it('previews without saving, creates, lists several and deletes', async () => {
    const { projectId, datasetId, datasets } = await makeDataset(ws, { a: 20, b: 10 }, 3);
    const req = { name: 'main', ratios: { train: 0.7, val: 0.2, test: 0.1 }, stratify: true, seed: 42 };
    const preview = await datasets.previewSplit(projectId, datasetId, req);
    expect(preview).toEqual({
      name: 'main',
      counts: { train: 21, val: 6, test: 3, none: 3 },
      per_class: { a: { train: 14, val: 4, test: 2, none: 0 }, b: { train: 7, val: 2, test: 1, none: 0 } },
    });
    expect((await datasets.get(projectId, datasetId)).split_names).toEqual([]);
    expect(await datasets.createSplit(projectId, datasetId, { ...req, preview: true })).toEqual(preview);
    expect((await datasets.get(projectId, datasetId)).split_names).toEqual([]);

    expect(await datasets.createSplit(projectId, datasetId, req)).toEqual(preview);
    await expect(datasets.createSplit(projectId, datasetId, req)).rejects.toMatchObject({ code: 'CONFLICT' });
    const other = await datasets.createSplit(projectId, datasetId, { ...req, name: 'other', seed: 7, stratify: false });
    expect(other.counts.train + other.counts.val + other.counts.test).toBe(30);
    expect((await datasets.listSplits(projectId, datasetId)).map((s) => s.name)).toEqual(['main', 'other']);
    expect(await datasets.getSplit(projectId, datasetId, 'main')).toEqual(preview);

    await datasets.deleteSplit(projectId, datasetId, 'main');
    expect((await datasets.listSplits(projectId, datasetId)).map((s) => s.name)).toEqual(['other']);
    expect(await datasets.getSplit(projectId, datasetId, 'other')).toEqual(other);
    await expect(datasets.deleteSplit(projectId, datasetId, 'main')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(datasets.deleteSplit(projectId, datasetId, '../x')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('is reproducible from its seed and differs with another seed', async () => {
    const { projectId, datasetId, datasets } = await makeDataset(ws, { a: 20, b: 20 });
    const req = { ratios: { train: 0.5, val: 0.25, test: 0.25 }, stratify: true, seed: 9 };
    await datasets.createSplit(projectId, datasetId, { ...req, name: 's1' });
    await datasets.createSplit(projectId, datasetId, { ...req, name: 's2' });
    await datasets.createSplit(projectId, datasetId, { ...req, name: 's3', seed: 10 });
    const subsets = async (split: string) => (await datasets.listImages(projectId, datasetId, { split, page_size: 100 })).items.map((i) => i.split);
    expect(await subsets('s1')).toEqual(await subsets('s2'));
    expect(await subsets('s1')).not.toEqual(await subsets('s3'));
  });

  it('refuses bad requests and splitting while importing', async () => {
    const { projectId, datasetId, datasets } = await makeDataset(ws, { a: 4 });
    const ok = { name: 's', ratios: { train: 0.5, val: 0.5, test: 0 }, stratify: true, seed: 0 };
    for (const bad of [
      { ...ok, name: '' },
      { ...ok, name: 'a/b' },
      { ...ok, ratios: { train: 0.5, val: 0.6, test: 0 } },
      { ...ok, ratios: { train: -1, val: 1, test: 1 } },
      { ...ok, seed: 1.5 },
      { ...ok, extra: true },
    ]) {
      await expect(datasets.createSplit(projectId, datasetId, bad), JSON.stringify(bad)).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    }
    const importing = await datasets.create(projectId, { name: 'busy', task: 'classification' });
    await expect(datasets.createSplit(projectId, importing.id, ok)).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('gives the class histogram, overall and per subset', async () => {
    const { projectId, datasetId, datasets } = await makeDataset(ws, { b: 4, a: 6 }, 1);
    expect(await datasets.classHistogram(projectId, datasetId)).toEqual({ labels: ['a', 'b'], counts: [6, 4], unlabeled: 1, split: null, subsets: null });
    await datasets.createSplit(projectId, datasetId, { name: 's', ratios: { train: 0.5, val: 0.5, test: 0 }, stratify: true, seed: 0 });
    expect(await datasets.classHistogram(projectId, datasetId, 's')).toEqual({
      labels: ['a', 'b'],
      counts: [6, 4],
      unlabeled: 1,
      split: 's',
      subsets: { train: [3, 2], val: [3, 2], test: [0, 0], none: [0, 0] },
    });
  });
});

// ---- multi-label and regression datasets ------------------------------------------------------

import { createHash as hashOf } from 'node:crypto';
import { createProjectsService } from '../../src/core/projects.ts';
import { createImportSink } from '../../src/storage/import-sink.ts';
import { ensureTasks } from '../datasets/tasks.ts';

ensureTasks();

/** A ready dataset of the task whose images carry `truth` (labels or targets; undefined: unlabeled). */
async function makeTaskDataset(task: 'multilabel' | 'regression', truth: (string[] | number[] | undefined)[], opts: { classes?: string[]; target_names?: string[] } = {}) {
  const projects = createProjectsService(ws);
  const datasets = createDatasetsService(ws);
  const project = await projects.create({ name: 'p' });
  const ds = await datasets.create(project.id, { name: task, task, ...(opts.target_names ? { target_names: opts.target_names } : {}) });
  const sink = createImportSink(ws, project.id, ds.id, { flushEvery: 7 });
  let n = 0;
  for (const t of truth) {
    const bytes = Buffer.from(`${task} image ${n++}`);
    await sink.addImage({
      hash: hashOf('sha256').update(bytes).digest('hex'),
      ext: 'png',
      buffer: bytes,
      thumbnail: Buffer.from(`thumb ${n}`),
      width: 8,
      height: 8,
      label: null,
      ...(t === undefined ? {} : task === 'multilabel' ? { labels: t as string[] } : { targets: t as number[] }),
      source_path: `${n}.png`,
    });
  }
  await sink.close();
  await datasets.finishImport(project.id, ds.id, { imported: n, skipped: [], duplicates: 0, classes: opts.classes ?? [], elapsed_ms: 1 });
  return { projectId: project.id, datasetId: ds.id, datasets };
}

describe('datasets service: multi-label', () => {
  it('counts images per label, the label cardinality, and the unlabeled; lists labels and filters by any label', async () => {
    const { projectId, datasetId, datasets } = await makeTaskDataset('multilabel', [['cat', 'dog'], ['dog'], [], undefined, ['bird', 'cat', 'dog']]);
    const s = await datasets.get(projectId, datasetId);
    expect(s).toMatchObject({
      task: 'multilabel',
      classes: ['bird', 'cat', 'dog'],
      target_names: [],
      class_counts: { bird: 1, cat: 2, dog: 3 },
      unlabeled_count: 1,
      label_cardinality: [1, 1, 1, 1],
    });
    expect(s.target_stats).toBeUndefined();
    const all = await datasets.listImages(projectId, datasetId, {});
    expect(all.items.map((i) => i.labels)).toEqual([['cat', 'dog'], ['dog'], [], undefined, ['bird', 'cat', 'dog']]);
    const cats = await datasets.listImages(projectId, datasetId, { label: 'cat' });
    expect(cats.total).toBe(2);
    const hist = await datasets.classHistogram(projectId, datasetId);
    expect(hist).toMatchObject({ labels: ['bird', 'cat', 'dog'], counts: [1, 2, 3], unlabeled: 1 });
  });

  it('PATCH takes labels (each a class), refuses label and targets by name, and null unlabels', async () => {
    const { projectId, datasetId, datasets } = await makeTaskDataset('multilabel', [['cat'], ['dog']]);
    const id = (await datasets.listImages(projectId, datasetId, {})).items[0].id;
    expect((await datasets.relabelImage(projectId, datasetId, id, { labels: ['dog', ' cat ', 'dog'] })).labels).toEqual(['cat', 'dog']);
    expect((await datasets.relabelImage(projectId, datasetId, id, { labels: [] })).labels).toEqual([]);
    await expect(datasets.relabelImage(projectId, datasetId, id, { labels: ['cow'] })).rejects.toMatchObject({
      code: 'VALIDATION_ERROR',
      message: expect.stringMatching(/^labels: 'cow' is not a class/),
    });
    await expect(datasets.relabelImage(projectId, datasetId, id, { label: 'cat' })).rejects.toMatchObject({ message: 'label: a multilabel dataset takes labels, not label' });
    await expect(datasets.relabelImage(projectId, datasetId, id, { targets: { a: 1 } })).rejects.toMatchObject({ message: expect.stringMatching(/^targets:/) });
    await expect(datasets.relabelImage(projectId, datasetId, id, {} as never)).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    const cleared = await datasets.relabelImage(projectId, datasetId, id, { labels: null });
    expect(cleared.labels).toBeUndefined();
    expect((await datasets.get(projectId, datasetId)).unlabeled_count).toBe(1);
  });

  it('splits iteratively; the summary counts per label and leaves the unlabeled out', async () => {
    const truth: (string[] | undefined)[] = [];
    for (let i = 0; i < 60; i++) truth.push(i % 10 === 9 ? undefined : [i % 2 ? 'a' : 'b', ...(i % 3 === 0 ? ['c'] : [])]);
    const { projectId, datasetId, datasets } = await makeTaskDataset('multilabel', truth);
    const s = await datasets.createSplit(projectId, datasetId, { name: 's', ratios: { train: 0.6, val: 0.2, test: 0.2 }, seed: 4 });
    expect(s.counts.none).toBe(6);
    expect(s.counts.train + s.counts.val + s.counts.test).toBe(54);
    expect(Object.keys(s.per_class).sort()).toEqual(['a', 'b', 'c']);
    const c = s.per_class.c;
    expect(Math.abs(c.val - (c.train + c.val + c.test) * 0.2)).toBeLessThanOrEqual(1);
    expect(await datasets.getSplit(projectId, datasetId, 's')).toEqual(s);
    const hist = await datasets.classHistogram(projectId, datasetId, 's');
    expect(hist.subsets?.train.reduce((x, y) => x + y, 0)).toBe(s.per_class.a.train + s.per_class.b.train + s.per_class.c.train);
  });
});

describe('datasets service: regression', () => {
  it('needs target names at creation; summarizes per-target stats and counts images with targets', async () => {
    const projects = createProjectsService(ws);
    const datasets = createDatasetsService(ws);
    const p = await projects.create({ name: 'p' });
    await expect(datasets.create(p.id, { name: 'r', task: 'regression' })).rejects.toMatchObject({ message: expect.stringMatching(/^target_names:/) });
    await expect(datasets.create(p.id, { name: 'c', task: 'classification', target_names: ['x'] })).rejects.toMatchObject({ message: expect.stringMatching(/^target_names:/) });
    const { projectId, datasetId, datasets: svc } = await makeTaskDataset('regression', [[1, 10], [2, 10], [3, 10], undefined, [6, 10]], { target_names: ['size', 'count'] });
    const s = await svc.get(projectId, datasetId);
    expect(s).toMatchObject({ classes: [], target_names: ['size', 'count'], class_counts: { size: 4, count: 4 }, unlabeled_count: 1 });
    expect(s.label_cardinality).toBeUndefined();
    const size = s.target_stats?.size;
    expect(size).toMatchObject({ count: 4, min: 1, max: 6, mean: 3 });
    expect(size?.std).toBeCloseTo(Math.sqrt((4 + 1 + 0 + 9) / 4), 10);
    expect(size?.histogram.counts.reduce((a, b) => a + b, 0)).toBe(4);
    expect(size?.histogram.edges[0]).toBe(1);
    expect(size?.histogram.edges.at(-1)).toBe(6);
    // A constant target still gets one bar.
    expect(s.target_stats?.count.histogram).toEqual({ edges: [9.5, 10.5], counts: [4] });
    const items = (await svc.listImages(projectId, datasetId, {})).items;
    expect(items[0].targets).toEqual({ size: 1, count: 10 });
    expect(items[3].targets).toBeUndefined();
    await expect(svc.listImages(projectId, datasetId, { label: 'size' })).rejects.toMatchObject({ code: 'VALIDATION_ERROR', message: expect.stringMatching(/^label:/) });
  });

  it('PATCH takes targets: every target, finite numbers, no other name', async () => {
    const { projectId, datasetId, datasets } = await makeTaskDataset('regression', [[1, 2]], { target_names: ['w', 'h'] });
    const id = (await datasets.listImages(projectId, datasetId, {})).items[0].id;
    expect((await datasets.relabelImage(projectId, datasetId, id, { targets: { h: 5, w: -1.5 } })).targets).toEqual({ w: -1.5, h: 5 });
    await expect(datasets.relabelImage(projectId, datasetId, id, { targets: { w: 1 } })).rejects.toMatchObject({ message: 'targets.h: missing; every target needs a value' });
    await expect(datasets.relabelImage(projectId, datasetId, id, { targets: { w: 1, h: 2, d: 3 } })).rejects.toMatchObject({ message: expect.stringMatching(/^targets\.d: not a target/) });
    await expect(datasets.relabelImage(projectId, datasetId, id, { targets: { w: Infinity, h: 2 } })).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    await expect(datasets.relabelImage(projectId, datasetId, id, { labels: ['x'] })).rejects.toMatchObject({ message: 'labels: a regression dataset takes targets, not labels' });
    expect((await datasets.relabelImage(projectId, datasetId, id, { targets: null })).targets).toBeUndefined();
  });

  it('splits on quantile bins of the first target; the summary counts per target', async () => {
    const truth = Array.from({ length: 100 }, (_, i) => (i === 0 ? undefined : [i * i, 1]));
    const { projectId, datasetId, datasets } = await makeTaskDataset('regression', truth, { target_names: ['y', 'z'] });
    const s = await datasets.createSplit(projectId, datasetId, { name: 's', ratios: { train: 0.8, val: 0.1, test: 0.1 }, seed: 1 });
    expect(s.counts).toEqual({ train: 79, val: 10, test: 10, none: 1 });
    expect(s.per_class).toEqual({ y: { train: 79, val: 10, test: 10, none: 0 }, z: { train: 79, val: 10, test: 10, none: 0 } });
    const imgs = (await datasets.listImages(projectId, datasetId, { split: 's', subset: 'val', page_size: 500 })).items;
    // 99 images, a 10 % subset: 4 quantile bins (about two val images each), so every quarter of
    // the ranked target holds two or three of the ten val images.
    const ranks = imgs.map((i) => Math.sqrt(i.targets?.y ?? 0) - 1);
    for (let q = 0; q < 4; q++) {
      const inBin = ranks.filter((r) => r >= Math.floor((q * 99) / 4) && r < Math.floor(((q + 1) * 99) / 4)).length;
      expect(inBin).toBeGreaterThanOrEqual(2);
      expect(inBin).toBeLessThanOrEqual(3);
    }
  });
});
