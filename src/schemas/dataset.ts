import { z } from 'zod';
import type { DocType } from './common.ts';
import { DatasetIdSchema, DisplayNameSchema, ImageIdSchema, TimestampSchema } from './common.ts';
import { DatasetTaskSchema, StoredTaskNameSchema } from './task.ts';

/**
 * A dataset's task as stored: any well-formed name (src/schemas/task.ts). Requests take
 * `DatasetTaskSchema` instead (the registered tasks plus the stored-only ones).
 */
export const TaskSchema = StoredTaskNameSchema;
export type Task = string;

export const DatasetStatusSchema = z.enum(['importing', 'ready', 'failed']);
export type DatasetStatus = z.infer<typeof DatasetStatusSchema>;

/** Where an image sits in one split. 'none': it takes no part (e.g. it has no label). */
export const SubsetSchema = z.enum(['train', 'val', 'test', 'none']);
export type Subset = z.infer<typeof SubsetSchema>;

/** Class names and labels: what a person typed or a source declared; escaped wherever shown. */
export const LabelSchema = DisplayNameSchema;

/** Split names appear in URLs (`…/splits/:name`), so they are restricted to a path-safe alphabet. */
export const SplitNameSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - only (1–64)');

/** COCO conventions: bbox is [x, y, w, h] in pixels; segmentation is a list of polygons [x1,y1,x2,y2,…]. */
export const AnnotationSchema = z.object({
  category: LabelSchema,
  bbox: z.tuple([z.number(), z.number(), z.number().min(0), z.number().min(0)]).optional(),
  segmentation: z.array(z.array(z.number())).optional(),
});
export type Annotation = z.infer<typeof AnnotationSchema>;

/** Files are content-addressed: the first 16 hex digits of the sha256 and the sniffed format's extension. */
export const ImageFileSchema = z.string().regex(/^images\/[0-9a-f]{16}\.[a-z0-9]{2,5}$/);

export const ImageRecordSchema = z.object({
  id: ImageIdSchema,
  file: ImageFileSchema,
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  /** sha256 of the original bytes, hex. */
  hash: z.string().regex(/^[0-9a-f]{16,128}$/),
  /** Classification's one label (null: unlabeled; always null for the other tasks). */
  label: LabelSchema.nullable(),
  /**
   * Multi-label: the labels present (each one of the dataset's classes). `[]` is labeled with no
   * label present; absent is unlabeled. Optional so classification files stay as they were.
   */
  labels: z.array(LabelSchema).optional(),
  /** Regression: one finite value per `target_names` entry, in the target's units; absent is unlabeled. */
  targets: z.array(z.number().finite()).optional(),
  annotations: z.array(AnnotationSchema).optional(),
  /** One entry per `split_names` index. */
  split: z.array(SubsetSchema),
  /** Where it came from, relative to the import's root (or the zip entry name). */
  source: z.string().max(4096).optional(),
});
export type ImageRecord = z.infer<typeof ImageRecordSchema>;

/** `invalid_target`: a regression row whose target cell is missing, not a number or not finite. */
export const SkipReasonSchema = z.enum(['corrupt', 'unsupported', 'duplicate', 'outside_root', 'ambiguous', 'too_large', 'missing', 'invalid_target']);

export const ImportReportSchema = z.object({
  imported: z.number().int().min(0),
  skipped: z.array(z.object({ file: z.string(), reason: SkipReasonSchema, detail: z.string().optional() })),
  /** Imported images worth a look (one flat colour: a "not found" placeholder, a blank frame). */
  flagged: z.array(z.object({ file: z.string(), reason: z.enum(['near_constant']), detail: z.string() })).optional(),
  duplicates: z.number().int().min(0),
  classes: z.array(z.string()),
  elapsed_ms: z.number().min(0),
});
export type ImportReport = z.infer<typeof ImportReportSchema>;

export const DatasetErrorSchema = z.object({ code: z.string(), message: z.string() });

