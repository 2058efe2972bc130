import { z } from 'zod';
import type { DocType } from './common.ts';
import { idOf, JobIdSchema, ProjectIdSchema, TimestampSchema } from './common.ts';
import { CheckpointNameSchema, ExperimentIdSchema, RunIdSchema } from './experiment.ts';

/**
 * An export as stored: `exports/<export-id>/export.json` (status and request, changed in place
 * under its lock) and `report.json` (validation, the task's metric, benchmark and profile per
 * variant). Variant and file names are the export formats' (src/export/formats/); the stored
 * files hold them by form, and src/storage/exports.ts checks them against the registry.
 */

export const ExportIdSchema = idOf('export');
/** A variant's name as stored (`fp32`, `int8`, …: a format of src/export/formats/). */
export const StoredVariantNameSchema = z.string().regex(/^[a-z0-9_]{1,32}$/, 'a variant name');
/** A file of the package as stored (`model.int8.onnx`, …). */
export const StoredFileNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a file name');

export const EXPORT_STATUSES = ['queued', 'running', 'succeeded', 'failed'] as const;
export const ExportStatusSchema = z.enum(EXPORT_STATUSES);

export const ExportConfigSchema = z.object({
  run_id: RunIdSchema,
  checkpoint: CheckpointNameSchema,
  variants: z.array(StoredVariantNameSchema).min(1),
  benchmark: z.boolean(),
});
export type ExportConfig = z.infer<typeof ExportConfigSchema>;

export const ExportFileSchema = z.object({
  schema_version: z.literal(1),
  id: ExportIdSchema,
  project_id: ProjectIdSchema,
  experiment_id: ExperimentIdSchema,
  status: ExportStatusSchema,
  config: ExportConfigSchema,
  job_id: JobIdSchema.nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  created_at: TimestampSchema,
  finished_at: TimestampSchema.nullable(),
  updated_at: TimestampSchema,
});
export type ExportFile = z.infer<typeof ExportFileSchema>;
export const ExportDoc: DocType<ExportFile> = { name: 'export.json', version: 1, schema: ExportFileSchema };

// ── report.json ──────────────────────────────────────────────────────────────────────────────

const Finite = z.number().finite();
/** NaN (a model that outputs NaN) is stored as null: JSON has no NaN. */
const Measure = z.number().finite().nullable();

export const ValidationReportSchema = z.object({
  count: z.number().int().min(0),
  max_abs_error: Measure,
  rmse: Measure,
  cosine: Measure,
  /** Null where the outputs are not a distribution over classes (multi-label, regression). */
  argmax_agreement: Measure,
  /** How the outputs were compared: `probabilities`, `scores` or `values` (absent: before tasks, probabilities). */
  kind: z.enum(['probabilities', 'scores', 'values']).optional(),
  /** The unit of the errors where not the outputs' own (regression: target standard deviations). */
  units: z.string().optional(),
  passed: z.boolean(),
  tolerance: z.object({ maxAbsError: Finite.optional(), maxRmse: Finite.optional(), minCosine: Finite.optional(), minArgmaxAgreement: Finite.optional() }),
  failures: z.array(z.string()),
});
export type ValidationReport = z.infer<typeof ValidationReportSchema>;

const LatencySchema = z.object({ runs: z.number().int(), mean_ms: Finite, p50_ms: Finite, p90_ms: Finite, p99_ms: Finite });
const ThroughputSchema = z.object({ batch: z.number().int(), runs: z.number().int(), ms_per_batch: Finite, images_per_s: Finite });
export const BenchmarkReportSchema = z.object({
  input: z.object({ channels: z.number().int(), height: z.number().int(), width: z.number().int() }),
  results: z.array(z.object({ threads: z.number().int().min(1), latency_b1: LatencySchema, throughput: z.array(ThroughputSchema) })),
  peak_rss_bytes: z.number().int().min(0),
});
export type StoredBenchmark = z.infer<typeof BenchmarkReportSchema>;

export const ProfileRowSchema = z.object({
  node: z.string(),
  op_type: z.string(),
  /** Kernel time per run at batch 1, microseconds (onnxruntime's profiler, optimized graph). */
  mean_us: Finite,
  percent: Finite,
  /** Parameters the node reads (from the fp32 graph; null when the runtime fused it under another name). */
  params: z.number().int().min(0).nullable(),
});
export const ProfileReportSchema = z.object({
  params: z.number().int().min(0),
  flops: z.number().min(0),
  size_bytes: z.number().int().min(0),
  threads: z.number().int().min(1),
  runs: z.number().int().min(1),
  nodes: z.array(ProfileRowSchema),
});
export type ProfileReport = z.infer<typeof ProfileReportSchema>;

export const TaskMetricSchema = z.object({ name: z.string(), value: Measure });

export const VariantReportSchema = z.object({
  name: StoredVariantNameSchema,
  file: StoredFileNameSchema,
  size_bytes: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  validation: ValidationReportSchema,
  /** Top-1 accuracy on the validation images (classification; null for other tasks). */
  accuracy: z.number().min(0).max(1).nullable(),
  /** The task's export metric on the validation images (accuracy, map, mae, …); absent before tasks. */
  metric: TaskMetricSchema.nullable().optional(),
  benchmark: BenchmarkReportSchema.nullable(),
  profile: ProfileReportSchema.nullable(),
});
export type VariantReport = z.infer<typeof VariantReportSchema>;

export const ReportFileSchema = z.object({
  schema_version: z.literal(1),
  /** Which subset of the run's split the validation images came from, and how many were used. */
  subset: z.enum(['val', 'test', 'train']),
  images: z.number().int().min(1),
  /** The training engine's eval graph on the same images. */
  reference: z.object({ accuracy: z.number().min(0).max(1).nullable(), metric: TaskMetricSchema.nullable().optional() }),
  params: z.number().int().min(0),
  flops: z.number().min(0),
  variants: z.array(VariantReportSchema).min(1),
  /** Images that could not be read (left out of validation). */
  skipped: z.array(z.object({ image_id: z.string(), reason: z.string() })),
});
export type ReportFile = z.infer<typeof ReportFileSchema>;
export const ReportDoc: DocType<ReportFile> = { name: 'report.json', version: 1, schema: ReportFileSchema };
