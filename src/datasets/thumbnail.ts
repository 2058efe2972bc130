import sharp from 'sharp';
import { classifyDecodeError, openImage, type DecodeOptions } from './image.ts';
import type { ImageFormat } from './types.ts';

export const THUMBNAIL_SIZE = 128;

/**
 * A WebP thumbnail, at most 128 px on its long side, EXIF orientation applied, never enlarged.
 * It decodes the whole image, so it is also the import's check for truncated or corrupt data.
 */
export async function makeThumbnail(buf: Buffer, format: ImageFormat, opts: DecodeOptions = {}): Promise<Buffer> {
  try {
    return await openImage(buf, format, opts)
      .autoOrient()
      .resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'inside', withoutEnlargement: true })
      .webp({ quality: 75, effort: 2 })
      .toBuffer();
  } catch (e) {
    throw classifyDecodeError(e);
  }
}

/** Below this standard deviation (of 255, the largest of the channels) an image is one flat colour. */
export const NEAR_CONSTANT_STDEV = 2;

/** How much a thumbnail's pixels vary: the largest standard deviation of its colour channels. */
export async function thumbnailSpread(thumbnail: Buffer): Promise<number> {
  const { channels } = await sharp(thumbnail).removeAlpha().stats();
  return Math.max(...channels.map((c) => c.stdev));
}
