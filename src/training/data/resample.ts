import type { RgbImage } from './decode.ts';

/**
 * Crop, resize and mirror of decoded RGB in one pass, for the training loader's common case
 * (random resized crop and flip, no rotation). libvips' extract + resize + flop of a 224×224 JPEG
 * cost 1.7 ms of CPU on top of its 0.9 ms decode when the crop is enlarged (its upsampling path);
 * see bench/loader.ts for what this one costs.
 *
 * The filter is Pillow's antialiased bilinear (ImagingResample with the triangle filter), which is
 * what torchvision's RandomResizedCrop applies to PIL images: half-pixel centres, and when
 * shrinking, the triangle widened by the scale so every source pixel contributes. Taps are clamped
 * to the crop box, as torchvision crops before it resizes.
 */

export interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Per output coordinate: the first source index, the tap count, and `stride` weights (summing to 1). */
interface Coeffs {
  start: Int32Array;
  count: Int32Array;
  weights: Float32Array;
  stride: number;
}

function coefficients(inStart: number, inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // the triangle's support is 1, widened when shrinking
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float32Array(outSize * stride);
  const w = new Float64Array(stride);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    let lo = Math.max(Math.trunc(center - support + 0.5), 0);
    let hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    let total = 0;
    for (let i = lo; i < hi; i++) {
      w[i - lo] = Math.max(0, 1 - Math.abs((i - center + 0.5) / filterScale));
      total += w[i - lo];
    }
    // Zero-weight taps at either end cost time and add nothing.
    let first = 0;
    while (lo + first < hi - 1 && w[first] === 0) first++;
    while (hi - 1 > lo + first && w[hi - 1 - lo] === 0) hi--;
    for (let i = lo + first; i < hi; i++) weights[o * stride + (i - lo - first)] = w[i - lo] / (total || 1);
    lo += first;
    start[o] = inStart + lo;
    count[o] = hi - lo;
  }
  return { start, count, weights, stride };
}

/** `img` cropped to `box` (null: whole), resized to `size`×`size`, mirrored left–right when `flip`. */
export function cropResizeFlip(img: RgbImage, box: Box | null, size: number, flip: boolean): RgbImage {
  const b = box ?? { left: 0, top: 0, width: img.width, height: img.height };
  if (b.left < 0 || b.top < 0 || b.width < 1 || b.height < 1 || b.left + b.width > img.width || b.top + b.height > img.height) {
    throw new RangeError(`crop ${b.width}×${b.height}+${b.left}+${b.top} outside a ${img.width}×${img.height} image`);
  }
  const cx = coefficients(b.left, b.width, size);
  const cy = coefficients(b.top, b.height, size);
  const src = img.data;
  const rowStride = img.width * 3;
  const line = size * 3;

  // Horizontal pass over the crop's rows: [b.height, size, 3] floats.
  const tmp = new Float32Array(b.height * line);
  for (let y = 0; y < b.height; y++) {
    const row = (b.top + y) * rowStride;
    let q = y * line;
    for (let o = 0; o < size; o++, q += 3) {
      const k = flip ? size - 1 - o : o;
      const n = cx.count[k];
      const wb = k * cx.stride;
      let p = row + cx.start[k] * 3;
      if (n === 2) {
        const w0 = cx.weights[wb];
        const w1 = cx.weights[wb + 1];
        tmp[q] = w0 * src[p] + w1 * src[p + 3];
        tmp[q + 1] = w0 * src[p + 1] + w1 * src[p + 4];
        tmp[q + 2] = w0 * src[p + 2] + w1 * src[p + 5];
        continue;
      }
      let r = 0;
      let g = 0;
      let bl = 0;
      for (let t = 0; t < n; t++, p += 3) {
        const w = cx.weights[wb + t];
        r += w * src[p];
        g += w * src[p + 1];
        bl += w * src[p + 2];
      }
      tmp[q] = r;
      tmp[q + 1] = g;
      tmp[q + 2] = bl;
    }
  }

  // Vertical pass, rounded and clamped to 8 bits as Pillow does.
  const out = Buffer.allocUnsafe(size * line);
  const acc = new Float32Array(line);
  for (let o = 0; o < size; o++) {
    const n = cy.count[o];
    const wb = o * cy.stride;
    const first = (cy.start[o] - b.top) * line;
    const dst = o * line;
    if (n <= 2) {
      const w0 = cy.weights[wb];
      const w1 = n === 2 ? cy.weights[wb + 1] : 0;
      const second = n === 2 ? first + line : first;
      for (let j = 0; j < line; j++) {
        const v = (w0 * tmp[first + j] + w1 * tmp[second + j] + 0.5) | 0;
        out[dst + j] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
      continue;
    }
    acc.fill(0);
    for (let t = 0; t < n; t++) {
      const w = cy.weights[wb + t];
      const p = first + t * line;
      for (let j = 0; j < line; j++) acc[j] += w * tmp[p + j];
    }
    for (let j = 0; j < line; j++) {
      const v = (acc[j] + 0.5) | 0;
      out[dst + j] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { data: out, width: size, height: size };
}
