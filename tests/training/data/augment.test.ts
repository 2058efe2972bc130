import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { applyAugment, augmentImage, colorMatrix, randomResizedCropBox, sampleAugmentParams, type AugmentParams } from '../../../src/training/data/augment.ts';
import { ImageDecodeError, orientedSize } from '../../../src/training/data/decode.ts';
import { evalImage, evalPreprocessing } from '../../../src/training/data/eval-transform.ts';
import { normalizeInto, toTensor } from '../../../src/training/data/tensor.ts';
import { mulberry32 } from '../../../src/datasets/prng.ts';
import { augmentation, gradientImage, gradientRaw } from './helpers.ts';

const ALL_ON = augmentation({
  random_resized_crop: { enabled: true, scale: [0.2, 1] },
  horizontal_flip: { enabled: true, p: 0.5 },
  rotation: { enabled: true, degrees: 30 },
  color_jitter: { enabled: true, brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 },
  grayscale: { enabled: true, p: 0.2 },
});
const NONE: AugmentParams = { crop: null, flip: false, angle: 0, color: null, grayscale: false };

describe('randomResizedCropBox (torchvision get_params)', () => {
  it('stays inside the image with an area in the scale range and a ratio in range', () => {
    const r = mulberry32(7);
    for (let k = 0; k < 500; k++) {
      const b = randomResizedCropBox(200, 120, [0.08, 1], [3 / 4, 4 / 3], r);
      expect(b.left).toBeGreaterThanOrEqual(0);
      expect(b.top).toBeGreaterThanOrEqual(0);
      expect(b.left + b.width).toBeLessThanOrEqual(200);
      expect(b.top + b.height).toBeLessThanOrEqual(120);
      const area = (b.width * b.height) / (200 * 120);
      // w and h are rounded, so the area may overshoot the range by a pixel row or column.
      expect(area).toBeGreaterThan(0.08 * 0.9);
      expect(area).toBeLessThanOrEqual(1);
    }
  });

  it('falls back to the center crop with the nearest allowed ratio after 10 failed tries', () => {
    // Full area at ratio 2–3 never fits a square: w = round(sqrt(A·r)) > width.
    expect(randomResizedCropBox(100, 100, [1, 1], [2, 3], mulberry32(1))).toEqual({ left: 0, top: 25, width: 100, height: 50 });
    expect(randomResizedCropBox(300, 100, [1, 1], [0.5, 1], mulberry32(1))).toEqual({ left: 100, top: 0, width: 100, height: 100 });
    expect(randomResizedCropBox(100, 80, [1, 1], [1, 1.3], mulberry32(1))).toEqual({ left: 0, top: 0, width: 100, height: 80 });
  });
});

describe('sampleAugmentParams', () => {
  it('is a function of the seed alone, and each augmentation has its own stream', () => {
    const a = sampleAugmentParams(ALL_ON, 300, 200, 42);
    expect(sampleAugmentParams(ALL_ON, 300, 200, 42)).toEqual(a);
    expect(sampleAugmentParams(ALL_ON, 300, 200, 43)).not.toEqual(a);
    const noColor = sampleAugmentParams({ ...ALL_ON, color_jitter: { ...ALL_ON.color_jitter, enabled: false } }, 300, 200, 42);
    expect(noColor).toEqual({ ...a, color: null });
  });

  it('draws every factor inside its range', () => {
    for (let s = 0; s < 200; s++) {
      const p = sampleAugmentParams(ALL_ON, 64, 64, s);
      expect(Math.abs(p.angle)).toBeLessThanOrEqual(30);
      expect(p.color?.brightness).toBeGreaterThanOrEqual(0.6);
      expect(p.color?.brightness).toBeLessThanOrEqual(1.4);
      expect(Math.abs(p.color?.hue ?? 1)).toBeLessThanOrEqual(0.1);
    }
    const flips = Array.from({ length: 400 }, (_, s) => sampleAugmentParams(ALL_ON, 64, 64, s).flip).filter(Boolean).length;
    expect(flips).toBeGreaterThan(150);
    expect(flips).toBeLessThan(250);
  });
});

