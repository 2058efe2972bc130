import { openOriented, toRgb, type RgbImage } from './decode.ts';
import type { Normalization } from './tensor.ts';

/**
 * THE evaluation transform, used for validation during training, for evaluation and for export,
 * so the exported manifest describes exactly what the model was measured on:
 *   decode → EXIF orientation → alpha flattened onto black → sRGB, 3 channels, 8 bits
 *   → resize to size×size ignoring aspect ratio, bilinear (triangle filter, antialiased when
 *     shrinking, as PIL's Image.BILINEAR) → /255 → (x − mean) / std per channel → NCHW float32.
 * Plain resize rather than torchvision's resize-then-center-crop: a deployer reproduces it with
 * one call in any library, and no part of the image is cut away. JPEG shrink-on-load is off, so
 * the result does not depend on libvips choosing a DCT-domain downscale.
 */
export async function evalImage(bytes: Buffer, size: number): Promise<RgbImage> {
  return toRgb(openOriented(bytes).resize(size, size, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false }));
}

/** The manifest's description of `evalImage` followed by normalisation. */
export interface EvalPreprocessing {
  resize: { mode: 'stretch'; width: number; height: number; interpolation: 'bilinear'; antialias: true };
  exif_orientation: true;
  alpha: 'flatten_on_black';
  color_space: 'sRGB';
  color_order: 'RGB';
  layout: 'NCHW';
  dtype: 'float32';
  scale: number;
  mean: [number, number, number];
  std: [number, number, number];
}

export function evalPreprocessing(size: number, norm: Normalization): EvalPreprocessing {
  return {
    resize: { mode: 'stretch', width: size, height: size, interpolation: 'bilinear', antialias: true },
    exif_orientation: true,
    alpha: 'flatten_on_black',
    color_space: 'sRGB',
    color_order: 'RGB',
    layout: 'NCHW',
    dtype: 'float32',
    scale: 1 / 255,
    mean: [...norm.mean],
    std: [...norm.std],
  };
}
