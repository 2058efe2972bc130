import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBatches, trainTransform, type Batch, type LoaderItem, type LoaderWarning } from '../../../src/training/data/loader.ts';
import { LoaderThread, type PrefillReport } from '../../../src/training/data/loader-thread.ts';
import { augmentation, gradientImage, tempDir } from './helpers.ts';

const SIZE = 16;
const NORM = { mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.25, 0.25, 0.25] as [number, number, number] };
const AUG = augmentation({ random_resized_crop: { enabled: true }, horizontal_flip: { enabled: true }, rotation: { enabled: true } });

let dir: string;
let items: LoaderItem[];
let thread: LoaderThread;

beforeAll(async () => {
  dir = await tempDir();
  items = [];
  for (let i = 0; i < 11; i++) {
    const file = path.join(dir, `img${i}.jpg`);
    await fs.writeFile(file, await gradientImage(30 + i, 20 + i, 'jpeg'));
    items.push({ path: file, labelIndex: i % 3, id: `img${i}` });
  }
  await fs.writeFile(path.join(dir, 'bad.jpg'), 'not an image');
  items.push({ path: path.join(dir, 'bad.jpg'), labelIndex: 0, id: 'bad' });
  thread = LoaderThread.start();
});
afterAll(async () => {
  await thread.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const common = { batchSize: 4, normalization: NORM, seed: 9, epoch: 2, shuffle: true, dropLast: false };

describe('LoaderThread', () => {
  it('yields exactly the batches loadBatches yields, and forwards warnings', async () => {
    const local: Batch[] = [];
    for await (const b of loadBatches({ ...common, items, size: SIZE, transform: trainTransform(SIZE, AUG), onWarning: () => undefined })) local.push(b);
    const warnings: LoaderWarning[] = [];
    const remote: Batch[] = [];
    const prefills: PrefillReport[] = [];
    const train = { ...common, items, transform: { kind: 'train', size: SIZE, augmentation: AUG }, onWarning: (w: LoaderWarning) => warnings.push(w), onPrefilled: (r: PrefillReport) => prefills.push(r) } as const;
    for await (const b of thread.batches(train)) remote.push(b);
    // The first training epoch decoded the readable images up front; the next finds them kept.
    expect(prefills).toEqual([expect.objectContaining({ decoded: 11, cachedImages: 11 })]);
    for await (const _ of thread.batches({ ...train, epoch: 3, onWarning: () => undefined })) break;
    expect(prefills).toHaveLength(1);
    expect(remote.map((b) => b.ids)).toEqual(local.map((b) => b.ids));
    for (let k = 0; k < local.length; k++) {
      expect(remote[k].input).toBeInstanceOf(Float32Array);
      expect(Buffer.from(remote[k].input.buffer).equals(Buffer.from(local[k].input.slice().buffer))).toBe(true);
      expect([...remote[k].target]).toEqual([...local[k].target]);
    }
    expect(warnings.map((w) => w.id)).toEqual(['bad']);
  });

  it('decodes ahead on request; an epoch started meanwhile waits for it instead of decoding again', async () => {
    const own = LoaderThread.start();
    try {
      const transform = { kind: 'train', size: SIZE, augmentation: AUG } as const;
      const early = own.prefill({ items, transform });
      const prefills: PrefillReport[] = [];
      const remote: Batch[] = [];
      for await (const b of own.batches({ ...common, items, transform, onWarning: () => undefined, onPrefilled: (r) => prefills.push(r) })) remote.push(b);
      expect(await early).toMatchObject({ decoded: 11, cachedImages: 11 });
      expect(prefills).toEqual([]);
      const local: Batch[] = [];
      for await (const b of loadBatches({ ...common, items, size: SIZE, transform: trainTransform(SIZE, AUG), onWarning: () => undefined })) local.push(b);
      expect(remote.map((b) => b.ids)).toEqual(local.map((b) => b.ids));
      for (let k = 0; k < local.length; k++) expect(Buffer.from(remote[k].input.buffer).equals(Buffer.from(local[k].input.slice().buffer))).toBe(true);
      expect(await own.prefill({ items, transform })).toMatchObject({ decoded: 0, cachedImages: 11 });
    } finally {
      await own.close();
    }
  });

  it('stops on abort and on break, and serves the next epoch afterwards', async () => {
    const controller = new AbortController();
    const run = (async () => {
      for await (const _ of thread.batches({ ...common, items, transform: { kind: 'eval', size: SIZE }, signal: controller.signal, onWarning: () => undefined })) controller.abort();
    })();
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    for await (const _ of thread.batches({ ...common, items, transform: { kind: 'eval', size: SIZE }, onWarning: () => undefined })) break;
    let n = 0;
    for await (const b of thread.batches({ ...common, items, transform: { kind: 'eval', size: SIZE }, onWarning: () => undefined })) n += b.ids.length;
    expect(n).toBe(11);
  });
});
