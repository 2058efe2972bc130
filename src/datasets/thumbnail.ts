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
