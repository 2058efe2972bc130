import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { mulberry32 } from './prng.ts';

/**
 * Synthetic images with known labels, for tests, benchmarks and the example project: a shape
 * drawn by librsvg over a plain background, its place, size, rotation and background varied by
 * the seed, so one class is learnable while no two images are equal.
 */

export const SHAPES = ['circle', 'square', 'triangle', 'star', 'cross', 'ring'] as const;
export type Shape = (typeof SHAPES)[number];
export type SyntheticFormat = 'jpeg' | 'png' | 'webp';

export interface ShapeImageOptions {
  shape: Shape;
  /** Any SVG color; by default one is picked from the seed. */
  color?: string;
  /** Width and height in pixels (a number for a square). */
  size: number | { width: number; height: number };
  seed: number;
  format?: SyntheticFormat;
}

function shapeSvg(shape: Shape, cx: number, cy: number, r: number, color: string): string {
  switch (shape) {
    case 'circle':
      return `<circle cx="${cx}" cy="${cy}" r="${r}" fill="${color}"/>`;
    case 'ring':
      return `<circle cx="${cx}" cy="${cy}" r="${r * 0.75}" fill="none" stroke="${color}" stroke-width="${r * 0.4}"/>`;
    case 'square':
      return `<rect x="${cx - r}" y="${cy - r}" width="${2 * r}" height="${2 * r}" fill="${color}"/>`;
    case 'cross':
      return `<path d="M${cx - r} ${cy - r / 3}h${2 * r}v${(2 * r) / 3}h${-2 * r}z M${cx - r / 3} ${cy - r}h${(2 * r) / 3}v${2 * r}h${(-2 * r) / 3}z" fill="${color}"/>`;
    case 'triangle':
      return `<polygon points="${cx},${cy - r} ${cx + r * 0.866},${cy + r / 2} ${cx - r * 0.866},${cy + r / 2}" fill="${color}"/>`;
    case 'star': {
      const pts = Array.from({ length: 10 }, (_, i) => {
        const a = (Math.PI / 5) * i - Math.PI / 2;
        const rr = i % 2 === 0 ? r : r * 0.45;
        return `${(cx + rr * Math.cos(a)).toFixed(1)},${(cy + rr * Math.sin(a)).toFixed(1)}`;
      });
      return `<polygon points="${pts.join(' ')}" fill="${color}"/>`;
    }
  }
}

const hsl = (h: number, s: number, l: number) => `hsl(${Math.round(h)},${Math.round(s)}%,${Math.round(l)}%)`;

export function shapeSvgDocument(opts: ShapeImageOptions): string {
  const { width, height } = typeof opts.size === 'number' ? { width: opts.size, height: opts.size } : opts.size;
  const random = mulberry32(opts.seed);
  const side = Math.min(width, height);
  const r = side * (0.18 + random() * 0.14);
  const cx = r + random() * (width - 2 * r);
  const cy = r + random() * (height - 2 * r);
  const angle = Math.round(random() * 360);
  const background = hsl(random() * 360, 20 + random() * 20, 82 + random() * 12);
  const color = opts.color ?? hsl(random() * 360, 60 + random() * 30, 30 + random() * 20);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<rect width="100%" height="100%" fill="${background}"/>` +
    `<g transform="rotate(${angle} ${cx.toFixed(1)} ${cy.toFixed(1)})">${shapeSvg(opts.shape, cx, cy, r, color)}</g></svg>`
  );
}

export async function renderShapeImage(opts: ShapeImageOptions): Promise<Buffer> {
  const img = sharp(Buffer.from(shapeSvgDocument(opts)));
  const format = opts.format ?? 'png';
  if (format === 'jpeg') return img.jpeg({ quality: 85 }).toBuffer();
  if (format === 'webp') return img.webp({ quality: 85 }).toBuffer();
  return img.png().toBuffer();
}

export interface SyntheticFolderOptions {
  /** Class names; a name that is a shape draws that shape, others take the shapes in turn. */
  classes: string[];
  perClass: number;
  size: number | { width: number; height: number };
  format?: SyntheticFormat;
  seed?: number;
}

export interface SyntheticFile {
  /** Relative to the folder, e.g. `circle/circle-003.png`. */
  file: string;
  label: string;
}

/** Writes an ImageNet-style folder (`<dir>/<class>/<class>-NNN.<ext>`) and lists what it wrote. */
export async function writeSyntheticFolder(dir: string, opts: SyntheticFolderOptions): Promise<SyntheticFile[]> {
  const format = opts.format ?? 'png';
  const ext = format === 'jpeg' ? 'jpg' : format;
  const written: SyntheticFile[] = [];
  for (const [ci, label] of opts.classes.entries()) {
    if (!/^[\w-][\w .-]*$/.test(label)) throw new Error(`class name is not a plain folder name: ${label}`);
    const shape: Shape = (SHAPES as readonly string[]).includes(label) ? (label as Shape) : SHAPES[ci % SHAPES.length];
    await fs.mkdir(path.join(dir, label), { recursive: true });
    for (let i = 0; i < opts.perClass; i++) {
      const seed = ((opts.seed ?? 1) * 1_000_003 + ci * 100_003 + i) >>> 0;
      const file = `${label}/${label}-${String(i).padStart(3, '0')}.${ext}`;
      await fs.writeFile(path.join(dir, file), await renderShapeImage({ shape, size: opts.size, seed, format }));
      written.push({ file, label });
    }
  }
  return written;
}
