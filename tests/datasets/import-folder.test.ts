import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentHash } from '../../src/datasets/hash.ts';
import { runImport, type ImportProgress } from '../../src/datasets/import.ts';
import { MemorySink, encodeBmp24, pngDeclaring, solid, tempDir, writeFile } from './helpers.ts';

let dir: string;
let root: string;
let outside: string;

beforeAll(async () => {
  dir = await tempDir();
  root = path.join(dir, 'data');
  outside = path.join(dir, 'secret');
  const red = await solid(64, 48, '#ff0000').jpeg().toBuffer();
  await writeFile(path.join(root, 'cat', 'a.jpg'), red);
  await writeFile(path.join(root, 'cat', 'deep', 'deeper', 'b.png'), await solid(20, 20, '#00ff00').png().toBuffer());
  await writeFile(path.join(root, 'dog', 'c.webp'), await solid(30, 10, '#0000ff').webp().toBuffer());
  await writeFile(path.join(root, 'dog', 'd.tif'), await solid(12, 12, '#ffff00').tiff().toBuffer());
  await writeFile(path.join(root, 'dog', 'e.bmp'), encodeBmp24(16, 8, (x) => [x * 10, 0, 0]));
  await writeFile(path.join(root, 'dog', 'f.gif'), await solid(9, 9, '#ff00ff').gif().toBuffer());
  await writeFile(path.join(root, 'dog', 'rotated.jpg'), await solid(40, 20, '#222222').jpeg().withMetadata({ orientation: 6 }).toBuffer());
  await writeFile(path.join(root, 'dog', 'copy-of-a.jpg'), red);
  const broken = (await solid(200, 200, '#999999').jpeg().toBuffer()).subarray(0, 300);
  await writeFile(path.join(root, 'dog', 'broken.jpg'), broken);
  await writeFile(path.join(root, 'dog', 'broken-copy.jpg'), broken);
  await writeFile(path.join(root, 'dog', 'evil.jpg'), '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>');
  await writeFile(path.join(root, 'dog', 'page.jpg'), '<html><script>alert(1)</script></html>');
  await writeFile(path.join(root, 'dog', 'bomb.png'), pngDeclaring(40_000, 40_000));
  await writeFile(path.join(root, 'dog', '.hidden.jpg'), red);
  await writeFile(path.join(root, '.cache', 'x.jpg'), red);
  await writeFile(path.join(root, 'loose.png'), await solid(5, 5, '#010203').png().toBuffer());
  await writeFile(path.join(outside, 'private.jpg'), await solid(10, 10, '#abcdef').jpeg().toBuffer());
  await fs.symlink(path.join(outside, 'private.jpg'), path.join(root, 'cat', 'escape.jpg'));
  await fs.symlink(outside, path.join(root, 'cat', 'escape-dir'));
  await fs.symlink(path.join(root, 'cat', 'a.jpg'), path.join(root, 'cat', 'inside-link.jpg'));
});

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('runImport from a folder', () => {
  it('imports every format, labels by top-level folder, and reports each skipped file with its reason', async () => {
    const sink = new MemorySink();
    const progress: ImportProgress[] = [];
    const report = await runImport({ kind: 'folder', path: root }, sink, { onProgress: (p) => progress.push(p) });

    const imported = Object.fromEntries(sink.images.map((i) => [i.source_path, i]));
    expect(Object.keys(imported).sort()).toEqual(
      ['cat/a.jpg', 'cat/deep/deeper/b.png', 'dog/c.webp', 'dog/d.tif', 'dog/e.bmp', 'dog/f.gif', 'dog/rotated.jpg', 'loose.png'].sort(),
    );
    expect(imported['cat/deep/deeper/b.png'].label).toBe('cat');
    expect(imported['dog/e.bmp']).toMatchObject({ label: 'dog', format: 'bmp', ext: 'bmp', width: 16, height: 8 });
    expect(imported['dog/rotated.jpg']).toMatchObject({ width: 20, height: 40 });
    expect(imported['loose.png'].label).toBeNull();
    const a = imported['cat/a.jpg'];
    expect(a.hash).toBe(contentHash(a.buffer));
    expect(a.ext).toBe('jpg');
    const thumb = await sharp(a.thumbnail).metadata();
    expect(thumb.format).toBe('webp');
    expect(Math.max(thumb.width, thumb.height)).toBeLessThanOrEqual(128);

    const reasons = Object.fromEntries(report.skipped.map((s) => [s.file, s.reason]));
    expect(reasons).toEqual({
      'cat/escape.jpg': 'outside_root',
      'cat/escape-dir': 'outside_root',
      'dog/bomb.png': 'too_large',
      'dog/broken.jpg': 'corrupt',
      // a copy of a file that failed is no duplicate: it is reported for what it is
      'dog/broken-copy.jpg': 'corrupt',
      'dog/evil.jpg': 'unsupported',
      'dog/page.jpg': 'unsupported',
      // a.jpg comes first in the scan, so its two copies are the duplicates
      ...Object.fromEntries(['cat/inside-link.jpg', 'dog/copy-of-a.jpg'].map((f) => [f, 'duplicate'])),
    });
    expect(report.duplicates).toBe(2);
    expect(report.skipped.find((s) => s.file === 'dog/copy-of-a.jpg')?.detail).toBe('same content as cat/a.jpg');
    expect(report.imported).toBe(8);
    expect(report.classes).toEqual(['cat', 'dog']);
    expect(sink.images.some((i) => i.source_path.includes('private'))).toBe(false);

    const last = progress[progress.length - 1];
    expect(last).toEqual({ done: 17, total: 17, imported: 8, skipped: 9 });
    expect(progress.every((p, i) => i === 0 || p.done >= progress[i - 1].done)).toBe(true);
  });

  it('refuses files over the size limit as too_large', async () => {
    const report = await runImport({ kind: 'folder', path: path.join(root, 'cat') }, new MemorySink(), { limits: { maxFileBytes: 100 } });
    expect(report.imported).toBe(0);
    expect(new Set(report.skipped.map((s) => s.reason))).toEqual(new Set(['too_large', 'outside_root']));
  });

  it('stops when the signal aborts', async () => {
    const controller = new AbortController();
    const sink = new MemorySink();
    const run = runImport({ kind: 'folder', path: root }, sink, {
      signal: controller.signal,
      limits: { concurrency: 1 },
      onProgress: (p) => {
        if (p.imported >= 1) controller.abort();
      },
    });
    await expect(run).rejects.toThrow();
    expect(sink.images.length).toBeLessThan(8);
  });

  it('refuses a source of the wrong shape', async () => {
    const bad = { kind: 'folder', path: root, extra: 1 } as unknown as Parameters<typeof runImport>[0];
    await expect(runImport(bad, new MemorySink())).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
  });

  it('refuses a folder that does not exist', async () => {
    await expect(runImport({ kind: 'folder', path: path.join(dir, 'nope') }, new MemorySink())).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
  });

  it('fails the import when the sink fails', async () => {
    const sink = new MemorySink();
    sink.addImage = async () => Promise.reject(new Error('disk full'));
    await expect(runImport({ kind: 'folder', path: root }, sink)).rejects.toThrow('disk full');
  });
});

describe('images worth a look', () => {
  it('imports a flat placeholder image but flags it in the report', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'cat', 'real.png'), await sharp({ create: { width: 48, height: 48, channels: 3, background: '#808080' } }).composite([{ input: await sharp({ create: { width: 16, height: 16, channels: 3, background: '#ff0000' } }).png().toBuffer(), left: 8, top: 8 }]).png().toBuffer());
    await writeFile(path.join(dir, 'cat', 'not-found.png'), await sharp({ create: { width: 48, height: 48, channels: 3, background: '#eeeeee' } }).png().toBuffer());
    const report = await runImport({ kind: 'folder', path: dir }, new MemorySink());
    expect(report.imported).toBe(2);
    expect(report.flagged).toEqual([{ file: 'cat/not-found.png', reason: 'near_constant', detail: expect.stringMatching(/^every pixel about the same colour/) }]);
    await fs.rm(dir, { recursive: true, force: true });
  });
});