/**
 * A whole dataset in memory: its header, every image record and each image's subset per split.
 * This is what training, evaluation and export read (`Workspace.readDataset` assembles it from the
 * shards), and it was the stored `dataset.json` of schema version 1 (every image in one file),
 * which `DatasetV1Doc` still reads to migrate it.
 */
export const DatasetFileSchema = z
  .object({
    schema_version: z.literal(1),
    id: DatasetIdSchema,
    name: DisplayNameSchema,
    task: StoredTaskNameSchema,
    status: DatasetStatusSchema,
    /** Classification and multi-label: the label set (the model's outputs). Regression: []. */
    classes: z.array(LabelSchema),
    /** Regression: the targets' names (CSV target columns), the model's outputs. Other tasks: []. */
    target_names: z.array(LabelSchema).default([]),
    split_names: z.array(SplitNameSchema),
    images: z.array(ImageRecordSchema),
    import_report: ImportReportSchema.nullable(),
    /** Why the import failed, when status is 'failed'. */
    error: DatasetErrorSchema.nullable().default(null),
    created_at: TimestampSchema,
    updated_at: TimestampSchema,
  })
  .superRefine((d, ctx) => {
    if (new Set(d.split_names).size !== d.split_names.length) ctx.addIssue({ code: 'custom', message: 'duplicate split name', path: ['split_names'] });
    const n = d.split_names.length;
    for (let i = 0; i < d.images.length; i++) {
      if (d.images[i].split.length !== n) {
        ctx.addIssue({ code: 'custom', message: `image split list has ${d.images[i].split.length} entries, split_names has ${n}`, path: ['images', i, 'split'] });
        return;
      }
      const t = d.images[i].targets;
      if (t !== undefined && t.length !== d.target_names.length) {
        ctx.addIssue({ code: 'custom', message: `image has ${t.length} targets, target_names has ${d.target_names.length}`, path: ['images', i, 'targets'] });
        return;
      }
    }
  });
export type DatasetFile = z.infer<typeof DatasetFileSchema>;

/** A version-1 `dataset.json`, read only to migrate it (src/storage/dataset-migrate.ts). */
export const DatasetV1Doc: DocType<DatasetFile> = { name: 'dataset.json', version: 1, schema: DatasetFileSchema };

/** An image record as a shard stores it: its subsets live in the split files, not here. */
export const StoredImageSchema = ImageRecordSchema.omit({ split: true });
export type StoredImage = z.infer<typeof StoredImageSchema>;

/**
 * Counts kept in the header so a summary needs no image record. Generic over the tasks: an image is
 * labelled when it has a `label`, `labels` or `targets`; it counts under its label, each of its
 * labels, or every target name. `cardinality[k]`: images whose `labels` hold k labels.
 */
export const DatasetCountsSchema = z.object({
  images: z.number().int().min(0),
  unlabeled: z.number().int().min(0),
  /** [class, images] pairs by name: pairs, not an object, so a class may be called `__proto__`. */
  class_counts: z.array(z.tuple([z.string(), z.number().int().min(1)])),
  cardinality: z.array(z.number().int().min(0)),
});
export type DatasetCounts = z.infer<typeof DatasetCountsSchema>;

/** Split files are named by the header that commits them (as shard files are); a name is never rewritten. */
const SplitFileNameSchema = z.string().regex(/^splits\/[A-Za-z0-9_-]{1,64}\.[0-9]+\.json$/);

/**
 * `projects/<pid>/datasets/<did>/dataset.json`, version 2: the header and the commit point. It names
 * the shard files that hold the image records (in order) and the split files; a change writes new
 * shard or split files, then this file (atomically), then removes what it replaced
 * (plan/storage.md, "Datasets at scale").
 */