describe('augmentImage', () => {
  it('is deterministic by seed and gives size×size RGB', async () => {
    const bytes = await gradientImage(96, 64, 'jpeg');
    const a = await augmentImage(bytes, 32, ALL_ON, 5);
    const b = await augmentImage(bytes, 32, ALL_ON, 5);
    const c = await augmentImage(bytes, 32, ALL_ON, 6);
    expect([a.width, a.height, a.data.length]).toEqual([32, 32, 32 * 32 * 3]);
    expect(b.data.equals(a.data)).toBe(true);
    expect(c.data.equals(a.data)).toBe(false);
  });

  it('flips to the exact mirror image', async () => {
    const bytes = await gradientImage(80, 60);
    const crop = { left: 7, top: 5, width: 50, height: 41 };
    const plain = await applyAugment(bytes, 24, { ...NONE, crop });
    const flipped = await applyAugment(bytes, 24, { ...NONE, crop, flip: true });
    for (let y = 0; y < 24; y++) {
      for (let x = 0; x < 24; x++) {
        for (let c = 0; c < 3; c++) expect(flipped.data[(y * 24 + x) * 3 + c]).toBe(plain.data[(y * 24 + 23 - x) * 3 + c]);
      }
    }
  });

  it('with nothing enabled equals the eval transform', async () => {
    const bytes = await gradientImage(70, 50, 'jpeg');
    const a = await augmentImage(bytes, 32, augmentation(), 1);
    const e = await evalImage(bytes, 32);
    // Only JPEG shrink-on-load may differ (train allows it); at this size it does not apply.
    expect(a.data.equals(e.data)).toBe(true);
  });

  it('crops in the oriented image (EXIF applied before the crop)', async () => {
    // Stored 40 wide × 20 high, EXIF 6: shown 20 wide × 40 high.
    const bytes = await sharp(gradientRaw(40, 20), { raw: { width: 40, height: 20, channels: 3 } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect(await orientedSize(bytes)).toEqual({ width: 20, height: 40 });
    const bottom = await applyAugment(bytes, 8, { ...NONE, crop: { left: 0, top: 20, width: 20, height: 20 } });
    expect(bottom.width).toBe(8);
    const e = await evalImage(bytes, 16);
    const upright = await sharp(gradientRaw(40, 20), { raw: { width: 40, height: 20, channels: 3 } }).rotate(90).resize(16, 16, { fit: 'fill', kernel: 'linear' }).raw().toBuffer();
    let maxDiff = 0;
    // Red and green are smooth ramps (blue is a sawtooth JPEG blurs): only JPEG loss is left.
    for (let i = 0; i < upright.length; i++) if (i % 3 !== 2) maxDiff = Math.max(maxDiff, Math.abs(upright[i] - e.data[i]));
    expect(maxDiff).toBeLessThan(20); // a wrong orientation differs by ~200
  });

  it('rotation fills the corners black and keeps the size', async () => {
    const white = await sharp({ create: { width: 40, height: 40, channels: 3, background: '#ffffff' } }).png().toBuffer();
    const r = await applyAugment(white, 40, { ...NONE, angle: 45 });
    expect([r.width, r.height]).toEqual([40, 40]);
    const at = (x: number, y: number) => r.data[(y * 40 + x) * 3];
    expect(at(0, 0)).toBe(0);
    expect(at(39, 39)).toBe(0);
    expect(at(20, 20)).toBe(255);
  });

  it('rotates the resized image about its centre (torchvision RandomRotation, expand=False)', async () => {
    const bytes = await gradientImage(50, 40);
    for (const angle of [7.3, -21]) {
      const r = await applyAugment(bytes, 32, { ...NONE, angle });
      // Reference: resize, then turn the 32×32 result on its own and cut out the centre.
      const resized = await evalImage(bytes, 32);
      const turned = await sharp(resized.data, { raw: { width: 32, height: 32, channels: 3 } }).rotate(-angle, { background: '#000' }).raw().toBuffer({ resolveWithObject: true });
      const left = Math.floor((turned.info.width - 32) / 2);
      const top = Math.floor((turned.info.height - 32) / 2);
      const ref = await sharp(turned.data, { raw: { width: turned.info.width, height: turned.info.height, channels: 3 } }).extract({ left, top, width: 32, height: 32 }).raw().toBuffer();
      let maxDiff = 0;
      for (let i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ref[i] - r.data[i]));
      expect(maxDiff).toBeLessThanOrEqual(1);
    }
  });

  it('grayscale gives R = G = B, with torchvision luma weights', async () => {
    const red = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 200, g: 100, b: 50 } } }).png().toBuffer();
    const g = await applyAugment(red, 8, { ...NONE, grayscale: true });
    const y = 0.299 * 200 + 0.587 * 100 + 0.114 * 50;
    for (let i = 0; i < g.data.length; i++) expect(Math.abs(g.data[i] - y)).toBeLessThanOrEqual(1);
  });

  it('brightness and contrast follow torchvision (x·b, then blend with the grey mean)', async () => {
    // Two columns, 40 and 120 grey; 2×2 so the resize to 2×2 is the identity.
    const two = await sharp(Buffer.from([40, 40, 40, 120, 120, 120, 40, 40, 40, 120, 120, 120]), { raw: { width: 2, height: 2, channels: 3 } }).png().toBuffer();
    const color = { brightness: 1.5, contrast: 0.5, saturation: 1, hue: 0 };
    // After brightness: 60 and 180, mean 120; contrast 0.5: 90 and 150.
    const out = await applyAugment(two, 2, { ...NONE, color });
    expect(out.data[0]).toBeCloseTo(90, -0.5);
    expect(out.data[3]).toBeCloseTo(150, -0.5);
  });

  it('hue turns colours about the grey axis and leaves grey alone', async () => {
    const solid = (r: number, g: number, b: number) => sharp({ create: { width: 4, height: 4, channels: 3, background: { r, g, b } } }).png().toBuffer();
    const hue = (turns: number) => ({ ...NONE, color: { brightness: 1, contrast: 1, saturation: 1, hue: turns } });
    const grey = await applyAugment(await solid(90, 90, 90), 4, hue(0.3));
    for (const v of grey.data) expect(Math.abs(v - 90)).toBeLessThanOrEqual(1);
    const red = await applyAugment(await solid(200, 30, 30), 4, hue(1 / 3));
    expect(red.data[1]).toBeGreaterThan(red.data[0]); // red turned a third of the way round: green leads
    expect(red.data[1]).toBeGreaterThan(red.data[2]);
    const back = await applyAugment(await solid(200, 30, 30), 4, hue(0));
    expect([...back.data.subarray(0, 3)]).toEqual([200, 30, 30]);
  });

  it('colorMatrix folds saturation and grayscale into one matrix', () => {
    const { matrix, offset } = colorMatrix({ brightness: 2, contrast: 1, saturation: 0.5, hue: 0 }, false, 100);
    expect(offset).toBe(0);
    expect(matrix[0][0]).toBeCloseTo(2 * (0.5 + 0.5 * 0.299));
    expect(matrix[0][1]).toBeCloseTo(2 * 0.5 * 0.587);
    const gray = colorMatrix(null, true, 0).matrix;
    for (const row of gray) row.forEach((v, j) => expect(v).toBeCloseTo([0.299, 0.587, 0.114][j], 12));
    // Rows of every factor sum to 1, so A's rows sum to b·c and the offset passes through.
    const all = colorMatrix({ brightness: 1.2, contrast: 0.7, saturation: 1.3, hue: 0.1 }, true, 80);
    for (const row of all.matrix) expect(row[0] + row[1] + row[2]).toBeCloseTo(1.2 * 0.7, 12);
    expect(all.offset).toBeCloseTo(0.3 * 1.2 * 80, 12);
  });

  it('flattens alpha onto black and replicates grey to three channels', async () => {
    // 2×2 inputs: the resize to 2×2 is the identity.
    const rgba = await sharp(Buffer.from([255, 0, 0, 0, 0, 255, 0, 255, 0, 0, 255, 255, 9, 9, 9, 0]), { raw: { width: 2, height: 2, channels: 4 } }).png().toBuffer();
    expect([...(await evalImage(rgba, 2)).data]).toEqual([0, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0]);
    const grey = await sharp(Buffer.from([10, 200, 30, 40]), { raw: { width: 2, height: 2, channels: 1 } }).png().toBuffer();
    expect([...(await evalImage(grey, 2)).data]).toEqual([10, 10, 10, 200, 200, 200, 30, 30, 30, 40, 40, 40]);
  });

  it('refuses corrupt and non-image bytes with ImageDecodeError', async () => {
    const jpeg = await gradientImage(64, 64, 'jpeg');
    await expect(evalImage(jpeg.subarray(0, 200), 16)).rejects.toBeInstanceOf(ImageDecodeError);
    await expect(augmentImage(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), 16, ALL_ON, 1)).rejects.toBeInstanceOf(ImageDecodeError);
  });
});

