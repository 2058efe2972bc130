import fs from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import { AppError, validation } from '../../kernel/errors.ts';
import { SkipError, labelShape, type ImportSource, type LabelShape, type ScanItem, type Scanner, type SkippedFile } from '../types.ts';
import { readBounded, readIndexFile, realDirectory, realFile, resolveInside } from './fsutil.ts';

type CsvSource = Extract<ImportSource, { kind: 'csv' }>;

const FILE_HEADERS = ['file', 'filename', 'file_name', 'path', 'filepath', 'image', 'image_path', 'img', 'name'];
const LABEL_HEADERS = ['label', 'class', 'category', 'class_name', 'target', 'y', 'labels', 'tags'];
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

/** The columns a CSV source reads, by index into each row. */
export interface CsvColumns {
  header: boolean;
  fileCol: number;
  /** Classification and multi-label; -1 for regression. */
  labelCol: number;
  /** Regression: one index per target column, in `target_columns` order. */
  targetCols: number[];
}

/** A header cell as named by a person: exactly, or else ignoring case and surrounding spaces. */
function findColumn(header: string[], name: string): number {
  const exact = header.indexOf(name);
  if (exact !== -1) return exact;
  const want = name.trim().toLowerCase();
  return header.findIndex((h) => h.trim().toLowerCase() === want);
}

/**
 * Which columns a source reads from a CSV whose first row is `first`. Named columns
 * (`image_column`, `label_column`, `target_columns`) need a header that has them; a name it lacks
 * is a VALIDATION_ERROR naming the field. Unnamed ones are found as `detectHeader` finds them.
 */
export function resolveCsvColumns(first: string[], source: Pick<CsvSource, 'image_column' | 'label_column' | 'target_columns'>, shape: LabelShape): CsvColumns {
  const detected = detectHeader(first);
  const named = source.image_column !== undefined || source.label_column !== undefined || source.target_columns !== undefined;
  const header = detected.header || named;
  const columns = first.map((c) => c.trim()).join(', ');
  const need = (field: string, name: string): number => {
    const i = findColumn(first, name);
    if (i === -1) throw validation(`source.${field}: the CSV has no column '${name}' (its first row: ${columns.slice(0, 300)})`);
    return i;
  };
  const targetCols = shape === 'targets' ? (source.target_columns ?? []).map((t) => need('target_columns', t)) : [];
  let fileCol = source.image_column !== undefined ? need('image_column', source.image_column) : detected.fileCol;
  if (source.image_column === undefined && targetCols.includes(fileCol)) {
    // The usual file column is taken by a target: the first column that is no target holds the files.
    fileCol = first.findIndex((_, i) => !targetCols.includes(i));
    if (fileCol === -1) throw validation('source.image_column: every column is a target column; name the image column');
  }
  let labelCol = -1;
  if (shape !== 'targets') {
    labelCol = source.label_column !== undefined ? need('label_column', source.label_column) : detected.labelCol;
    if (labelCol === fileCol) throw validation(`source.label_column: the label column is the image column ('${first[fileCol] ?? ''}')`);
  }
  if (targetCols.includes(fileCol)) throw validation(`source.target_columns: '${first[fileCol] ?? ''}' is the image column`);
  return { header, fileCol, labelCol, targetCols };
}

/** A decimal number as a CSV writes it (no hex, no `Infinity`, no empty string that Number() reads as 0). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A target cell's value, or why it is none (the skip detail). */
export function parseTarget(cell: string | undefined, column: string): number | string {
  const s = (cell ?? '').trim();
  if (s === '') return `column '${column}': missing value`;
  if (!DECIMAL.test(s)) return `column '${column}': '${s.slice(0, 40)}' is not a number`;
  const v = Number(s);
  if (!Number.isFinite(v)) return `column '${column}': '${s.slice(0, 40)}' is not finite`;
  return v;
}

/** A multi-label cell: labels joined by `separator`, trimmed, empties dropped, each once. */
export function splitLabels(cell: string, separator: string): string[] {
  return [...new Set(cell.split(separator).map((l) => l.trim()).filter((l) => l !== ''))];
}

function parseRows(text: string): string[][] {
  try {
    return parse(text, { bom: true, skip_empty_lines: true, relax_column_count: true, trim: true }) as string[][];
  } catch (e) {
    throw new AppError('VALIDATION_ERROR', `CSV file cannot be parsed: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * The CSV's first row, read from its first 1 MiB only: the service checks a source's named
 * columns before it creates a dataset, without reading a file of a million rows.
 */
export async function readCsvFirstRow(file: string): Promise<string[]> {
  const real = await realFile(file, 'CSV file');
  const handle = await fs.open(real, 'r');
  let text: string;
  try {
    const buf = Buffer.alloc(1024 * 1024);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    text = buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
  const nl = text.search(/\r?\n/);
  const rows = parseRows(nl === -1 ? text : text.slice(0, nl));
  return rows[0] ?? [];
}

/**
 * Image paths relative to images_root (rows pointing outside it are refused) and each image's
 * truth by the dataset's task: classification a label cell; multi-label a cell of labels joined by
 * `label_separator` (an empty cell: labeled, no label present; no cell: unlabeled); regression the
 * `target_columns`, a row with a missing, non-numeric or non-finite target skipped as `invalid_target`.
 */
export const scanCsv: Scanner<CsvSource> = async (source, ctx) => {
  const csvPath = await realFile(source.path, 'CSV file');
  const root = await realDirectory(source.images_root, 'images root');
  const text = await readIndexFile(csvPath, ctx.limits.maxIndexFileBytes, 'CSV file');
  const rows = parseRows(text);
  const shape = labelShape(ctx.task);
  const targetNames = shape === 'targets' ? [...(source.target_columns ?? [])] : undefined;
  if (rows.length === 0) return { items: [], skipped: [], ...(targetNames ? { target_names: targetNames } : {}), close: async () => {} };
  const { header, fileCol, labelCol, targetCols } = resolveCsvColumns(rows[0], source, shape);
  const separator = source.label_separator ?? ';';
  const items: ScanItem[] = [];
  const skipped: SkippedFile[] = [];
  for (const row of header ? rows.slice(1) : rows) {
    ctx.signal?.throwIfAborted();
    // Paths written on Windows use backslashes; on this side they are plain separators.
    const file = (row[fileCol] ?? '').replace(/\\/g, '/');
    if (file === '') continue;
    try {
      const truth: Pick<ScanItem, 'label' | 'labels' | 'targets'> = { label: null };
      if (shape === 'single') {
        const cell = row[labelCol] ?? '';
        truth.label = cell === '' ? null : cell;
      } else if (shape === 'multi') {
        const cell = row[labelCol];
        if (cell !== undefined) truth.labels = splitLabels(cell, separator);
      } else {
        const targets: number[] = [];
        targetCols.forEach((col, k) => {
          const v = parseTarget(row[col], targetNames?.[k] ?? String(col));
          if (typeof v === 'string') throw new SkipError('invalid_target', v);
          targets.push(v);
        });
        truth.targets = targets;
      }
      const real = await resolveInside(root, file);
      items.push({ file, ...truth, read: () => readBounded(real, ctx.limits.maxFileBytes) });
    } catch (e) {
      if (!(e instanceof SkipError)) throw e;
      skipped.push({ file, reason: e.reason, detail: e.detail });
    }
  }
  return { items, skipped, ...(targetNames ? { target_names: targetNames } : {}), close: async () => {} };
};
