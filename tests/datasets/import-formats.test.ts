import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runImport } from '../../src/datasets/import.ts';
import { detectHeader } from '../../src/datasets/sources/csv.ts';
import { parseYamlNames, parseYoloLabels } from '../../src/datasets/sources/yolo.ts';
import { MemorySink, solid, tempDir, writeFile } from './helpers.ts';

let dir: string;
const png = (w: number, h: number, color: string) => solid(w, h, color).png().toBuffer();

beforeAll(async () => {
  dir = await tempDir();
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('CSV', () => {
  it('detects a header, labels from the column, refuses rows outside the images root', async () => {
    const root = path.join(dir, 'csv', 'imgs');
    await writeFile(path.join(root, 'x', '1.png'), await png(4, 4, '#100'));
    await writeFile(path.join(root, '2.png'), await png(4, 4, '#200'));
    await writeFile(path.join(root, '3.png'), await png(4, 4, '#300'));
    await writeFile(path.join(dir, 'csv', 'outside.png'), await png(4, 4, '#400'));
    await fs.symlink(path.join(dir, 'csv', 'outside.png'), path.join(root, 'link.png'));
    const csv = path.join(dir, 'csv', 'labels.csv');
    await writeFile(
      csv,
      '\ufefffilename,label\nx/1.png,cat\n"2.png",dog\n3.png,\n../outside.png,cat\n/etc/passwd,cat\nlink.png,cat\nmissing.png,dog\n',
    );
    const sink = new MemorySink();
    const report = await runImport({ kind: 'csv', path: csv, images_root: root }, sink);
    expect(sink.images.map((i) => [i.source_path, i.label]).sort()).toEqual([
      ['2.png', 'dog'],
      ['3.png', null],
      ['x/1.png', 'cat'],
    ]);
    expect(report.skipped.map((s) => [s.file, s.reason])).toEqual([
      ['../outside.png', 'outside_root'],
      ['/etc/passwd', 'outside_root'],
      ['link.png', 'outside_root'],
      ['missing.png', 'missing'],
    ]);
    expect(report.classes).toEqual(['cat', 'dog']);
  });

  it('reads headerless files and headers in another column order', () => {
    expect(detectHeader(['a.jpg', 'cat'])).toEqual({ header: false, fileCol: 0, labelCol: 1 });
    expect(detectHeader(['label', 'path'])).toEqual({ header: true, fileCol: 1, labelCol: 0 });
    expect(detectHeader(['image', 'class'])).toEqual({ header: true, fileCol: 0, labelCol: 1 });
  });
});

describe('COCO', () => {
  it('keeps boxes as annotations, labels single-category images, reports mixed ones as ambiguous', async () => {
    const root = path.join(dir, 'coco', 'images');
    await writeFile(path.join(root, 'a.png'), await png(10, 10, '#010'));
    await writeFile(path.join(root, 'b.png'), await png(10, 10, '#020'));
    await writeFile(path.join(root, 'c.png'), await png(10, 10, '#030'));
    await writeFile(path.join(root, 'd.png'), await png(10, 10, '#040'));
    const coco = {
      info: { year: 2024 },
      images: [
        { id: 1, file_name: 'a.png', width: 10, height: 10 },
        { id: 2, file_name: 'b.png' },
        { id: 3, file_name: 'c.png' },
        { id: 4, file_name: 'd.png' },
        { id: 5, file_name: '../../etc/passwd' },
      ],
      annotations: [
        { id: 1, image_id: 1, category_id: 7, bbox: [1, 2, 3, 4], area: 12, iscrowd: 0 },
        { id: 2, image_id: 1, category_id: 7, bbox: [5, 5, 2, 2], segmentation: [[5, 5, 7, 5, 7, 7]] },
        { id: 3, image_id: 2, category_id: 7, bbox: [0, 0, 1, 1] },
        { id: 4, image_id: 2, category_id: 9, bbox: [0, 0, 1, 1] },
        { id: 5, image_id: 3, category_id: 9, bbox: [0, 0, 5, 5], segmentation: { counts: 'xyz', size: [10, 10] } },
      ],
      categories: [
        { id: 7, name: 'person' },
        { id: 9, name: 'bicycle' },
      ],
    };
    const ann = path.join(dir, 'coco', 'instances.json');
    await writeFile(ann, JSON.stringify(coco));
    const sink = new MemorySink();
    const report = await runImport({ kind: 'coco', annotations: ann, images_root: root }, sink);
    expect(report.classes).toEqual(['person', 'bicycle']);
    expect(sink.bySource('a.png')).toMatchObject({
      label: 'person',
      annotations: [
        { category: 'person', bbox: [1, 2, 3, 4] },
        { category: 'person', bbox: [5, 5, 2, 2], segmentation: [[5, 5, 7, 5, 7, 7]] },
      ],
    });
    expect(sink.bySource('c.png')?.annotations).toEqual([{ category: 'bicycle', bbox: [0, 0, 5, 5] }]);
    expect(sink.bySource('d.png')?.label).toBeNull();
    expect(report.skipped.map((s) => [s.file, s.reason])).toEqual([
      ['../../etc/passwd', 'outside_root'],
      ['b.png', 'ambiguous'],
    ]);

    const detection = new MemorySink();
    const det = await runImport({ kind: 'coco', annotations: ann, images_root: root }, detection, { task: 'detection' });
    expect(det.imported).toBe(4);
    expect(detection.bySource('b.png')).toMatchObject({ label: null, annotations: [{ category: 'person' }, { category: 'bicycle' }] });
  });

  it('refuses a file that is not COCO', async () => {
    const ann = path.join(dir, 'coco', 'bad.json');
    await writeFile(ann, '{"__proto__": {"polluted": true}, "images": "nope"}');
    await expect(runImport({ kind: 'coco', annotations: ann, images_root: dir }, new MemorySink())).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('YOLO', () => {
  it('scales normalized boxes to pixels and names classes from data.yaml', async () => {
    const root = path.join(dir, 'yolo');
    await writeFile(path.join(root, 'data.yaml'), 'path: .\ntrain: images/train\nnames:\n  0: cat\n  1: dog\n');
    await writeFile(path.join(root, 'images', 'train', 'one.png'), await png(200, 100, '#111'));
    await writeFile(path.join(root, 'images', 'train', 'two.png'), await png(50, 50, '#222'));
    await writeFile(path.join(root, 'images', 'train', 'bg.png'), await png(50, 50, '#333'));
    await writeFile(path.join(root, 'images', 'val', 'bad.png'), await png(50, 50, '#444'));
    await writeFile(path.join(root, 'labels', 'train', 'one.txt'), '0 0.5 0.5 0.2 0.4\n0 0.25 0.25 0.1 0.1\n');
    await writeFile(path.join(root, 'labels', 'train', 'two.txt'), '0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.1 0.1\n');
    await writeFile(path.join(root, 'labels', 'val', 'bad.txt'), '0 0.5 oops 0.2\n');
    const sink = new MemorySink();
    const report = await runImport({ kind: 'yolo', path: root }, sink);
    expect(report.classes).toEqual(['cat', 'dog']);
    const one = sink.bySource('images/train/one.png');
    expect(one?.label).toBe('cat');
    expect(one?.annotations?.[0].category).toBe('cat');
    expect(one?.annotations?.[0].bbox?.map((v) => Math.round(v * 1000) / 1000)).toEqual([80, 30, 40, 40]);
    expect(sink.bySource('images/train/bg.png')).toMatchObject({ label: null });
    expect(report.skipped.map((s) => [s.file, s.reason])).toEqual([
      ['images/train/two.png', 'ambiguous'],
      ['images/val/bad.png', 'corrupt'],
    ]);
  });

  it('parses the spellings of names and polygon lines', () => {
    expect(parseYamlNames("names: ['a', \"b\", c]\n")).toEqual(['a', 'b', 'c']);
    expect(parseYamlNames('nc: 2\nnames:\n  - x\n  - y\nother: 1\n')).toEqual(['x', 'y']);
    expect(parseYamlNames('names:\n  0: a\n  2: c\n')).toEqual(['a', '1', 'c']);
    expect(parseYamlNames('nc: 3\n')).toBeNull();
    expect(parseYoloLabels('1 0.1 0.1 0.5 0.1 0.3 0.4\n', ['a', 'b'], 'l.txt')).toEqual([
      { category: 'b', bbox: [0.1, 0.1, 0.4, expect.closeTo(0.3, 6)], segmentation: [[0.1, 0.1, 0.5, 0.1, 0.3, 0.4]] },
    ]);
    expect(() => parseYoloLabels('-1 0.5 0.5 0.1 0.1', undefined, 'l.txt')).toThrow(/line 1/);
  });

  it('takes names from classes.txt and needs an images folder', async () => {
    const root = path.join(dir, 'yolo2');
    await writeFile(path.join(root, 'classes.txt'), 'apple\npear\n');
    await writeFile(path.join(root, 'images', 'p.png'), await png(10, 10, '#555'));
    await writeFile(path.join(root, 'labels', 'p.txt'), '1 0.5 0.5 1 1\n');
    const sink = new MemorySink();
    await runImport({ kind: 'yolo', path: root }, sink);
    expect(sink.images[0]).toMatchObject({ label: 'pear', annotations: [{ category: 'pear', bbox: [0, 0, 10, 10] }] });
    await expect(runImport({ kind: 'yolo', path: path.join(root, 'labels') }, sink)).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
  });
});