describe('normalisation', () => {
  it('computes (v/255 − mean)/std into CHW', () => {
    const img = { data: Buffer.from([0, 128, 255, 10, 20, 30]), width: 2, height: 1 };
    const norm = { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.5] } as const;
    const t = toTensor(img, norm);
    const expected = [0, 10, 128, 20, 255, 30].map((v, i) => (v / 255 - norm.mean[Math.floor(i / 2)]) / norm.std[Math.floor(i / 2)]);
    for (let i = 0; i < 6; i++) expect(t[i]).toBeCloseTo(expected[i], 5);
    const out = new Float32Array(12).fill(9);
    normalizeInto(img, norm, out, 6);
    expect([...out.subarray(0, 6)]).toEqual([9, 9, 9, 9, 9, 9]);
    expect(() => normalizeInto(img, norm, out, 7)).toThrow(RangeError);
  });

  it('keeps augmented output within the normalised range of [0, 1]', async () => {
    const bytes = await gradientImage(64, 48, 'jpeg');
    const norm = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } as const;
    const t = toTensor(await augmentImage(bytes, 24, ALL_ON, 9), norm);
    expect(t.length).toBe(3 * 24 * 24);
    for (let c = 0; c < 3; c++) {
      const lo = (0 - norm.mean[c]) / norm.std[c];
      const hi = (1 - norm.mean[c]) / norm.std[c];
      for (const v of t.subarray(c * 576, (c + 1) * 576)) {
        expect(v).toBeGreaterThanOrEqual(lo - 1e-5);
        expect(v).toBeLessThanOrEqual(hi + 1e-5);
      }
    }
  });

  it('describes the eval transform for the export manifest', () => {
    const p = evalPreprocessing(224, { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    expect(p.resize).toEqual({ mode: 'stretch', width: 224, height: 224, interpolation: 'bilinear', antialias: true });
    expect(p.scale).toBeCloseTo(1 / 255);
    expect(p.alpha).toBe('flatten_on_black');
  });
});