export const DatasetManifestSchema = z
  .object({
    schema_version: z.literal(2),
    id: DatasetIdSchema,
    name: DisplayNameSchema,
    task: StoredTaskNameSchema,
    status: DatasetStatusSchema,
    classes: z.array(LabelSchema),
    target_names: z.array(LabelSchema),
    /** Each commit's number; shard and split files carry the one that wrote them. */
    rev: z.number().int().min(0),
    next_shard: z.number().int().min(0),
    /** `[slot, rev, images]` per shard, in the dataset's order: its file is `shards/<slot, 6 digits>.<rev>.json`. */
    shards: z.array(z.tuple([z.number().int().min(0).max(999_999), z.number().int().min(0), z.number().int().min(1)])),
    splits: z.array(z.object({ name: SplitNameSchema, file: SplitFileNameSchema })),
    counts: DatasetCountsSchema,
    /** Image and thumbnail files of deleted images not yet unlinked (a crash between commit and unlink). */
    trash: z.array(z.string().max(200)),
    import_report: ImportReportSchema.nullable(),
    error: DatasetErrorSchema.nullable(),
    created_at: TimestampSchema,
    updated_at: TimestampSchema,
  })
  .superRefine((d, ctx) => {
    const names = d.splits.map((s) => s.name);
    if (new Set(names).size !== names.length) ctx.addIssue({ code: 'custom', message: 'duplicate split name', path: ['splits'] });
    const total = d.shards.reduce((a, s) => a + s[2], 0);
    if (total !== d.counts.images) ctx.addIssue({ code: 'custom', message: `shards hold ${total} images, counts.images is ${d.counts.images}`, path: ['counts', 'images'] });
  });
export type DatasetManifest = z.infer<typeof DatasetManifestSchema>;
export const DatasetDoc: DocType<DatasetManifest> = { name: 'dataset.json', version: 2, schema: DatasetManifestSchema };

/** `shards/<n>.<rev>.json`: up to SHARD_SIZE image records, in the dataset's order. */
export const ShardSchema = z.object({ schema_version: z.literal(1), images: z.array(StoredImageSchema).min(1) });
export type ShardFile = z.infer<typeof ShardSchema>;
export const ShardDoc: DocType<ShardFile> = { name: 'dataset shard', version: 1, schema: ShardSchema };

/** `splits/<name>.<rev>.json`: a split's assignment, written once. An image listed nowhere (added later) is in `none`. */
export const SplitFileSchema = z.object({
  schema_version: z.literal(1),
  name: SplitNameSchema,
  train: z.array(ImageIdSchema),
  val: z.array(ImageIdSchema),
  test: z.array(ImageIdSchema),
});
export type SplitFile = z.infer<typeof SplitFileSchema>;
export const SplitDoc: DocType<SplitFile> = { name: 'split file', version: 1, schema: SplitFileSchema };



export const SubsetCountsSchema = z.object({ train: z.number().int(), val: z.number().int(), test: z.number().int(), none: z.number().int() });
export type SubsetCounts = z.infer<typeof SubsetCountsSchema>;

/** What the API returns for a dataset: everything but the image list. */
export interface DatasetSummary {
  id: string;
  project_id: string;
  name: string;
  task: Task;
  status: DatasetStatus;
  classes: string[];
  /** Regression's target names ([] for the other tasks). */
  target_names: string[];
  image_count: number;
  /**
   * Classification: images per class. Multi-label: images per label (an image counts once for each
   * of its labels). Regression: images with targets, under each target name.
   */
  class_counts: Record<string, number>;
  /** Images with no label (classification), no `labels` (multi-label) or no `targets` (regression). */
  unlabeled_count: number;
  /** Multi-label only: index k = labeled images with exactly k labels. */
  label_cardinality?: number[];
  /** Regression only: per target, over the images that have targets. */
  target_stats?: Record<string, TargetStats>;
  split_names: string[];
  import_report: ImportReport | null;
  error: { code: string; message: string } | null;
  created_at: string;
  updated_at: string;
}

/** A regression target's distribution; null statistics when no image has targets. */
export interface TargetStats {
  count: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  /** Population standard deviation (divided by n). */
  std: number | null;
  /** Equal-width bins: `counts[i]` values lie in [edges[i], edges[i+1]) (the last bin is closed). */
  histogram: { edges: number[]; counts: number[] };
}

