import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runImport } from '../../src/datasets/import.ts';
import { parseTarget, resolveCsvColumns, splitLabels } from '../../src/datasets/sources/csv.ts';
import { checkSourceFitsTask } from '../../src/datasets/task-fit.ts';
import type { ImportSource } from '../../src/datasets/types.ts';
import { MemorySink, solid, tempDir, writeFile } from './helpers.ts';

let dir: string;
let root: string;
const png = (color: string) => solid(6, 6, color).png().toBuffer();

beforeAll(async () => {
  dir = await tempDir('ds-tasks-');
  root = path.join(dir, 'imgs');
  for (let i = 0; i < 8; i++) await writeFile(path.join(root, `${i}.png`), await png(`#${(i * 30 + 16).toString(16).padStart(2, '0')}2040`));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function csv(name: string, text: string): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, text);
  return p;
}

describe('CSV into a multi-label dataset', () => {
  it('splits the label cell by ";" (trimmed, empties dropped, each once); an empty cell is labeled with none, a missing one unlabeled', async () => {
    const file = await csv('ml.csv', 'image,tags\n0.png, cat ; dog;;cat\n1.png,dog\n2.png,\n3.png\n4.png,bird;  \n');
    const sink = new MemorySink();
    const report = await runImport({ kind: 'csv', path: file, images_root: root }, sink, { task: 'multilabel' });
    const by = (f: string) => sink.bySource(f);
    expect(by('0.png')?.labels).toEqual(['cat', 'dog']);
    expect(by('1.png')?.labels).toEqual(['dog']);
    expect(by('2.png')?.labels).toEqual([]);
    expect(by('3.png')?.labels).toBeUndefined();
    expect(by('4.png')?.labels).toEqual(['bird']);
    expect(sink.images.every((i) => i.label === null && i.targets === undefined)).toBe(true);
    expect(report.classes).toEqual(['bird', 'cat', 'dog']);
    expect(report.skipped).toEqual([]);
  });

  it('takes "|" as the separator and named columns in any order', async () => {
    const file = await csv('ml-pipe.csv', 'labels,notes,photo\na|b,x;y,0.png\nb,z,1.png\n');
    const sink = new MemorySink();
    const source: ImportSource = { kind: 'csv', path: file, images_root: root, image_column: 'photo', label_column: 'labels', label_separator: '|' };
    const report = await runImport(source, sink, { task: 'multilabel' });
    expect(sink.bySource('0.png')?.labels).toEqual(['a', 'b']);
    expect(sink.bySource('1.png')?.labels).toEqual(['b']);
    expect(report.classes).toEqual(['a', 'b']);
  });

  it('splitLabels', () => {
    expect(splitLabels(' a ;b;a; ;', ';')).toEqual(['a', 'b']);
    expect(splitLabels('', ';')).toEqual([]);
    expect(splitLabels('a;b|c', '|')).toEqual(['a;b', 'c']);
  });
});

describe('CSV into a regression dataset', () => {
  it('reads the target columns in their order and skips rows with a missing, non-numeric or non-finite target with a reason', async () => {
    const file = await csv(
      'reg.csv',
      'file,size,count,label\n0.png,1.5,3,x\n1.png,-2e1,0,y\n2.png,,4,z\n3.png,abc,1,z\n4.png,1e999,2,z\n5.png,0x10,2,z\n6.png,7,Infinity,z\n7.png,.25,+8,z\n',
    );
    const sink = new MemorySink();
    const report = await runImport({ kind: 'csv', path: file, images_root: root, target_columns: ['count', 'size'] }, sink, { task: 'regression' });
    expect(sink.images.map((i) => [i.source_path, i.targets]).sort()).toEqual([
      ['0.png', [3, 1.5]],
      ['1.png', [0, -20]],
      ['7.png', [8, 0.25]],
    ]);
    expect(sink.images.every((i) => i.label === null && i.labels === undefined)).toBe(true);
    expect(report.skipped).toEqual([
      { file: '2.png', reason: 'invalid_target', detail: "column 'size': missing value" },
      { file: '3.png', reason: 'invalid_target', detail: "column 'size': 'abc' is not a number" },
      { file: '4.png', reason: 'invalid_target', detail: "column 'size': '1e999' is not finite" },
      { file: '5.png', reason: 'invalid_target', detail: "column 'size': '0x10' is not a number" },
      { file: '6.png', reason: 'invalid_target', detail: "column 'count': 'Infinity' is not a number" },
    ]);
    expect(report.classes).toEqual([]);
  });

  it('finds the image column beside the targets when it is not named', () => {
    expect(resolveCsvColumns(['size', 'path'], { target_columns: ['size'] }, 'targets')).toMatchObject({ fileCol: 1, targetCols: [0], labelCol: -1 });
    expect(resolveCsvColumns(['y', 'img'], { target_columns: ['y'] }, 'targets')).toMatchObject({ fileCol: 1, targetCols: [0] });
    expect(resolveCsvColumns(['a', 'b', 'c'], { target_columns: ['c'], image_column: 'b' }, 'targets')).toMatchObject({ fileCol: 1, targetCols: [2] });
  });

  it('parseTarget', () => {
    expect(parseTarget(' 3.5 ', 'a')).toBe(3.5);
    expect(parseTarget('-1e-3', 'a')).toBe(-0.001);
    expect(parseTarget(undefined, 'a')).toBe("column 'a': missing value");
    expect(parseTarget('NaN', 'a')).toBe("column 'a': 'NaN' is not a number");
  });
});

