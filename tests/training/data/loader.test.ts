import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderShapeImage } from '../../../src/datasets/synthetic.ts';
import { batchCount, epochOrder, evalTransform, loadBatches, prefillDecoded, trainTransform, type Batch, type LoaderItem, type LoaderOptions, type LoaderWarning } from '../../../src/training/data/loader.ts';
import { DecodedCache } from '../../../src/training/data/decoded-cache.ts';
import { augmentation, gradientImage, tempDir } from './helpers.ts';

const SIZE = 16;
const NORM = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] } as const;
const AUG = augmentation({
  random_resized_crop: { enabled: true },
  horizontal_flip: { enabled: true },
  color_jitter: { enabled: true },
  rotation: { enabled: true, degrees: 10 },
});

const AUG_NO_ROTATION = augmentation({ random_resized_crop: { enabled: true }, horizontal_flip: { enabled: true } });

let dir: string;
let items: LoaderItem[];

beforeAll(async () => {
  dir = await tempDir();
  items = [];
  for (let i = 0; i < 23; i++) {
    const file = path.join(dir, `img${i}.jpg`);
    await fs.writeFile(file, await gradientImage(24 + i, 20 + ((i * 3) % 11), 'jpeg'));
    items.push({ path: file, labelIndex: i % 4, id: `img${i}` });
  }
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function collect(over: Partial<LoaderOptions>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loadBatches({ items, batchSize: 5, size: SIZE, normalization: NORM, transform: trainTransform(SIZE, AUG), seed: 3, epoch: 0, shuffle: true, dropLast: false, ...over })) out.push(b);
  return out;
}

describe('epochOrder', () => {
  it('is a permutation fixed by (seed, epoch)', () => {
    const a = epochOrder(100, 1, 0, true);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(epochOrder(100, 1, 0, true)).toEqual(a);
    expect(epochOrder(100, 1, 1, true)).not.toEqual(a);
    expect(epochOrder(100, 2, 0, true)).not.toEqual(a);
    expect(epochOrder(5, 1, 0, false)).toEqual([0, 1, 2, 3, 4]);
  });

  it('counts batches with and without drop_last', () => {
    expect(batchCount(23, 5, false)).toBe(5);
    expect(batchCount(23, 5, true)).toBe(4);
    expect(batchCount(20, 5, true)).toBe(4);
  });
});

describe('loadBatches', () => {
  it('serves every image once per epoch, in the (seed, epoch) order, with its label', async () => {
    const batches = await collect({});
    expect(batches.map((b) => b.ids.length)).toEqual([5, 5, 5, 5, 3]);
    const indices = batches.flatMap((b) => b.indices);
    expect(indices).toEqual(epochOrder(23, 3, 0, true));
    for (const b of batches) {
      expect(b.input.length).toBe(b.ids.length * 3 * SIZE * SIZE);
      expect([...b.target]).toEqual(b.indices.map((i) => BigInt(i % 4)));
      expect(b.ids).toEqual(b.indices.map((i) => `img${i}`));
    }
    const dropped = await collect({ dropLast: true, shuffle: false });
    expect(dropped.flatMap((b) => b.indices)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('gives identical tensors whatever the prefetch depth and concurrency', async () => {
    const serial = await collect({ prefetch: 0, concurrency: 1 });
    const parallel = await collect({ prefetch: 4, concurrency: 6 });
    expect(parallel.length).toBe(serial.length);
    for (let k = 0; k < serial.length; k++) {
      expect(parallel[k].ids).toEqual(serial[k].ids);
      expect(Buffer.from(parallel[k].input.buffer).equals(Buffer.from(serial[k].input.buffer))).toBe(true);
    }
    const otherEpoch = await collect({ epoch: 1, shuffle: false });
    const sameEpochUnshuffled = await collect({ shuffle: false });
    // Same images, same order, but epoch 1 draws other augmentations.
    expect(Buffer.from(otherEpoch[0].input.buffer).equals(Buffer.from(sameEpochUnshuffled[0].input.buffer))).toBe(false);
  });

  it('gives the same batches with decoded images kept between epochs, and reads no file once they are', async () => {
    const cache = new DecodedCache();
    const plain = AUG_NO_ROTATION;
    for (const epoch of [0, 1]) {
      const without = await collect({ epoch, transform: trainTransform(SIZE, plain) });
      let reads = 0;
      const withCache = await collect({ epoch, transform: trainTransform(SIZE, plain), cache, readFile: (p) => (reads++, fs.readFile(p)) });
      expect(withCache.map((b) => b.ids)).toEqual(without.map((b) => b.ids));
      for (let k = 0; k < without.length; k++) expect(Buffer.from(withCache[k].input.buffer).equals(Buffer.from(without[k].input.buffer))).toBe(true);
      expect(reads).toBe(epoch === 0 ? items.length : 0);
    }
    expect(cache.count).toBe(items.length);
    // with rotation on, images still come from the cache (libvips works from the decoded pixels)
    const rotated = await collect({ epoch: 2, cache });
    const rotatedPlain = await collect({ epoch: 2 });
    for (let k = 0; k < rotated.length; k++) expect(Buffer.from(rotated[k].input.buffer).equals(Buffer.from(rotatedPlain[k].input.buffer))).toBe(true);
    // a budget of 0 keeps nothing and changes nothing
    const none = new DecodedCache(0);
    const zero = await collect({ transform: trainTransform(SIZE, plain), cache: none });
    const ref = await collect({ transform: trainTransform(SIZE, plain) });
    expect(none.count).toBe(0);
    for (let k = 0; k < ref.length; k++) expect(Buffer.from(zero[k].input.buffer).equals(Buffer.from(ref[k].input.buffer))).toBe(true);
  });

  it('decodes training images up front into the cache, until it is full; the epoch then reads no file and gives the same batches', async () => {
    const plain = trainTransform(SIZE, AUG_NO_ROTATION);
    const bad = path.join(dir, 'prefill-bad.jpg');
    await fs.writeFile(bad, 'not an image');
    const withBad = [...items, { path: bad, labelIndex: 0, id: 'bad' }, { path: path.join(dir, 'prefill-gone.jpg'), labelIndex: 1, id: 'gone' }];
    const cache = new DecodedCache();
    const first = await prefillDecoded({ items: withBad, transform: plain, cache });
    // unreadable images are left for the epoch, which skips and reports them
    expect(first.decoded).toBe(items.length);
    expect(cache.count).toBe(items.length);
    expect((await prefillDecoded({ items: withBad, transform: plain, cache })).decoded).toBe(0);
    let reads = 0;
    const warnings: LoaderWarning[] = [];
    const prefilled = await collect({ items: withBad, transform: plain, cache, readFile: (p) => (reads++, fs.readFile(p)), onWarning: (w) => warnings.push(w) });
    const ref = await collect({ items: withBad, transform: plain, onWarning: () => undefined });
    expect(reads).toBe(2);
    expect(warnings.map((w) => w.id).sort()).toEqual(['bad', 'gone']);
    expect(prefilled.map((b) => b.ids)).toEqual(ref.map((b) => b.ids));
    for (let k = 0; k < ref.length; k++) expect(Buffer.from(prefilled[k].input.buffer).equals(Buffer.from(ref[k].input.buffer))).toBe(true);

    // A budget for three of the images keeps three, the first ones that come.
    const threeBytes = [0, 1, 2].reduce((sum, i) => sum + (cache.get(items[i].path)?.data.byteLength ?? 0), 0);
    const small = new DecodedCache(threeBytes);
    expect((await prefillDecoded({ items, transform: plain, cache: small, concurrency: 1 })).decoded).toBe(3);
    expect(items.slice(0, 3).every((it) => small.get(it.path))).toBe(true);
    // Transforms without a cacheable stage decode nothing; an abort stops it.
    expect((await prefillDecoded({ items, transform: evalTransform(SIZE), cache: new DecodedCache() })).decoded).toBe(0);
    const controller = new AbortController();
    controller.abort();
    await expect(prefillDecoded({ items, transform: plain, cache: new DecodedCache(), signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('evaluates without randomness', async () => {
    const a = await collect({ transform: evalTransform(SIZE), shuffle: false, seed: 1 });
    const b = await collect({ transform: evalTransform(SIZE), shuffle: false, seed: 2, epoch: 5 });
    expect(Buffer.from(a[2].input.buffer).equals(Buffer.from(b[2].input.buffer))).toBe(true);
  });

  it('skips a corrupt or missing image with a warning, keeping the rest of its batch', async () => {
    const bad = path.join(dir, 'bad.jpg');
    const good = await gradientImage(30, 30, 'jpeg');
    await fs.writeFile(bad, good.subarray(0, 100));
    const withBad: LoaderItem[] = [items[0], { path: bad, labelIndex: 3, id: 'bad' }, items[1], { path: path.join(dir, 'gone.jpg'), labelIndex: 0, id: 'gone' }, items[2]];
    const warnings: LoaderWarning[] = [];
    const batches: Batch[] = [];
    for await (const b of loadBatches({ items: withBad, batchSize: 4, size: SIZE, normalization: NORM, transform: evalTransform(SIZE), seed: 0, epoch: 0, shuffle: false, dropLast: false, onWarning: (w) => warnings.push(w) })) batches.push(b);
    expect(warnings.map((w) => w.id).sort()).toEqual(['bad', 'gone']);
    expect(batches.map((b) => b.ids)).toEqual([['img0', 'img1'], ['img2']]);
    expect(batches[0].skipped).toEqual(['bad', 'gone']);
    expect([...batches[0].target]).toEqual([0n, 1n]);
    // The packed tensor holds img0 then img1, exactly as loaded alone.
    const alone = await collect({ items: [items[1]], transform: evalTransform(SIZE), shuffle: false });
    expect(Buffer.from(batches[0].input.subarray(3 * SIZE * SIZE).slice().buffer).equals(Buffer.from(alone[0].input.buffer))).toBe(true);
  });

  it('stops on abort, before and during an epoch', async () => {
    const before = new AbortController();
    before.abort();
    await expect(collect({ signal: before.signal })).rejects.toMatchObject({ name: 'AbortError' });

    const during = new AbortController();
    const seen: Batch[] = [];
    const run = (async () => {
      for await (const b of loadBatches({ items, batchSize: 5, size: SIZE, normalization: NORM, transform: trainTransform(SIZE, AUG), seed: 0, epoch: 0, shuffle: true, dropLast: false, signal: during.signal })) {
        seen.push(b);
        during.abort(new Error('cancelled by test'));
      }
    })();
    await expect(run).rejects.toThrow('cancelled by test');
    expect(seen.length).toBe(1);
  });

  it('aborts while waiting on a slow image rather than after it', async () => {
    const controller = new AbortController();
    const slow = (): Promise<Buffer> => new Promise(() => undefined); // never resolves
    const it = loadBatches({ items, batchSize: 5, size: SIZE, normalization: NORM, transform: evalTransform(SIZE), seed: 0, epoch: 0, shuffle: false, dropLast: false, signal: controller.signal, readFile: slow });
    const next = it.next();
    setTimeout(() => controller.abort(), 20);
    await expect(next).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('loads synthetic shapes as the training worker will', async () => {
    const file = path.join(dir, 'shape.png');
    await fs.writeFile(file, await renderShapeImage({ shape: 'circle', size: 64, seed: 1, format: 'png' }));
    const [b] = await collect({ items: [{ path: file, labelIndex: 2 }], batchSize: 1 });
    expect(b.ids).toEqual([file]);
    expect(b.input.every((v) => Number.isFinite(v))).toBe(true);
  });
});
