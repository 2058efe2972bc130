import sharp, { type Sharp } from 'sharp';
import { openImage, sniffImage } from '../../datasets/image.ts';

/**
 * Decoding for training and evaluation: the bytes' own format (never the file name), EXIF
 * orientation applied, alpha flattened onto black (so transparent pixels read the same whatever
 * RGB a writer left under them, and match the black fill of rotation), converted to 8-bit sRGB
 * with exactly 3 channels (grey images are replicated, 16-bit ones scaled).
 */

/** An image as interleaved 8-bit RGB (HWC). */
export interface RgbImage {
  data: Buffer;
  width: number;
  height: number;
}

export class ImageDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageDecodeError';
  }
}

/** A sharp pipeline over `bytes` with orientation applied; geometry and colour ops are chained by callers. */
export function openOriented(bytes: Buffer): Sharp {
  const sniff = sniffImage(bytes);
  if (sniff === null) throw new ImageDecodeError('not a JPEG, PNG, WebP, GIF, TIFF or BMP image');
  return openImage(bytes, sniff.format).autoOrient();
}

/** Width and height after EXIF orientation, from the header only. */
export async function orientedSize(bytes: Buffer): Promise<{ width: number; height: number }> {
  try {
    const meta = await openOriented(bytes).metadata();
    const o = meta.autoOrient ?? { width: meta.width, height: meta.height };
    if (!o.width || !o.height) throw new ImageDecodeError('image has no size');
    return { width: o.width, height: o.height };
  } catch (e) {
    throw asDecodeError(e);
  }
}

/** The last steps of every pipeline: flatten, sRGB, 3 channels of 8 bits, raw. */
export async function toRgb(pipeline: Sharp): Promise<RgbImage> {
  try {
    const { data, info } = await pipeline
      .flatten({ background: '#000000' })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new ImageDecodeError(`expected 3 channels after conversion, got ${info.channels}`);
    return { data, width: info.width, height: info.height };
  } catch (e) {
    throw asDecodeError(e);
  }
}

/** Raw RGB as a sharp input, for a second pipeline over an already decoded image. */
export function fromRgb(img: RgbImage): Sharp {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
}

export function asDecodeError(e: unknown): ImageDecodeError {
  if (e instanceof ImageDecodeError) return e;
  return new ImageDecodeError(e instanceof Error ? e.message : String(e));
}
