import { mulberry32 } from '../../datasets/prng.ts';

/**
 * Seeds for the data pipeline. Every random choice about one image comes from a generator seeded
 * by (run seed, epoch, the image's index in the item list), never from a shared stream, so the
 * result does not depend on decode order, prefetch depth or concurrency.
 */

/** murmur3's 32-bit finalizer: spreads every input bit over the output. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** One 32-bit seed from several integers (order matters). */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) h = fmix32((h ^ fmix32(p >>> 0)) + 0x9e3779b9 + ((h << 6) >>> 0) + (h >>> 2));
  return h;
}

/** The seed of image `index` in `epoch` of a run seeded `seed`. */
export const imageSeed = (seed: number, epoch: number, index: number): number => mixSeed(seed, epoch, index);

/** A uniform [0, 1) generator for one named purpose of one image. */
export const streamFor = (seed: number, purpose: number): (() => number) => mulberry32(mixSeed(seed, purpose));
