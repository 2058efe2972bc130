import type { Matrix3x3, Sharp } from 'sharp';
import type { ResolvedAugmentation } from '../../schemas/experiment.ts';
import { fromRgb, openOriented, orientedSize, toRgb, type RgbImage } from './decode.ts';
import { cropResizeFlip } from './resample.ts';
import { streamFor } from './rng.ts';

/**
 * Training augmentation with sharp, in torchvision's order: RandomResizedCrop (or a plain resize
 * to size×size when it is off, the same geometry as the eval transform), RandomHorizontalFlip,
 * RandomRotation, ColorJitter, RandomGrayscale. Each augmentation draws from its own stream of
 * the image seed, so turning one on or off leaves the others' choices unchanged.
 *
 * Two stages, so that the loader can keep decoded images between epochs: `decodeForAugment` (the
 * oriented pixels, for sources up to 16·size²) and `augmentDecoded`, which crops, resizes and flips
 * in resample.ts (Pillow's antialiased bilinear) and leaves rotation and large crops to libvips.
 * Which path an image takes depends only on its size and its params, never on the cache, so a
 * batch is the same whether its images were cached or not.
 *
 * Where it differs from torchvision, and why:
 *  - ColorJitter applies brightness, contrast, saturation, hue in that fixed order (torchvision
 *    permutes them), folded with grayscale into one 3×3 matrix and an offset for sharp's
 *    `recomb` and `linear`, so the image is rounded and clamped once instead of after each op.
 *    Contrast's grey mean is taken over the rotated image, black corners included, as torchvision.
 *  - Hue turns colours about the grey axis with the SVG/CSS `hueRotate` matrix rather than in
 *    HSV: linear, so it folds into the same matrix (sharp's LCh `modulate` cost as much as the
 *    whole decode).
 */

export interface CropBox {
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface ColorJitterParams {
  brightness: number;
  contrast: number;
  saturation: number;
  /** In turns, [-0.5, 0.5]. */
  hue: number;
}

export interface AugmentParams {
  /** In the oriented source image's pixels; null: the whole image. */
  crop: CropBox | null;
  flip: boolean;
  /** Degrees, counter-clockwise positive as torchvision; 0: none. */
  angle: number;
  color: ColorJitterParams | null;
  grayscale: boolean;
}

// One stream per augmentation (see the header).
const STREAM = { crop: 1, flip: 2, rotation: 3, color: 4, grayscale: 5 } as const;

const uniform = (r: () => number, a: number, b: number) => a + (b - a) * r();
/** torch.randint(0, n): an integer in [0, n). */
const randint = (r: () => number, n: number) => Math.min(n - 1, Math.floor(r() * n));

/** torchvision's RandomResizedCrop.get_params: 10 tries at a random area and aspect ratio, then a center crop. */
export function randomResizedCropBox(
  width: number,
  height: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
  random: () => number,
): CropBox {
  const area = width * height;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * uniform(random, scale[0], scale[1]);
    const aspect = Math.exp(uniform(random, logRatio[0], logRatio[1]));
    const w = Math.round(Math.sqrt(targetArea * aspect));
    const h = Math.round(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = randint(random, height - h + 1);
      const left = randint(random, width - w + 1);
      return { left, top, width: w, height: h };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < Math.min(...ratio)) h = Math.round(w / Math.min(...ratio));
  else if (inRatio > Math.max(...ratio)) w = Math.round(h * Math.max(...ratio));
  return { left: Math.floor((width - w) / 2), top: Math.floor((height - h) / 2), width: w, height: h };
}

/** Every random choice for one image of `width`×`height` (after orientation). */
export function sampleAugmentParams(aug: ResolvedAugmentation, width: number, height: number, seed: number): AugmentParams {
  const rrc = aug.random_resized_crop;
  const crop = rrc.enabled ? randomResizedCropBox(width, height, rrc.scale, rrc.ratio, streamFor(seed, STREAM.crop)) : null;
  const flip = aug.horizontal_flip.enabled && streamFor(seed, STREAM.flip)() < aug.horizontal_flip.p;
  const rot = aug.rotation;
  const angle = rot.enabled && rot.degrees > 0 ? uniform(streamFor(seed, STREAM.rotation), -rot.degrees, rot.degrees) : 0;
  const cj = aug.color_jitter;
  let color: ColorJitterParams | null = null;
  if (cj.enabled) {
    const r = streamFor(seed, STREAM.color);
    color = {
      brightness: uniform(r, Math.max(0, 1 - cj.brightness), 1 + cj.brightness),
      contrast: uniform(r, Math.max(0, 1 - cj.contrast), 1 + cj.contrast),
      saturation: uniform(r, Math.max(0, 1 - cj.saturation), 1 + cj.saturation),
      hue: uniform(r, -cj.hue, cj.hue),
    };
  }
  const grayscale = aug.grayscale.enabled && streamFor(seed, STREAM.grayscale)() < aug.grayscale.p;
  return { crop, flip, angle, color, grayscale };
}

/** ITU-R 601 luma, as torchvision's rgb_to_grayscale. */
const LUMA = [0.299, 0.587, 0.114] as const;

/** Mean luma of an image, in 0–255. */
function meanLuma(img: RgbImage): number {
  let sum = 0;
  const d = img.data;
  for (let i = 0; i < d.length; i += 3) sum += LUMA[0] * d[i] + LUMA[1] * d[i + 1] + LUMA[2] * d[i + 2];
  return sum / (d.length / 3);
}

type Mat3 = [[number, number, number], [number, number, number], [number, number, number]];

const matmul = (a: Mat3, b: Mat3): Mat3 =>
  [0, 1, 2].map((i) => [0, 1, 2].map((j) => a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j])) as Mat3;