/** One row of the image grid. `split` is the image's subset in the split asked for (or the first one); null when the dataset has none. */
export interface ImageItem {
  id: string;
  file: string;
  width: number;
  height: number;
  label: string | null;
  /** Multi-label: the image's labels, when it is labeled. */
  labels?: string[];
  /** Regression: target name → value, when it has targets. */
  targets?: Record<string, number>;
  split: Subset | null;
}

/** One image in full, for the detail view and as the answer to PATCH. */
export interface ImageDetail {
  id: string;
  file: string;
  width: number;
  height: number;
  hash: string;
  label: string | null;
  /** Multi-label: the image's labels, when it is labeled. */
  labels?: string[];
  /** Regression: target name → value, when it has targets. */
  targets?: Record<string, number>;
  annotations: Annotation[];
  source: string | null;
  /** The image's subset in every split, by split name. */
  splits: Record<string, Subset>;
}

/** For the class histogram: `counts[i]` images have `labels[i]`; with a split, the same per subset. */
export interface ClassHistogram {
  labels: string[];
  counts: number[];
  unlabeled: number;
  split: string | null;
  subsets: Record<Subset, number[]> | null;
}

export interface ImagePage {
  items: ImageItem[];
  page: number;
  page_size: number;
  total: number;
}

export interface SplitSummary {
  name: string;
  /** Images per subset; `none` counts images left out (unlabeled). */
  counts: SubsetCounts;
  /** Per class; multi-label: per label (an image counts under each of its labels); regression: per target name. */
  per_class: Record<string, SubsetCounts>;
}

export const DatasetCreateSchema = z.strictObject({
  name: DisplayNameSchema,
  task: DatasetTaskSchema.default('classification'),
  /** Regression: the target names (from the CSV source's target_columns). */
  target_names: z.array(LabelSchema).max(64).optional(),
});
export type DatasetCreate = z.input<typeof DatasetCreateSchema>;

export const DatasetUpdateSchema = z.strictObject({ name: DisplayNameSchema.optional() });
export type DatasetUpdate = z.input<typeof DatasetUpdateSchema>;

/**
 * PATCH of an image: exactly one of `label` (classification; null clears), `labels` (multi-label;
 * each a class, null clears) or `targets` (regression; every target name → a finite number, null
 * clears). Which one fits is the dataset's task; the service refuses the others by name.
 */
export const ImageUpdateSchema = z
  .strictObject({
    label: LabelSchema.nullable().optional(),
    labels: z.array(LabelSchema).max(1000).nullable().optional(),
    targets: z.record(z.string().max(200), z.number().finite()).nullable().optional(),
    /** The image's boxes and polygons, replaced whole (COCO conventions: bbox [x, y, w, h] in pixels). */
    annotations: z.array(AnnotationSchema).max(10_000).optional(),
  })
  .refine((b) => [b.label, b.labels, b.targets].filter((v) => v !== undefined).length <= 1, 'give at most one of label, labels, targets')
  .refine((b) => [b.label, b.labels, b.targets, b.annotations].some((v) => v !== undefined), 'give one of label, labels, targets (or annotations)');
export type ImageUpdate = z.input<typeof ImageUpdateSchema>;

export const ImageQuerySchema = z.strictObject({
  page: z.coerce.number().int().min(1).max(1_000_000).default(1),
  page_size: z.coerce.number().int().min(1).max(500).default(50),
  label: z.string().min(1).max(200).optional(),
  split: SplitNameSchema.optional(),
  subset: SubsetSchema.optional(),
});
export type ImageQuery = z.input<typeof ImageQuerySchema>;

const ratio = z.number().min(0).max(1);
export const SplitRequestSchema = z.strictObject({
  name: SplitNameSchema,
  ratios: z
    .strictObject({ train: ratio, val: ratio, test: ratio })
    .refine((r) => Math.abs(r.train + r.val + r.test - 1) < 1e-6, 'ratios must sum to 1'),
  stratify: z.boolean().default(true),
  seed: z.number().int().min(0).max(2 ** 31 - 1).default(0),
  preview: z.boolean().default(false),
});
export type SplitRequest = z.input<typeof SplitRequestSchema>;
