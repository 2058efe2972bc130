import fp16 from './fp16.ts';
import fp32 from './fp32.ts';
import int8 from './int8.ts';
import type { ExportFormat } from './types.ts';

/**
 * The export formats, one line each, in the order the API, the package and the Deploy page list
 * them. `fp32` comes first: the others are built from its graph.
 */
export const FORMATS = [fp32, fp16, int8] as const;

export type FormatName = (typeof FORMATS)[number]['name'];
export type FormatFile = (typeof FORMATS)[number]['file'];

export const FORMAT_NAMES = FORMATS.map((f) => f.name) as [FormatName, ...FormatName[]];
export const FORMAT_FILES = FORMATS.map((f) => f.file) as [FormatFile, ...FormatFile[]];

export function getFormat(name: FormatName): ExportFormat<FormatName, FormatFile> {
  const f = FORMATS.find((x) => x.name === name);
  if (!f) throw new Error(`unknown export format '${name}'`);
  return f;
}

/** Model file of each format. */
export const MODEL_FILES = Object.fromEntries(FORMATS.map((f) => [f.name, f.file])) as Record<FormatName, FormatFile>;

export type { ExportFormat, FormatBuildContext, ReasonedTolerance } from './types.ts';