/** The SVG feColorMatrix `hueRotate` matrix for a turn of `turns` (its rows sum to 1: grey stays grey). */
function hueMatrix(turns: number): Mat3 {
  const c = Math.cos(turns * 2 * Math.PI);
  const s = Math.sin(turns * 2 * Math.PI);
  return [
    [0.213 + c * 0.787 - s * 0.213, 0.715 - c * 0.715 - s * 0.715, 0.072 - c * 0.072 + s * 0.928],
    [0.213 - c * 0.213 + s * 0.143, 0.715 + c * 0.285 + s * 0.14, 0.072 - c * 0.072 - s * 0.283],
    [0.213 - c * 0.213 - s * 0.787, 0.715 - c * 0.715 + s * 0.715, 0.072 + c * 0.928 + s * 0.072],
  ];
}

/**
 * brightness b, contrast c (around grey mean m), saturation s, hue H, then grayscale, as x ↦ A·x + o:
 *   x1 = b·x;  x2 = c·x1 + (1−c)·b·m;  x3 = H·(s·I + (1−s)·G)·x2;  x4 = G·x3
 * with G = 1·lumaᵀ. Every matrix here has rows summing to 1, so the constant (1−c)·b·m passes
 * through them unchanged: A = b·c·[G]·H·S, o = (1−c)·b·m.
 */
export function colorMatrix(color: ColorJitterParams | null, grayscale: boolean, mean: number): { matrix: Matrix3x3; offset: number } {
  const b = color?.brightness ?? 1;
  const c = color?.contrast ?? 1;
  const s = color?.saturation ?? 1;
  const sat = [0, 1, 2].map((i) => [0, 1, 2].map((j) => b * c * ((i === j ? s : 0) + (1 - s) * LUMA[j]))) as Mat3;
  let m = color && color.hue !== 0 ? matmul(hueMatrix(color.hue), sat) : sat;
  if (grayscale) m = matmul([[...LUMA], [...LUMA], [...LUMA]], m);
  return { matrix: m, offset: (1 - c) * b * mean };
}

/**
 * The canvas libvips gives an image of w×h turned by `degrees`: the rounded bounding box
 * (checked against sharp for sizes 32–224 and angles up to ±180°).
 */
function rotatedCanvas(w: number, h: number, degrees: number): { width: number; height: number } {
  const r = (Math.abs(degrees) * Math.PI) / 180;
  const c = Math.abs(Math.cos(r));
  const s = Math.abs(Math.sin(r));
  return { width: Math.round(w * c + h * s), height: Math.round(w * s + h * c) };
}

