import { SkipError } from './types.ts';

/**
 * A careful BMP decoder: sharp's prebuilt libvips has no BMP loader. It handles what cameras,
 * scanners and Windows write: core/info/V4/V5 headers; 1, 4, 8 (palette), 16, 24 and 32 bits;
 * BI_RGB and BI_BITFIELDS; bottom-up and top-down rows. RLE and embedded JPEG/PNG are refused as
 * unsupported. Every offset is bounds-checked and the pixel count is checked before allocating.
 */

export interface RawImage {
  width: number;
  height: number;
  channels: 3 | 4;
  data: Buffer;
}

const BI_RGB = 0;
const BI_BITFIELDS = 3;
const BI_ALPHABITFIELDS = 6;

function corrupt(detail: string): SkipError {
  return new SkipError('corrupt', `BMP: ${detail}`);
}

/** Reads a channel out of a packed pixel with its mask, scaled to 0..255. */
function maskReader(mask: number): (px: number) => number {
  if (mask === 0) return () => 255;
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  let bits = 0;
  while (shift + bits < 32 && ((mask >>> (shift + bits)) & 1) === 1) bits++;
  const max = bits >= 32 ? 0xffffffff : 2 ** bits - 1;
  return (px) => Math.round((((px & mask) >>> 0) >>> shift) * 255 / max);
}

export function decodeBmp(buf: Buffer, maxPixels: number): RawImage {
  if (buf.length < 26 || buf[0] !== 0x42 || buf[1] !== 0x4d) throw corrupt('no BM signature');
  const dataOffset = buf.readUInt32LE(10);
  const headerSize = buf.readUInt32LE(14);
  let width: number;
  let rawHeight: number;
  let bpp: number;
  let compression = BI_RGB;
  let paletteCount = 0;
  let paletteEntrySize = 4;
  if (headerSize === 12) {
    width = buf.readUInt16LE(18);
    rawHeight = buf.readInt16LE(20);
    bpp = buf.readUInt16LE(24);
    paletteEntrySize = 3;
  } else if (headerSize >= 40 && 14 + headerSize <= buf.length) {
    width = buf.readInt32LE(18);
    rawHeight = buf.readInt32LE(22);
    bpp = buf.readUInt16LE(28);
    compression = buf.readUInt32LE(30);
    paletteCount = buf.readUInt32LE(46);
  } else {
    throw corrupt(`unknown header size ${headerSize}`);
  }
  const topDown = rawHeight < 0;
  const height = Math.abs(rawHeight);
  if (width <= 0 || height <= 0) throw corrupt('empty image');
  if (width * height > maxPixels) throw new SkipError('too_large', `BMP: ${width}×${height} exceeds the pixel limit`);

  let masks: [number, number, number, number] | null = null;
  if (compression === BI_BITFIELDS || compression === BI_ALPHABITFIELDS) {
    // Masks follow a 40-byte header; V4/V5 headers hold them at the same offsets.
    const at = 14 + 40;
    const n = compression === BI_ALPHABITFIELDS || headerSize >= 56 ? 4 : 3;
    if (at + n * 4 > buf.length) throw corrupt('truncated bit masks');
    masks = [buf.readUInt32LE(at), buf.readUInt32LE(at + 4), buf.readUInt32LE(at + 8), n === 4 ? buf.readUInt32LE(at + 12) : 0];
  } else if (compression !== BI_RGB) {
    throw new SkipError('unsupported', `BMP: compression ${compression} (RLE or embedded JPEG/PNG) is not supported`);
  }
  if (bpp === 16 && masks === null) masks = [0x7c00, 0x03e0, 0x001f, 0];
  if (![1, 4, 8, 16, 24, 32].includes(bpp)) throw new SkipError('unsupported', `BMP: ${bpp} bits per pixel`);
  if (masks !== null && bpp !== 16 && bpp !== 32) throw corrupt('bit masks need 16 or 32 bits per pixel');

  let palette: Buffer | null = null;
  if (bpp <= 8) {
    const count = paletteCount === 0 ? 2 ** bpp : Math.min(paletteCount, 2 ** bpp);
    const at = 14 + headerSize + (compression === BI_BITFIELDS && headerSize === 40 ? 12 : 0);
    if (at + count * paletteEntrySize > buf.length) throw corrupt('truncated palette');
    palette = Buffer.alloc(256 * 3);
    for (let i = 0; i < count; i++) {
      const p = at + i * paletteEntrySize;
      palette[i * 3] = buf[p + 2];
      palette[i * 3 + 1] = buf[p + 1];
      palette[i * 3 + 2] = buf[p];
    }
  }

  const stride = Math.floor((width * bpp + 31) / 32) * 4;
  if (dataOffset + stride * height > buf.length) throw corrupt('truncated pixel data');
  // 32-bit BI_RGB has an unused fourth byte: many writers leave it zero, so it is not alpha.
  const hasAlpha = masks !== null && masks[3] !== 0;
  const channels: 3 | 4 = hasAlpha ? 4 : 3;
  const out = Buffer.alloc(width * height * channels);
  const readers = masks?.map(maskReader);

  for (let y = 0; y < height; y++) {
    const row = dataOffset + (topDown ? y : height - 1 - y) * stride;
    let o = y * width * channels;
    for (let x = 0; x < width; x++, o += channels) {
      if (palette !== null) {
        const bitPos = x * bpp;
        const byte = buf[row + (bitPos >> 3)];
        const idx = (byte >> (8 - bpp - (bitPos & 7))) & ((1 << bpp) - 1);
        out[o] = palette[idx * 3];
        out[o + 1] = palette[idx * 3 + 1];
        out[o + 2] = palette[idx * 3 + 2];
      } else if (readers !== undefined) {
        const px = bpp === 16 ? buf.readUInt16LE(row + x * 2) : buf.readUInt32LE(row + x * 4);
        out[o] = readers[0](px);
        out[o + 1] = readers[1](px);
        out[o + 2] = readers[2](px);
        if (hasAlpha) out[o + 3] = readers[3](px);
      } else {
        const p = row + x * (bpp >> 3);
        out[o] = buf[p + 2];
        out[o + 1] = buf[p + 1];
        out[o + 2] = buf[p];
      }
    }
  }
  return { width, height, channels, data: out };
}
