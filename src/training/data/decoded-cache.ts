import os from 'node:os';
import type { RgbImage } from './decode.ts';

/**
 * Decoded training images kept between epochs, up to a byte budget (first come, first kept: with
 * shuffled epochs no image is likelier to be asked for again than another). Decoding a 224×224 JPEG
 * costs about 0.9 ms of the ≈ 3 ms an augmented image takes on the loader thread; on 2 cores that
 * CPU is taken from the training step. Sources too large to decode whole are remembered as such,
 * so their header is not read again to find out.
 */

/** 1 GiB, or an eighth of the machine's memory where that is less. */
export const DEFAULT_DECODED_CACHE_BYTES = Math.min(1024 * 1024 * 1024, Math.floor(os.totalmem() / 8));

export class DecodedCache {
  readonly budgetBytes: number;
  #bytes = 0;
  readonly #images = new Map<string, RgbImage>();
  readonly #large = new Set<string>();

  constructor(budgetBytes = DEFAULT_DECODED_CACHE_BYTES) {
    if (!Number.isFinite(budgetBytes) || budgetBytes < 0) throw new RangeError(`budget must be a non-negative number of bytes, got ${budgetBytes}`);
    this.budgetBytes = budgetBytes;
  }

  get(key: string): RgbImage | undefined {
    return this.#images.get(key);
  }

  /** Keeps `img` if it fits in what is left of the budget; says whether it did. */
  set(key: string, img: RgbImage): boolean {
    if (this.#images.has(key)) return true;
    if (this.#bytes + img.data.byteLength > this.budgetBytes) return false;
    this.#images.set(key, img);
    this.#bytes += img.data.byteLength;
    return true;
  }

  markLarge(key: string): void {
    this.#large.add(key);
  }

  isLarge(key: string): boolean {
    return this.#large.has(key);
  }

  get sizeBytes(): number {
    return this.#bytes;
  }

  get count(): number {
    return this.#images.size;
  }
}
