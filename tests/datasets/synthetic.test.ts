import fs from 'node:fs/promises';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runImport } from '../../src/datasets/import.ts';
import { SHAPES, renderShapeImage, writeSyntheticFolder } from '../../src/datasets/synthetic.ts';
import { MemorySink, tempDir } from './helpers.ts';

let dir: string;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('synthetic shapes', () => {
  it('renders every shape at the asked size and format, the same for the same seed', async () => {
    for (const shape of SHAPES) {
      const img = await renderShapeImage({ shape, size: { width: 48, height: 32 }, seed: 5, format: 'jpeg' });
      const meta = await sharp(img).metadata();
      expect([shape, meta.format, meta.width, meta.height]).toEqual([shape, 'jpeg', 48, 32]);
    }
    const a = await renderShapeImage({ shape: 'star', size: 32, seed: 9 });
    expect((await renderShapeImage({ shape: 'star', size: 32, seed: 9 })).equals(a)).toBe(true);
    expect((await renderShapeImage({ shape: 'star', size: 32, seed: 10 })).equals(a)).toBe(false);
  });

  it('draws the shape in the given color over a light background', async () => {
    const img = await renderShapeImage({ shape: 'square', size: 64, seed: 1, color: '#ff0000' });
    const { data, info } = await sharp(img).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    let red = 0;
    for (let i = 0; i < data.length; i += info.channels) if (data[i] > 200 && data[i + 1] < 50 && data[i + 2] < 50) red++;
    expect(red / (64 * 64)).toBeGreaterThan(0.05);
  });

  it('writes an ImageNet-style folder that imports with its labels', async () => {
    const files = await writeSyntheticFolder(dir, { classes: ['circle', 'square', 'blob'], perClass: 4, size: 40, format: 'png' });
    expect(files).toHaveLength(12);
    expect(files[0]).toEqual({ file: 'circle/circle-000.png', label: 'circle' });
    const sink = new MemorySink();
    const report = await runImport({ kind: 'folder', path: dir }, sink);
    expect(report).toMatchObject({ imported: 12, skipped: [], classes: ['blob', 'circle', 'square'] });
    await expect(writeSyntheticFolder(dir, { classes: ['../x'], perClass: 1, size: 8 })).rejects.toThrow();
  });
});
