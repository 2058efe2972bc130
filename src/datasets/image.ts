import sharp, { type Sharp } from 'sharp';
import { decodeBmp } from './bmp.ts';
import { DEFAULT_IMPORT_LIMITS, SkipError, type ImageFormat } from './types.ts';

/**
 * Image I/O. The format always comes from the bytes (magic numbers), never from a file name, and
 * only the formats below ever reach libvips: an SVG or HTML file named `.jpg` is refused before it
 * can be parsed as markup.
 */

// One process decodes many different images once each: libvips' operation cache only costs memory.
sharp.cache(false);

/** Well below sharp's default (~268 MP): a tiny PNG may declare a gigapixel canvas. */
export const DEFAULT_MAX_PIXELS = DEFAULT_IMPORT_LIMITS.maxPixels;

export interface SniffResult {
  format: ImageFormat;
  mime: string;
  ext: string;
}

const FORMATS: Record<ImageFormat, { mime: string; ext: string }> = {
  jpeg: { mime: 'image/jpeg', ext: 'jpg' },
  png: { mime: 'image/png', ext: 'png' },
  webp: { mime: 'image/webp', ext: 'webp' },
  gif: { mime: 'image/gif', ext: 'gif' },
  tiff: { mime: 'image/tiff', ext: 'tif' },
  bmp: { mime: 'image/bmp', ext: 'bmp' },
};

const startsWith = (buf: Buffer, bytes: number[], at = 0) =>
  buf.length >= at + bytes.length && bytes.every((b, i) => buf[at + i] === b);
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

function sniffFormat(buf: Buffer): ImageFormat | null {
  if (startsWith(buf, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(buf, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(buf, ascii('GIF87a')) || startsWith(buf, ascii('GIF89a'))) return 'gif';
  if (startsWith(buf, ascii('RIFF')) && startsWith(buf, ascii('WEBP'), 8)) return 'webp';
  // Classic TIFF (42) and BigTIFF (43), little and big endian.
  if (startsWith(buf, [0x49, 0x49, 0x2a, 0x00]) || startsWith(buf, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  if (startsWith(buf, [0x49, 0x49, 0x2b, 0x00]) || startsWith(buf, [0x4d, 0x4d, 0x00, 0x2b])) return 'tiff';
  // "BM" alone is too weak (plain text may start so): require a known DIB header size too.
  if (startsWith(buf, [0x42, 0x4d]) && buf.length >= 18 && [12, 40, 52, 56, 64, 108, 124].includes(buf.readUInt32LE(14))) {
    return 'bmp';
  }
  return null;
}

export function sniffImage(buf: Buffer): SniffResult | null {
  const format = sniffFormat(buf);
  return format === null ? null : { format, ...FORMATS[format] };
}

export interface DecodeOptions {
  maxPixels?: number;
}

/**
 * A sharp pipeline over a sniffed image: pixel limit, fail on truncated/corrupt data (not on mere
 * warnings), first frame only (GIF, multi-page TIFF), BMP decoded here first.
 */
export function openImage(buf: Buffer, format: ImageFormat, opts: DecodeOptions = {}): Sharp {
  const limitInputPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (format === 'bmp') {
    const raw = decodeBmp(buf, limitInputPixels);
    return sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: raw.channels }, limitInputPixels });
  }
  return sharp(buf, { failOn: 'error', limitInputPixels, pages: 1, page: 0 });
}

/** Turns libvips' messages into the import's skip reasons. */
export function classifyDecodeError(e: unknown): SkipError {
  if (e instanceof SkipError) return e;
  const message = e instanceof Error ? e.message : String(e);
  if (/pixel limit/i.test(message)) return new SkipError('too_large', message);
  if (/unsupported image format/i.test(message)) return new SkipError('unsupported', message);
  return new SkipError('corrupt', message);
}

export interface ProbeResult extends SniffResult {
  /** After EXIF orientation. */
  width: number;
  height: number;
}

/** Header-only look at an image; throws SkipError. Full decoding (and truncation) is seen by the thumbnailer. */
export async function probeImage(buf: Buffer, opts: DecodeOptions = {}): Promise<ProbeResult> {
  const sniff = sniffImage(buf);
  if (sniff === null) throw new SkipError('unsupported', 'not a JPEG, PNG, WebP, GIF, TIFF or BMP image');
  try {
    const meta = await openImage(buf, sniff.format, opts).metadata();
    const oriented = meta.autoOrient ?? { width: meta.width, height: meta.height };
    const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
    if (oriented.width * oriented.height > maxPixels) {
      throw new SkipError('too_large', `${oriented.width}×${oriented.height} exceeds the pixel limit`);
    }
    if (sniff.format !== 'bmp' && meta.format !== sniff.format) {
      throw new SkipError('unsupported', `decoder saw ${String(meta.format)}, bytes say ${sniff.format}`);
    }
    return { ...sniff, width: oriented.width, height: oriented.height };
  } catch (e) {
    throw classifyDecodeError(e);
  }
}

/**
 * Bytes a browser can show: JPEG, PNG, WebP and GIF as they are; TIFF and BMP converted to PNG
 * (first page, EXIF orientation applied). Throws SkipError for anything else.
 */
export async function toBrowserImage(buf: Buffer, opts: DecodeOptions = {}): Promise<{ buffer: Buffer; mime: string }> {
  const sniff = sniffImage(buf);
  if (sniff === null) throw new SkipError('unsupported', 'not an image');
  if (sniff.format !== 'tiff' && sniff.format !== 'bmp') return { buffer: buf, mime: sniff.mime };
  try {
    const buffer = await openImage(buf, sniff.format, opts).autoOrient().png().toBuffer();
    return { buffer, mime: 'image/png' };
  } catch (e) {
    throw classifyDecodeError(e);
  }
}
