import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { augmentDecoded, augmentImage, decodeForAugment } from '../../../src/training/data/augment.ts';
import { cropResizeFlip } from '../../../src/training/data/resample.ts';
import { augmentation, gradientImage, gradientRaw } from './helpers.ts';

const grey = (values: number[]) => ({ data: Buffer.from(values.flatMap((v) => [v, v, v])), width: values.length, height: 1 });
const row = (img: { data: Buffer }) => [...img.data].filter((_, i) => i % 3 === 0);

describe('cropResizeFlip (Pillow antialiased bilinear)', () => {
  it("enlarges and shrinks with Pillow's weights (half-pixel centres, widened triangle)", () => {
    // Image.frombytes('L', (2, 1), bytes([0, 100])).resize((4, 1), Image.BILINEAR) → 0 25 75 100
    const up = cropResizeFlip({ ...grey([0, 100]), height: 1 }, null, 4, false);
    expect(up.width).toBe(4);
    // a 1-row image becomes 4×4 here; every row is the same
    expect(row(up).slice(0, 4)).toEqual([0, 25, 75, 100]);
    // [0, 100, 200, 255] halved: weights .75 .75 .25 and .25 .75 .75, over 1.75 → 71 and 209
    const line = [0, 100, 200, 255].flatMap((v) => [v, v, v]);
    const wide = { data: Buffer.from([...line, ...line]), width: 4, height: 2 };
    expect(row(cropResizeFlip(wide, null, 2, false)).slice(0, 2)).toEqual([71, 209]);
  });

  it('is the identity at scale 1, mirrors when flipped, and crops before resizing', () => {
    const img = { data: gradientRaw(12, 12), width: 12, height: 12 };
    expect(cropResizeFlip(img, null, 12, false).data.equals(img.data)).toBe(true);
    const flipped = cropResizeFlip(img, null, 12, true);
    for (let y = 0; y < 12; y++) {
      for (let x = 0; x < 12; x++) {
        for (let c = 0; c < 3; c++) expect(flipped.data[(y * 12 + x) * 3 + c]).toBe(img.data[(y * 12 + 11 - x) * 3 + c]);
      }
    }
    const crop = cropResizeFlip(img, { left: 3, top: 4, width: 5, height: 5 }, 5, false);
    for (let y = 0; y < 5; y++) expect([...crop.data.subarray(y * 15, y * 15 + 15)]).toEqual([...img.data.subarray(((4 + y) * 12 + 3) * 3, ((4 + y) * 12 + 8) * 3)]);
    expect(() => cropResizeFlip(img, { left: 10, top: 0, width: 5, height: 5 }, 4, false)).toThrow(RangeError);
  });

  it('agrees with libvips within rounding on a smooth image, enlarging and shrinking', async () => {
    const [w, h] = [60, 48];
    const raw = gradientRaw(w, h);
    const img = { data: raw, width: w, height: h };
    for (const [box, size] of [[{ left: 10, top: 6, width: 30, height: 30 }, 45], [{ left: 0, top: 0, width: 60, height: 48 }, 24]] as const) {
      const ours = cropResizeFlip(img, box, size, false);
      const vips = await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).extract(box).resize(size, size, { fit: 'fill', kernel: 'linear' }).raw().toBuffer();
      // channels 0 and 1 are smooth ramps (channel 2 is a sawtooth that no two filters agree on)
      let sum = 0;
      let n = 0;
      for (let i = 0; i < vips.length; i++) if (i % 3 !== 2) { sum += Math.abs(ours.data[i] - vips[i]); n++; }
      expect(sum / n).toBeLessThan(2.5);
    }
  });
});

describe('the two-stage training transform', () => {
  const AUG = augmentation({ random_resized_crop: { enabled: true, scale: [0.2, 1] }, horizontal_flip: { enabled: true } });

  it('gives the same pixels from the file and from the decoded image', async () => {
    const bytes = await gradientImage(40, 30, 'jpeg');
    const decoded = await decodeForAugment(bytes, 32);
    expect(decoded).not.toBeNull();
    for (const seed of [1, 2, 3, 4, 5]) {
      const a = await augmentImage(bytes, 32, AUG, seed);
      const b = await augmentDecoded(decoded!, 32, AUG, seed);
      expect(a.data.equals(b.data)).toBe(true);
    }
  });

  it('leaves sources larger than 16·size² to libvips, from the file', async () => {
    const bytes = await gradientImage(200, 100, 'jpeg');
    expect(await decodeForAugment(bytes, 32)).toBeNull();
    const out = await augmentImage(bytes, 32, AUG, 9);
    expect([out.width, out.height, out.data.length]).toEqual([32, 32, 32 * 32 * 3]);
  });
});