describe('named CSV columns', () => {
  it('refuses a column the header lacks, naming the field', async () => {
    const file = await csv('named.csv', 'photo,kind\n0.png,cat\n');
    const sink = new MemorySink();
    await expect(runImport({ kind: 'csv', path: file, images_root: root, image_column: 'image' }, sink)).rejects.toMatchObject({
      code: 'VALIDATION_ERROR',
      message: expect.stringMatching(/^source\.image_column: the CSV has no column 'image'/),
    });
    await expect(runImport({ kind: 'csv', path: file, images_root: root, target_columns: ['age'] }, sink, { task: 'regression' })).rejects.toMatchObject({
      message: expect.stringMatching(/^source\.target_columns: the CSV has no column 'age'/),
    });
    // Classification with named columns reads exactly those.
    const report = await runImport({ kind: 'csv', path: file, images_root: root, image_column: 'photo', label_column: 'KIND' }, sink);
    expect(report.imported).toBe(1);
    expect(sink.bySource('0.png')?.label).toBe('cat');
  });
});

describe('COCO and YOLO into a multi-label dataset', () => {
  it('COCO: the distinct categories that have a box; an image with none is labeled with no label', async () => {
    const ann = path.join(dir, 'coco.json');
    await writeFile(
      ann,
      JSON.stringify({
        images: [
          { id: 1, file_name: '0.png' },
          { id: 2, file_name: '1.png' },
          { id: 3, file_name: '2.png' },
        ],
        annotations: [
          { image_id: 1, category_id: 2, bbox: [0, 0, 2, 2] },
          { image_id: 1, category_id: 1, bbox: [1, 1, 2, 2] },
          { image_id: 1, category_id: 2, bbox: [3, 3, 2, 2] },
          { image_id: 2, category_id: 1, bbox: [0, 0, 1, 1] },
        ],
        categories: [
          { id: 1, name: 'person' },
          { id: 2, name: 'car' },
          { id: 3, name: 'bus' },
        ],
      }),
    );
    const sink = new MemorySink();
    const report = await runImport({ kind: 'coco', annotations: ann, images_root: root }, sink, { task: 'multilabel' });
    expect(sink.bySource('0.png')?.labels).toEqual(['car', 'person']);
    expect(sink.bySource('1.png')?.labels).toEqual(['person']);
    expect(sink.bySource('2.png')?.labels).toEqual([]);
    expect(report.skipped).toEqual([]); // no `ambiguous`: several categories are what multi-label is
    expect(report.classes).toEqual(['person', 'car', 'bus']); // the declared categories, in their order
  });

  it('YOLO: the same from label files', async () => {
    const yolo = path.join(dir, 'yolo');
    await writeFile(path.join(yolo, 'images', 'a.png'), await png('#123456'));
    await writeFile(path.join(yolo, 'images', 'b.png'), await png('#654321'));
    await writeFile(path.join(yolo, 'labels', 'a.txt'), '0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n0 0.1 0.1 0.1 0.1\n');
    await writeFile(path.join(yolo, 'data.yaml'), 'names: [dog, cat]\n');
    const sink = new MemorySink();
    const report = await runImport({ kind: 'yolo', path: yolo }, sink, { task: 'multilabel' });
    expect(sink.bySource('images/a.png')?.labels).toEqual(['cat', 'dog']);
    expect(sink.bySource('images/b.png')?.labels).toEqual([]);
    expect(report.classes).toEqual(['dog', 'cat']);
  });
});

describe('a source that does not fit the task', () => {
  const csvSource = { kind: 'csv' as const, path: '/x.csv', images_root: '/x' };
  const cases: [string, ImportSource, readonly string[] | null, RegExp][] = [
    ['regression', { kind: 'folder', path: '/x' }, ['csv'], /^source\.kind: a folder cannot feed a regression dataset/],
    ['multilabel', { kind: 'zip', path: '/x.zip' }, ['csv', 'coco', 'yolo'], /^source\.kind: a zip .* cannot feed a multilabel dataset/],
    ['regression', { kind: 'coco', annotations: '/a.json', images_root: '/x' }, null, /^source\.kind: a regression dataset needs target columns/],
    ['classification', { ...csvSource, target_columns: ['a'] }, null, /^source\.target_columns: only a regression dataset takes target columns$/],
    ['multilabel', { ...csvSource, target_columns: ['a'] }, null, /^source\.target_columns: only a regression/],
    ['classification', { ...csvSource, label_separator: '|' }, null, /^source\.label_separator: only a multilabel dataset splits labels$/],
    ['regression', { ...csvSource, label_separator: ';', target_columns: ['a'] }, null, /^source\.label_separator:/],
    ['regression', csvSource, ['csv'], /^source\.target_columns: a regression dataset needs at least one target column/],
    ['regression', { ...csvSource, target_columns: ['a', 'a'] }, ['csv'], /^source\.target_columns: 'a' is named twice/],
    ['regression', { ...csvSource, target_columns: ['a'], label_column: 'b' }, ['csv'], /^source\.label_column:/],
  ];
  it.each(cases)('%s ← %j', (task, source, kinds, message) => {
    expect(() => checkSourceFitsTask(task, source, kinds)).toThrow(expect.objectContaining({ code: 'VALIDATION_ERROR', message: expect.stringMatching(message) }));
  });

  it('lets a fitting source through, and the pipeline checks the options itself', async () => {
    expect(() => checkSourceFitsTask('multilabel', { ...csvSource, label_separator: '|' }, ['csv'])).not.toThrow();
    expect(() => checkSourceFitsTask('regression', { ...csvSource, target_columns: ['a', 'b'] }, ['csv'])).not.toThrow();
    expect(() => checkSourceFitsTask('detection', { kind: 'folder', path: '/x' }, null)).not.toThrow();
    await expect(runImport({ ...csvSource, label_separator: '|' }, new MemorySink())).rejects.toMatchObject({ message: expect.stringMatching(/^source\.label_separator/) });
  });
});
