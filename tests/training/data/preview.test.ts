import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { renderAugmentationPreview } from '../../../src/training/data/preview.ts';
import { augmentation, gradientImage } from './helpers.ts';

describe('renderAugmentationPreview', () => {
  it('renders N distinct, repeatable size×size PNGs', async () => {
    const bytes = await gradientImage(80, 60, 'jpeg');
    const aug = augmentation({ random_resized_crop: { enabled: true }, horizontal_flip: { enabled: true } });
    const a = await renderAugmentationPreview(bytes, { size: 32, augmentation: aug, count: 4, seed: 1 });
    const b = await renderAugmentationPreview(bytes, { size: 32, augmentation: aug, count: 4, seed: 1 });
    expect(a).toHaveLength(4);
    for (let k = 0; k < 4; k++) {
      expect(a[k].equals(b[k])).toBe(true);
      const meta = await sharp(a[k]).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['png', 32, 32]);
    }
    expect(new Set(a.map((x) => x.toString('base64'))).size).toBe(4);
    await expect(renderAugmentationPreview(bytes, { size: 32, augmentation: aug, count: 0 })).rejects.toThrow(RangeError);
  });
});
