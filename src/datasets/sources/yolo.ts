import fs from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../../kernel/errors.ts';
import { SkipError, type Annotation, type ImportSource, type ScanItem, type Scanner, type SkippedFile } from '../types.ts';
import { isInside, readBounded, readIndexFile, realDirectory } from './fsutil.ts';
import { truthFromAnnotations } from './labels.ts';
import { walkFolder } from './walk.ts';

type YoloSource = Extract<ImportSource, { kind: 'yolo' }>;

const unquote = (s: string) => s.trim().replace(/^(['"])(.*)\1$/, '$2');

/**
 * The `names` of an Ultralytics data.yaml, in its three spellings: a flow list `[a, b]`, a block
 * list (`- a`), or a map (`0: a`). Only this key is read, so no YAML library is needed.
 */
export function parseYamlNames(text: string): string[] | null {
  const lines = text.split(/\r?\n/);
  const at = lines.findIndex((l) => /^names\s*:/.test(l));
  if (at === -1) return null;
  const inline = lines[at].replace(/^names\s*:/, '').replace(/#.*$/, '').trim();
  if (inline.startsWith('[')) {
    const body = inline.replace(/^\[/, '').replace(/\]$/, '');
    return body.split(',').map(unquote).filter((n) => n !== '');
  }
  const byIndex = new Map<number, string>();
  const list: string[] = [];
  for (const line of lines.slice(at + 1)) {
    if (/^\S/.test(line)) break;
    const item = /^\s+-\s*(.+)$/.exec(line);
    const entry = /^\s+(\d+)\s*:\s*(.+)$/.exec(line);
    if (item) list.push(unquote(item[1]));
    else if (entry) byIndex.set(Number(entry[1]), unquote(entry[2]));
  }
  if (list.length > 0) return list;
  if (byIndex.size === 0) return null;
  const max = Math.max(...byIndex.keys());
  return Array.from({ length: max + 1 }, (_, i) => byIndex.get(i) ?? String(i));
}

async function readClassNames(root: string, maxBytes: number): Promise<string[] | undefined> {
  for (const name of ['data.yaml', 'data.yml', 'dataset.yaml']) {
    const p = path.join(root, name);
    if (await exists(p)) return parseYamlNames(await readIndexFile(p, maxBytes, name)) ?? undefined;
  }
  const classesTxt = path.join(root, 'classes.txt');
  if (await exists(classesTxt)) {
    return (await readIndexFile(classesTxt, maxBytes, 'classes.txt')).split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  }
  return undefined;
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    (s) => s.isFile(),
    () => false,
  );
}

/**
 * One YOLO label file: `class cx cy w h` per line (normalized), or `class x1 y1 x2 y2 …` for a
 * polygon (whose bbox is its extent). A malformed line refuses the image as `corrupt`.
 */
export function parseYoloLabels(text: string, names: string[] | undefined, labelFile: string): Annotation[] {
  const annotations: Annotation[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const nums = line.split(/\s+/).map(Number);
    const cls = nums[0];
    const bad = !Number.isInteger(cls) || cls < 0 || nums.some((n) => !Number.isFinite(n)) || (nums.length !== 5 && (nums.length < 7 || nums.length % 2 === 0));
    if (bad) throw new SkipError('corrupt', `${labelFile} line ${i + 1}: expected "class cx cy w h" or a polygon`);
    const category = names?.[cls] ?? String(cls);
    if (nums.length === 5) {
      const [, cx, cy, w, h] = nums;
      if (w < 0 || h < 0) throw new SkipError('corrupt', `${labelFile} line ${i + 1}: negative box size`);
      annotations.push({ category, bbox: [cx - w / 2, cy - h / 2, w, h] });
      return;
    }
    const pts = nums.slice(1);
    const xs = pts.filter((_, j) => j % 2 === 0);
    const ys = pts.filter((_, j) => j % 2 === 1);
    const x0 = Math.min(...xs);
    const y0 = Math.min(...ys);
    annotations.push({ category, bbox: [x0, y0, Math.max(...xs) - x0, Math.max(...ys) - y0], segmentation: [pts] });
  });
  return annotations;
}

/** `images/**` with `labels/**.txt` beside it (same relative path), names from data.yaml or classes.txt. */
export const scanYolo: Scanner<YoloSource> = async (source, ctx) => {
  const root = await realDirectory(source.path, 'YOLO dataset folder');
  const imagesDir = path.join(root, 'images');
  const labelsDir = path.join(root, 'labels');
  if (!(await fs.stat(imagesDir).then((s) => s.isDirectory(), () => false))) {
    throw new AppError('VALIDATION_ERROR', 'a YOLO dataset needs an images/ folder');
  }
  const names = await readClassNames(root, ctx.limits.maxIndexFileBytes);
  const walked = await walkFolder(await fs.realpath(imagesDir), root, ctx.signal);
  const items: ScanItem[] = [];
  const skipped: SkippedFile[] = [...walked.skipped];
  for (const f of walked.files) {
    ctx.signal?.throwIfAborted();
    const relInImages = f.rel.replace(/^images\//, '');
    const labelRel = `labels/${relInImages.replace(/\.[^./]+$/, '')}.txt`;
    const labelPath = path.join(labelsDir, relInImages.replace(/\.[^./]+$/, '') + '.txt');
    try {
      let annotations: Annotation[] = [];
      const realLabel = await fs.realpath(labelPath).catch(() => null);
      if (realLabel !== null) {
        if (!isInside(root, realLabel)) throw new SkipError('outside_root', `${labelRel} links outside the dataset`);
        annotations = parseYoloLabels((await readBounded(realLabel, ctx.limits.maxIndexFileBytes)).toString('utf8'), names, labelRel);
      }
      const truth = truthFromAnnotations(annotations, ctx.task);
      items.push({ file: f.rel, ...truth, annotations, normalized: true, read: () => readBounded(f.real, ctx.limits.maxFileBytes) });
    } catch (e) {
      if (!(e instanceof SkipError)) throw e;
      skipped.push({ file: f.rel, reason: e.reason, detail: e.detail });
    }
  }
  return { items, skipped, classes: names, close: async () => {} };
};
