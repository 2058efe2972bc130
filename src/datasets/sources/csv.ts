import { parse } from 'csv-parse/sync';
import { AppError } from '../../core/errors.ts';
import { SkipError, type ImportSource, type ScanItem, type Scanner, type SkippedFile } from '../types.ts';
import { readBounded, readIndexFile, realDirectory, realFile, resolveInside } from './fsutil.ts';

type CsvSource = Extract<ImportSource, { kind: 'csv' }>;

const FILE_HEADERS = ['file', 'filename', 'file_name', 'path', 'filepath', 'image', 'image_path', 'img', 'name'];
const LABEL_HEADERS = ['label', 'class', 'category', 'class_name', 'target', 'y'];
const IMAGE_EXT = /\.(jpe?g|png|webp|gif|tiff?|bmp)$/i;

/**
 * A first row is a header when its first cell is a known column name, or is no image file name
 * at all; then the columns are found by name (any order), else `filename,label`.
 */
export function detectHeader(first: string[]): { header: boolean; fileCol: number; labelCol: number } {
  const cells = first.map((c) => c.trim().toLowerCase());
  const known = cells.some((c) => FILE_HEADERS.includes(c) || LABEL_HEADERS.includes(c));
  const header = known || !IMAGE_EXT.test(cells[0] ?? '');
  if (!header) return { header, fileCol: 0, labelCol: 1 };
  const fileCol = cells.findIndex((c) => FILE_HEADERS.includes(c));
  const labelCol = cells.findIndex((c) => LABEL_HEADERS.includes(c));
  return { header, fileCol: fileCol === -1 ? 0 : fileCol, labelCol: labelCol === -1 ? (fileCol === 1 ? 0 : 1) : labelCol };
}

/** `filename,label` rows, paths relative to images_root; rows pointing outside it are refused. */
export const scanCsv: Scanner<CsvSource> = async (source, ctx) => {
  const csvPath = await realFile(source.path, 'CSV file');
  const root = await realDirectory(source.images_root, 'images root');
  const text = await readIndexFile(csvPath, ctx.limits.maxIndexFileBytes, 'CSV file');
  let rows: string[][];
  try {
    rows = parse(text, { bom: true, skip_empty_lines: true, relax_column_count: true, trim: true }) as string[][];
  } catch (e) {
    throw new AppError('VALIDATION_ERROR', `CSV file cannot be parsed: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (rows.length === 0) return { items: [], skipped: [], close: async () => {} };
  const { header, fileCol, labelCol } = detectHeader(rows[0]);
  const items: ScanItem[] = [];
  const skipped: SkippedFile[] = [];
  for (const row of header ? rows.slice(1) : rows) {
    ctx.signal?.throwIfAborted();
    // Paths written on Windows use backslashes; on this side they are plain separators.
    const file = (row[fileCol] ?? '').replace(/\\/g, '/');
    if (file === '') continue;
    const labelCell = row[labelCol] ?? '';
    try {
      const real = await resolveInside(root, file);
      items.push({ file, label: labelCell === '' ? null : labelCell, read: () => readBounded(real, ctx.limits.maxFileBytes) });
    } catch (e) {
      if (!(e instanceof SkipError)) throw e;
      skipped.push({ file, reason: e.reason, detail: e.detail });
    }
  }
  return { items, skipped, close: async () => {} };
};
