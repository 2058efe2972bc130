import { z } from 'zod';
import { taskLabelShape } from '../schemas/task.ts';

/**
 * The shapes shared by the scanners, the import pipeline and the callers (worker, storage sink).
 * Import sources arrive from the API, so they are zod schemas; the rest are plain types.
 */

const nonEmptyPath = z.string().min(1).max(4096);
/** A CSV header name as a person writes it (it also names a regression target, so no control characters). */
export const CsvColumn = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(200)
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'must not contain control characters');

export const ImportSourceSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('folder'), path: nonEmptyPath }).strict(),
  /** `path` is the uploaded temp file, never a path taken from a client. */
  z.object({ kind: z.literal('zip'), path: nonEmptyPath }).strict(),
  z
    .object({
      kind: z.literal('csv'),
      path: nonEmptyPath,
      images_root: nonEmptyPath,
      /** Header names choosing the columns; without them the columns are found by their usual names. */
      image_column: CsvColumn.optional(),
      label_column: CsvColumn.optional(),
      /** Multi-label: what joins the labels in a cell (default `;`). */
      label_separator: z.enum([';', '|']).optional(),
      /** Regression: the header names of the numeric target columns, in the model's output order. */
      target_columns: z.array(CsvColumn).min(1).max(64).optional(),
    })
    .strict(),
  z.object({ kind: z.literal('coco'), annotations: nonEmptyPath, images_root: nonEmptyPath }).strict(),
  z.object({ kind: z.literal('yolo'), path: nonEmptyPath }).strict(),
]);
export type ImportSource = z.infer<typeof ImportSourceSchema>;
export type ImportSourceKind = ImportSource['kind'];

/**
 * A dataset's task name (src/schemas/task.ts checks it against the registry where a request names
 * it). The pipeline runs in a worker thread, where the registry need not be populated, so it only
 * asks `labelShape` what an image's truth looks like.
 */
export type DatasetTask = string;

/**
 * What a task's images carry, as the task declared it when it registered (src/tasks/registry.ts):
 * one `label`, a set of `labels` or numeric `targets`. A task stored before it is registered keeps
 * its annotations and a lone category as its `label`, as a single-label one.
 */
export type LabelShape = 'single' | 'multi' | 'targets';

export function labelShape(task: DatasetTask): LabelShape {
  const s = taskLabelShape(task);
  return s === 'annotations' ? 'single' : s;
}

export const SKIP_REASONS = ['corrupt', 'unsupported', 'duplicate', 'outside_root', 'ambiguous', 'too_large', 'missing', 'invalid_target'] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

export interface SkippedFile {
  /** The file as the user knows it: relative to the source root (or the zip entry name). */
  file: string;
  reason: SkipReason;
  detail?: string;
}

/** bbox is [x, y, w, h] in pixels of the (EXIF-oriented) image, as in COCO. */
export interface Annotation {
  category: string;
  bbox?: [number, number, number, number];
  segmentation?: number[][];
}

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'bmp';

export interface ImportedImage {
  /** sha256 of the original bytes, hex. */
  hash: string;
  /** File extension without the dot, from the sniffed format (never from the file name). */
  ext: string;
  /** The original bytes, unchanged. */
  buffer: Buffer;
  /** WebP, ≤128 px on the long side, EXIF orientation applied. */
  thumbnail: Buffer;
  /** After EXIF orientation. */
  width: number;
  height: number;
  format: ImageFormat;
  label: string | null;
  /** Multi-label: present when the image is labeled ([] = no label present). */
  labels?: string[];
  /** Regression: one finite value per target column, when the image has targets. */
  targets?: number[];
  annotations?: Annotation[];
  source_path: string;
}

/** Where imported images go; implemented by storage and handed in by the import worker. */
export interface ImportSink {
  addImage(rec: ImportedImage): Promise<void>;
  /**
   * Opens an uploaded archive (a temp file in the workspace) read-only and hands its descriptor to
   * `adopt`, which owns it once it resolves. Reading the upload is the workspace's side of an import
   * as much as writing the images, so the sink does it (src/storage/uploads.ts for the real one).
   */
  openUpload<T>(file: string, adopt: (fd: number) => Promise<T>): Promise<T>;
}

/** An image imported but worth a look (a flat placeholder, a blank frame). */
export interface FlaggedFile {
  file: string;
  reason: 'near_constant';
  detail: string;
}

export interface ImportReport {
  imported: number;
  skipped: SkippedFile[];
  /** Imported images worth a look, with why (absent in reports from before it was checked). */
  flagged?: FlaggedFile[];
  /** How many of `skipped` are duplicates (each one's detail names the file it duplicates). */
  duplicates: number;
  /**
   * Class names: declared by the source (COCO categories, YOLO names) or else the labels found
   * (multi-label: every label of every image), sorted. Regression: [].
   */
  classes: string[];
  elapsed_ms: number;
}

export interface ImportProgress {
  done: number;
  total: number;
  imported: number;
  skipped: number;
}

export interface ImportLimits {
  /** One file's bytes. */
  maxFileBytes: number;
  /** Decoded pixels of one image (sharp's limitInputPixels); its default, 100 MP, is well below sharp's ~268 MP. */
  maxPixels: number;
  /** Zip archives: entry count and declared total uncompressed size; beyond either the archive is refused. */
  maxZipEntries: number;
  maxUncompressedBytes: number;
  /** CSV and annotation files are read whole. */
  maxIndexFileBytes: number;
  /** Images decoded at once. */
  concurrency: number;
}

export const DEFAULT_IMPORT_LIMITS: ImportLimits = {
  maxFileBytes: 256 * 1024 * 1024,
  maxPixels: 100_000_000,
  maxZipEntries: 200_000,
  maxUncompressedBytes: 20 * 1024 * 1024 * 1024,
  maxIndexFileBytes: 512 * 1024 * 1024,
  concurrency: 3,
};

/** One candidate image found by a scanner, read lazily. */
export interface ScanItem {
  file: string;
  label: string | null;
  labels?: string[];
  targets?: number[];
  annotations?: Annotation[];
  /** YOLO: bbox and polygons in 0..1 of the image size, scaled to pixels once the size is known. */
  normalized?: boolean;
  /** Reads the bytes; throws a SkipError when the file cannot be taken. */
  read(): Promise<Buffer>;
}

export interface ScanResult {
  items: ScanItem[];
  skipped: SkippedFile[];
  /** Classes the source declares (COCO categories, YOLO names), in its order. */
  classes?: string[];
  /** Regression: the target names (the CSV's target columns). */
  target_names?: string[];
  close(): Promise<void>;
}

export interface ScanContext {
  task: DatasetTask;
  limits: ImportLimits;
  /** The sink's `openUpload`: how a zip source opens its archive. */
  openUpload: ImportSink['openUpload'];
  signal?: AbortSignal;
}

export type Scanner<S extends ImportSource = ImportSource> = (source: S, ctx: ScanContext) => Promise<ScanResult>;

/** A per-file refusal: the pipeline reports it and goes on with the next file. */
export class SkipError extends Error {
  readonly reason: SkipReason;
  readonly detail?: string;
  constructor(reason: SkipReason, detail?: string) {
    super(detail ?? reason);
    this.name = 'SkipError';
    this.reason = reason;
    this.detail = detail;
  }
}
