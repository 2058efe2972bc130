import path from 'node:path';
import { promises as fs } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDatasetsService } from '../../src/core/datasets.ts';
import { ensureExampleProject } from '../../src/core/example.ts';
import { createProjectsService } from '../../src/core/projects.ts';
import { openWorkspace, type Workspace } from '../../src/storage/workspace.ts';
import { tempRoot } from '../storage/helpers.ts';

let cleanup: () => Promise<void>;
let ws: Workspace;
beforeEach(async () => {
  const t = await tempRoot('example');
  cleanup = t.cleanup;
  ws = await openWorkspace(path.join(t.dir, 'ws'));
});
afterEach(() => cleanup());

describe('ensureExampleProject', () => {
  it('makes a split shapes dataset on first start, once', async () => {
    const project = await ensureExampleProject(ws, { perClass: 8, size: 48 });
    expect(project?.name).toBe('Example: shapes');
    const datasets = createDatasetsService(ws);
    const [ds] = await datasets.list(project!.id);
    expect(ds).toMatchObject({
      status: 'ready',
      classes: ['circle', 'square', 'triangle'],
      image_count: 24,
      class_counts: { circle: 8, square: 8, triangle: 8 },
      split_names: ['default'],
    });
    expect(ds.import_report).toMatchObject({ imported: 24, skipped: [] });
    const [split] = await datasets.listSplits(project!.id, ds.id);
    expect(split.counts.train + split.counts.val + split.counts.test).toBe(24);
    expect(split.per_class.circle.train).toBeGreaterThan(split.per_class.circle.val);
    // Real images with thumbnails, and nothing left in tmp/.
    const [img] = (await datasets.listImages(project!.id, ds.id, { page_size: 1 })).items;
    expect(img).toMatchObject({ width: 48, height: 48 });
    expect((await fs.readFile(await datasets.thumbnailPath(project!.id, ds.id, img.id))).subarray(8, 12).toString()).toBe('WEBP');
    expect(await fs.readdir(ws.tmpDir())).toEqual([]);

    // Offered once: deleting it does not bring it back.
    await createProjectsService(ws).remove(project!.id);
    expect(await ensureExampleProject(ws)).toBeNull();
    expect(await createProjectsService(ws).list()).toEqual([]);
  });

  it('offers nothing in a workspace that already has projects', async () => {
    await createProjectsService(ws).create({ name: 'mine' });
    expect(await ensureExampleProject(ws)).toBeNull();
    expect((await createProjectsService(ws).list()).map((p) => p.name)).toEqual(['mine']);
  });

  it('makes one on request (force) even after the start-up offer was used', async () => {
    await createProjectsService(ws).create({ name: 'mine' });
    expect(await ensureExampleProject(ws, { perClass: 4, size: 32 })).toBeNull();
    const made = await ensureExampleProject(ws, { perClass: 4, size: 32, force: true });
    expect(made?.name).toBe('Example: shapes');
    expect((await createProjectsService(ws).list()).length).toBe(2);
  });
});
