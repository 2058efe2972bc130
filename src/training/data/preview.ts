import sharp from 'sharp';
import type { ResolvedAugmentation } from '../../schemas/experiment.ts';
import { augmentImage } from './augment.ts';
import { imageSeed } from './rng.ts';

export interface PreviewOptions {
  size: number;
  augmentation: ResolvedAugmentation;
  count: number;
  /** Sample k uses the seed an image would have at index 0 of epoch k, so a preview is repeatable. */
  seed?: number;
}

export const PREVIEW_MAX = 64;

/**
 * `count` augmented versions of one image as PNGs, before normalisation (what the network sees,
 * in colours a person can judge). Decoding errors surface as `ImageDecodeError`.
 */
export async function renderAugmentationPreview(bytes: Buffer, o: PreviewOptions): Promise<Buffer[]> {
  if (!Number.isInteger(o.count) || o.count < 1 || o.count > PREVIEW_MAX) throw new RangeError(`count must be 1–${PREVIEW_MAX}, got ${o.count}`);
  const seed = o.seed ?? 0;
  return Promise.all(
    Array.from({ length: o.count }, async (_, k) => {
      const img = await augmentImage(bytes, o.size, o.augmentation, imageSeed(seed, k, 0));
      return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();
    }),
  );
}
