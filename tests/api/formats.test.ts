import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, makeStudio, shapeImage, waitForJob, type TestStudio } from './helpers.ts';

interface Dataset {
  status: string;
  image_count: number;
  class_counts: Record<string, number>;
  classes: string[];
  import_report: { skipped: { file: string; reason: string }[] };
}
interface Started {
  dataset: { id: string };
  job: { id: string };
}

let s: TestStudio;
let pid: string;
beforeAll(async () => {
  s = await makeStudio();
  pid = (await call<{ id: string }>(s.app, 'POST', '/api/projects', { name: 'formats' })).body.data.id;
});
afterAll(async () => s.close());

async function importAndGet(source: Record<string, string>): Promise<Dataset> {
  const r = await call<Started>(s.app, 'POST', `/api/projects/${pid}/datasets`, { name: source.kind, task: 'classification', source });
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  const job = await waitForJob(s.app, r.body.data.job.id);
  expect(job.status, JSON.stringify(job)).toBe('succeeded');
  return (await call<Dataset>(s.app, 'GET', `/api/projects/${pid}/datasets/${r.body.data.dataset.id}`)).body.data;
}

const reasons = (ds: Dataset) => Object.fromEntries(ds.import_report.skipped.map((x) => [x.file, x.reason]));

describe('import formats through the API', () => {
  it('CSV with a header; rows pointing outside the images root are refused per row', async () => {
    const root = path.join(s.dir, 'csv', 'images');
    await fs.mkdir(path.join(root, 'sub'), { recursive: true });
    await fs.writeFile(path.join(root, 'a.png'), await shapeImage('circle', 1));
    await fs.writeFile(path.join(root, 'sub', 'b.png'), await shapeImage('square', 2));
    await fs.writeFile(path.join(s.dir, 'csv', 'secret.png'), await shapeImage('circle', 3));
    const csv = path.join(s.dir, 'csv', 'labels.csv');
    await fs.writeFile(csv, 'filename,label\na.png,round\nsub/b.png,boxy\n../secret.png,round\n/etc/passwd,x\nmissing.png,round\n');
    const ds = await importAndGet({ kind: 'csv', path: csv, images_root: root });
    expect(ds.class_counts).toEqual({ round: 1, boxy: 1 });
    const r = reasons(ds);
    expect(r['../secret.png']).toBe('outside_root');
    expect(r['/etc/passwd']).toBe('outside_root');
    expect(r['missing.png']).toBe('missing');
  });

  it('COCO: boxes stored, an image with two categories is ambiguous for classification', async () => {
    const root = path.join(s.dir, 'coco');
    await fs.mkdir(root, { recursive: true });
    for (const [i, name] of ['one.png', 'two.png', 'both.png'].entries()) await fs.writeFile(path.join(root, name), await shapeImage('circle', 10 + i));
    const ann = {
      images: [
        { id: 1, file_name: 'one.png', width: 64, height: 48 },
        { id: 2, file_name: 'two.png', width: 64, height: 48 },
        { id: 3, file_name: 'both.png', width: 64, height: 48 },
      ],
      annotations: [
        { id: 1, image_id: 1, category_id: 1, bbox: [1, 2, 10, 10] },
        { id: 2, image_id: 2, category_id: 2, bbox: [3, 4, 10, 10] },
        { id: 3, image_id: 3, category_id: 1, bbox: [1, 1, 5, 5] },
        { id: 4, image_id: 3, category_id: 2, bbox: [20, 20, 5, 5] },
      ],
      categories: [
        { id: 1, name: 'cat' },
        { id: 2, name: 'dog' },
      ],
    };
    const file = path.join(s.dir, 'coco.json');
    await fs.writeFile(file, JSON.stringify(ann));
    const ds = await importAndGet({ kind: 'coco', annotations: file, images_root: root });
    expect(ds.classes).toEqual(['cat', 'dog']);
    expect(ds.class_counts).toEqual({ cat: 1, dog: 1 });
    expect(reasons(ds)['both.png']).toBe('ambiguous');
  });

  it('YOLO: images/ and labels/ with names from data.yaml', async () => {
    const root = path.join(s.dir, 'yolo');
    await fs.mkdir(path.join(root, 'images'), { recursive: true });
    await fs.mkdir(path.join(root, 'labels'), { recursive: true });
    await fs.writeFile(path.join(root, 'data.yaml'), 'names: [ball, box]\n');
    await fs.writeFile(path.join(root, 'images', 'p.png'), await shapeImage('circle', 20));
    await fs.writeFile(path.join(root, 'images', 'q.png'), await shapeImage('square', 21));
    await fs.writeFile(path.join(root, 'labels', 'p.txt'), '0 0.5 0.5 0.2 0.2\n');
    await fs.writeFile(path.join(root, 'labels', 'q.txt'), '1 0.5 0.5 0.3 0.3\n');
    const ds = await importAndGet({ kind: 'yolo', path: root });
    expect(ds.classes).toEqual(['ball', 'box']);
    expect(ds.class_counts).toEqual({ ball: 1, box: 1 });
  });

  it('a folder import refuses symlinks that lead out of the folder', async () => {
    const root = path.join(s.dir, 'linked');
    await fs.mkdir(path.join(root, 'a'), { recursive: true });
    await fs.writeFile(path.join(root, 'a', 'real.png'), await shapeImage('circle', 30));
    const outside = path.join(s.dir, 'outside');
    await fs.mkdir(outside, { recursive: true });
    await fs.writeFile(path.join(outside, 'o.png'), await shapeImage('circle', 31));
    await fs.symlink(path.join(outside, 'o.png'), path.join(root, 'a', 'link.png'));
    await fs.symlink(outside, path.join(root, 'b'));
    const ds = await importAndGet({ kind: 'folder', path: root });
    expect(ds.image_count).toBe(1);
    const r = reasons(ds);
    expect(r['a/link.png']).toBe('outside_root');
    expect(Object.values(r).filter((x) => x === 'outside_root').length).toBeGreaterThanOrEqual(2);
  });
});