/**
 * Sources up to this many times size² pixels are decoded whole (and may be kept between epochs by
 * the loader, decoded-cache.ts); larger ones are cropped and shrunk by libvips straight from the
 * file, where JPEG shrink-on-load skips most of the decoding.
 */
const MAX_DECODED_AREA = 16;
/**
 * Crops up to this area (× size²) are resized by resample.ts on the decoded pixels; larger ones by
 * libvips' reduce from the same pixels. libvips' extract + enlarge of a 224×224 JPEG took 1.7 ms of
 * CPU on top of the decode, resample.ts 0.8 ms.
 */
const FAST_CROP_AREA = 4;

/** Applies `p` to the image in `bytes` with libvips, giving `size`×`size` RGB. */
export async function applyAugment(bytes: Buffer, size: number, p: AugmentParams): Promise<RgbImage> {
  return applyColor(await sharpGeometry(openOriented(bytes), size, p), p);
}

/** Crop, resize, flip and rotation by libvips. */
async function sharpGeometry(input: Sharp, size: number, p: AugmentParams): Promise<RgbImage> {
  let pipeline = input;
  if (p.crop !== null) pipeline = pipeline.extract(p.crop);
  pipeline = pipeline.resize(size, size, { fit: 'fill', kernel: 'linear' });
  if (p.flip) pipeline = pipeline.flop();
  if (p.angle !== 0) {
    // sharp turns clockwise for positive angles and grows the canvas; the centre is cut back out
    // (torchvision's expand=False).
    const canvas = rotatedCanvas(size, size, p.angle);
    const left = Math.floor((canvas.width - size) / 2);
    const top = Math.floor((canvas.height - size) / 2);
    pipeline = pipeline.rotate(-p.angle, { background: '#000000' }).extract({ left, top, width: size, height: size });
  }
  return toRgb(pipeline);
}

/** Colour jitter and grayscale on the geometric result. */
async function applyColor(geometric: RgbImage, p: AugmentParams): Promise<RgbImage> {
  if (p.color === null && !p.grayscale) return geometric;
  const needsMean = p.color !== null && p.color.contrast !== 1;
  const { matrix, offset } = colorMatrix(p.color, p.grayscale, needsMean ? meanLuma(geometric) : 0);
  // sharp runs recomb before linear whatever the call order.
  return toRgb(fromRgb(geometric).recomb(matrix).linear([1, 1, 1], [offset, offset, offset]));
}

/**
 * The first stage of the training transform: the oriented image decoded whole, or null when it is
 * too large to hold (then `augmentImage` works from the file). `known`: its oriented size, when the
 * caller has it (only the choice between the two depends on it; the params use the decoded size).
 */
export async function decodeForAugment(bytes: Buffer, size: number, known?: { width: number; height: number }): Promise<RgbImage | null> {
  // The dataset records every image's oriented size; the header is read only when it is not given.
  const source = known ?? (await orientedSize(bytes));
  return source.width * source.height <= MAX_DECODED_AREA * size * size ? toRgb(openOriented(bytes)) : null;
}

/** The second stage: params drawn from `seed` for the decoded image, then applied. */
export async function augmentDecoded(img: RgbImage, size: number, aug: ResolvedAugmentation, seed: number): Promise<RgbImage> {
  const p = sampleAugmentParams(aug, img.width, img.height, seed);
  // Without a random crop the whole image is resized by libvips, as the eval transform does.
  const geometric = p.angle === 0 && p.crop !== null && p.crop.width * p.crop.height <= FAST_CROP_AREA * size * size
    ? cropResizeFlip(img, p.crop, size, p.flip)
    : await sharpGeometry(fromRgb(img), size, p);
  return applyColor(geometric, p);
}

/** The training transform of one image: its params drawn from `seed`, then applied. */
export async function augmentImage(bytes: Buffer, size: number, aug: ResolvedAugmentation, seed: number): Promise<RgbImage> {
  const source = await orientedSize(bytes);
  const decoded = await decodeForAugment(bytes, size, source);
  if (decoded) return augmentDecoded(decoded, size, aug, seed);
  return applyAugment(bytes, size, sampleAugmentParams(aug, source.width, source.height, seed));
}
