import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { ResolvedAugmentationSchema, type ResolvedAugmentation, type ResolvedAugmentationInput } from '../../../src/schemas/experiment.ts';

/** A deterministic, asymmetric test image: channels vary differently along x and y. */
export function gradientRaw(width: number, height: number): Buffer {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = Math.round((255 * x) / Math.max(1, width - 1));
      data[i + 1] = Math.round((255 * y) / Math.max(1, height - 1));
      data[i + 2] = (x * 7 + y * 13) % 256;
    }
  }
  return data;
}

export function gradientImage(width: number, height: number, format: 'png' | 'jpeg' = 'png'): Promise<Buffer> {
  const s = sharp(gradientRaw(width, height), { raw: { width, height, channels: 3 } });
  return (format === 'png' ? s.png() : s.jpeg({ quality: 90 })).toBuffer();
}

/** All augmentations off, then `over` applied. */
export function augmentation(over: Partial<ResolvedAugmentationInput> = {}): ResolvedAugmentation {
  return ResolvedAugmentationSchema.parse({
    random_resized_crop: { enabled: false },
    horizontal_flip: { enabled: false },
    normalize: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    ...over,
  });
}

export async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'studio-data-'));
}
