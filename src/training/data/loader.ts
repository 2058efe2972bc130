import fs from 'node:fs/promises';
import { mulberry32, shuffleInPlace } from '../../datasets/prng.ts';
import type { ResolvedAugmentation } from '../../schemas/experiment.ts';
import { augmentDecoded, augmentImage, decodeForAugment } from './augment.ts';
import { ImageDecodeError, type RgbImage } from './decode.ts';
import type { DecodedCache } from './decoded-cache.ts';
import { evalImage } from './eval-transform.ts';
import { imageSeed, mixSeed } from './rng.ts';
import { normalizeInto, type Normalization } from './tensor.ts';

/**
 * Batches for training and validation. Images are read, decoded and augmented ahead of the
 * consumer: up to `prefetch` batches beyond the one being consumed are in flight, with at most
 * `concurrency` images decoding at once (sharp works on libuv's threadpool, so decoding overlaps
 * whatever the consuming thread does meanwhile, including an onnxruntime step). The order of an
 * epoch depends only on (seed, epoch); an image's augmentation only on (seed, epoch, its index in
 * `items`), so prefetch depth and concurrency never change a batch. With a `cache`, training images
 * decoded once are kept for later epochs (decoded-cache.ts); the batches are the same either way.
 * The crop-resize of resample.ts runs on the calling thread: the training worker calls this from
 * its own loader thread (loader-thread.ts).
 */

export interface LoaderItem {
  path: string;
  labelIndex: number;
  /** Reported in batches and warnings; the path when absent. */
  id?: string;
  /** Oriented size as the dataset recorded it; saves reading the header (optional). */
  width?: number;
  height?: number;
}

/** Bytes → `size`×`size` RGB; `seed` is the image's own (see rng.ts). */
export interface ImageTransform {
  (bytes: Buffer, seed: number): Promise<RgbImage>;
  /** The same transform in two stages, where the first (a decode, or null: not kept) may be cached between epochs. */
  staged?: {
    decode(bytes: Buffer, known?: { width: number; height: number }): Promise<RgbImage | null>;
    apply(img: RgbImage, seed: number): Promise<RgbImage>;
  };
}

export interface LoaderWarning {
  id: string;
  path: string;
  message: string;
}

export interface LoaderOptions {
  items: readonly LoaderItem[];
  batchSize: number;
  /** The side every transform output has. */
  size: number;
  normalization: Normalization;
  transform: ImageTransform;
  seed: number;
  epoch: number;
  shuffle: boolean;
  dropLast: boolean;
  /** Batches prepared beyond the one being consumed (default 2). */
  prefetch?: number;
  /** Images decoding at once (default: libuv's threadpool size, where sharp runs; 4 unless UV_THREADPOOL_SIZE says). */
  concurrency?: number;
  signal?: AbortSignal;
  /** Keeps decoded images between epochs, for transforms with a `staged` form (default: none). */
  cache?: DecodedCache;
  /** An image that cannot be read or decoded is skipped and reported here (default: console.warn). */
  onWarning?: (w: LoaderWarning) => void;
  readFile?: (path: string) => Promise<Buffer>;
}

export interface Batch {
  /** [n, 3, size, size], n ≤ batchSize (smaller when images were skipped, or the last batch). */
  input: Float32Array;
  /** [n] class indices. */
  target: BigInt64Array;
  ids: string[];
  /** Indices into `items`, in batch order. */
  indices: number[];
  /** Ids of images skipped from this batch. */
  skipped: string[];
}

// Measured (bench/loader.ts, 2 cores): 4 images in flight beat 1 or 2 by 20–40 %; more only queue.
const DEFAULT_CONCURRENCY = Math.max(1, Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? '', 10) || 4);

export const trainTransform = (size: number, aug: ResolvedAugmentation): ImageTransform =>
  Object.assign((bytes: Buffer, seed: number) => augmentImage(bytes, size, aug, seed), {
    staged: {
      decode: (bytes: Buffer, known?: { width: number; height: number }) => decodeForAugment(bytes, size, known),
      apply: (img: RgbImage, seed: number) => augmentDecoded(img, size, aug, seed),
    },
  });
export const evalTransform = (size: number): ImageTransform => (bytes) => evalImage(bytes, size);

/** The item indices of an epoch in the order they are served. */
export function epochOrder(n: number, seed: number, epoch: number, shuffle: boolean): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  return shuffle ? shuffleInPlace(order, mulberry32(mixSeed(0x5eed, seed, epoch))) : order;
}

export function batchCount(n: number, batchSize: number, dropLast: boolean): number {
  return dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

/** A FIFO counting semaphore: earlier batches' images are decoded first. */
class Semaphore {
  #free: number;
  #waiting: (() => void)[] = [];
  constructor(slots: number) {
    this.#free = slots;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

/** Resolves as `p`, or rejects as soon as `signal` aborts. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function validate(o: LoaderOptions): void {
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${o.batchSize}`);
  if (!Number.isInteger(o.size) || o.size < 1) throw new RangeError(`size must be a positive integer, got ${o.size}`);
  for (const [name, v] of [['prefetch', o.prefetch], ['concurrency', o.concurrency]] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < (name === 'prefetch' ? 0 : 1))) throw new RangeError(`${name} out of range: ${v}`);
  }
}

/** One epoch of batches. Stops early (and stops decoding) when the consumer breaks or `signal` aborts. */
export async function* loadBatches(o: LoaderOptions): AsyncGenerator<Batch, void, undefined> {
  validate(o);
  const { items, batchSize, size, signal } = o;
  const order = epochOrder(items.length, o.seed, o.epoch, o.shuffle);
  const nBatches = batchCount(items.length, batchSize, o.dropLast);
  const sem = new Semaphore(o.concurrency ?? DEFAULT_CONCURRENCY);
  const read = o.readFile ?? ((p: string) => fs.readFile(p));
  const warn = o.onWarning ?? ((w: LoaderWarning) => console.warn(`skipping image ${w.id} (${w.path}): ${w.message}`));
  const plane = 3 * size * size;
  let closed = false;

  const staged = o.transform.staged;
  const cache = o.cache;
  /** The transform, through the decoded cache where there is one (same result either way). */
  const transformItem = async (item: LoaderItem, seed: number): Promise<RgbImage> => {
    const path = item.path;
    if (!staged || !cache) return o.transform(await read(path), seed);
    const hit = cache.get(path);
    if (hit) return staged.apply(hit, seed);
    const bytes = await read(path);
    const decoded = cache.isLarge(path) ? null : await decodeToKeep(staged, cache, item, bytes);
    if (!decoded) return o.transform(bytes, seed);
    cache.set(path, decoded);
    return staged.apply(decoded, seed);
  };

  /** The image at `index` written into `out` at slot `slot`; false when it was skipped. */
  const loadInto = (index: number, out: Float32Array, slot: number): Promise<boolean> =>
    sem.run(async () => {
      if (closed || signal?.aborted) return false;
      const item = items[index];
      try {
        const img = await transformItem(item, imageSeed(o.seed, o.epoch, index));
        if (img.width !== size || img.height !== size) throw new RangeError(`transform gave ${img.width}×${img.height}, expected ${size}×${size}`);
        if (closed) return false;
        normalizeInto(img, o.normalization, out, slot * plane);
        return true;
      } catch (e) {
        if (!(e instanceof ImageDecodeError) && !isFsError(e)) throw e;
        if (!closed) warn({ id: item.id ?? item.path, path: item.path, message: e.message });
        return false;
      }
    });

  const startBatch = (b: number): Promise<Batch> => {
    const indices = order.slice(b * batchSize, Math.min((b + 1) * batchSize, items.length));
    const input = new Float32Array(indices.length * plane);
    return Promise.all(indices.map((index, slot) => loadInto(index, input, slot))).then((ok) => assemble(indices, ok, input, plane, items));
  };

  const inFlight: Promise<Batch>[] = [];
  const depth = (o.prefetch ?? 2) + 1;
  let next = 0;
  const fill = () => {
    while (next < nBatches && inFlight.length < depth) {
      const p = startBatch(next++);
      // Rejections are seen when the batch is awaited; this keeps an abandoned one from being "unhandled".
      p.catch(() => undefined);
      inFlight.push(p);
    }
  };
  try {
    for (let b = 0; b < nBatches; b++) {
      if (signal?.aborted) throw abortReason(signal);
      fill();
      const batch = await raceAbort(inFlight.shift() as Promise<Batch>, signal);
      fill();
      if (batch.ids.length > 0) yield batch;
    }
  } finally {
    closed = true;
  }
}

export interface PrefillOptions {
  items: readonly LoaderItem[];
  /** A transform with a `staged` form (the training transform); others are not cached. */
  transform: ImageTransform;
  cache: DecodedCache;
  concurrency?: number;
  signal?: AbortSignal;
  readFile?: (path: string) => Promise<Buffer>;
}

export interface PrefillResult {
  /** Images decoded by this call (those already kept or too large are not counted). */
  decoded: number;
  seconds: number;
}

/**
 * Decodes training images into `cache` before the first step, until the cache is full. Decoding
 * beside a running step costs the step more than the decode itself: on 2 cores a step's two
 * threads meet at every op, so a decode that preempts one of them idles the other (measured: the
 * first epoch lost ≈ 12 % of the bare step rate, later epochs ≈ 4 %). Done up front, with nothing
 * else running, 2,000 224×224 JPEGs take about a second. Images that fail to read or decode are
 * left for the epoch, which skips and reports them; batches are the same with or without this.
 */
export async function prefillDecoded(o: PrefillOptions): Promise<PrefillResult> {
  const t0 = performance.now();
  const staged = o.transform.staged;
  if (!staged) return { decoded: 0, seconds: 0 };
  const read = o.readFile ?? ((p: string) => fs.readFile(p));
  let decoded = 0;
  let full = false;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (!full && next < o.items.length) {
      if (o.signal?.aborted) throw abortReason(o.signal);
      const item = o.items[next++];
      if (o.cache.get(item.path) || o.cache.isLarge(item.path)) continue;
      let img: RgbImage | null;
      try {
        img = await decodeToKeep(staged, o.cache, item, await read(item.path));
      } catch (e) {
        if (e instanceof ImageDecodeError || isFsError(e)) continue;
        throw e;
      }
      if (!img) continue;
      // First come, first kept, as in the epochs: the first image that does not fit ends it.
      if (o.cache.set(item.path, img)) decoded += 1;
      else full = true;
    }
  };
  await Promise.all(Array.from({ length: o.concurrency ?? DEFAULT_CONCURRENCY }, worker));
  return { decoded, seconds: (performance.now() - t0) / 1000 };
}

/** The first stage of a staged transform, for the cache: null (and marked so) for a source too large to hold decoded. */
async function decodeToKeep(staged: NonNullable<ImageTransform['staged']>, cache: DecodedCache, item: LoaderItem, bytes: Buffer): Promise<RgbImage | null> {
  const img = await staged.decode(bytes, item.width && item.height ? { width: item.width, height: item.height } : undefined);
  if (!img) cache.markLarge(item.path);
  return img;
}

function isFsError(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' && (e as NodeJS.ErrnoException).syscall !== undefined;
}

/** Packs the images that loaded to the front of the batch. */
function assemble(indices: number[], ok: boolean[], input: Float32Array, plane: number, items: readonly LoaderItem[]): Batch {
  const kept: number[] = [];
  const skipped: string[] = [];
  indices.forEach((index, slot) => {
    if (ok[slot]) {
      if (kept.length !== slot) input.copyWithin(kept.length * plane, slot * plane, (slot + 1) * plane);
      kept.push(index);
    } else {
      skipped.push(items[index].id ?? items[index].path);
    }
  });
  return {
    input: kept.length === indices.length ? input : input.slice(0, kept.length * plane),
    target: BigInt64Array.from(kept, (i) => BigInt(items[i].labelIndex)),
    ids: kept.map((i) => items[i].id ?? items[i].path),
    indices: kept,
    skipped,
  };
}
