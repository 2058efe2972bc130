import { createReadStream, promises as fs, type ReadStream } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { AppError, notFound } from '../kernel/errors.ts';
import { FORMAT_FILES, FORMAT_NAMES } from '../export/formats/index.ts';
import { parseManifest, type Manifest } from '../export/manifest.ts';
import type { DocType } from '../schemas/common.ts';
import { idOf, JobIdSchema, ProjectIdSchema, TimestampSchema } from '../schemas/common.ts';
import { CheckpointNameSchema, ExperimentIdSchema, RunIdSchema } from '../schemas/experiment.ts';
import { writeFileAtomic } from './atomic.ts';
import { experimentDir } from './experiments.ts';
import { workspacePath } from './safe-path.ts';
import type { Workspace } from './workspace.ts';

/**
 * An experiment's exports on disk: `experiments/<exp-id>/exports/<export-id>/` holds export.json
 * (status and request, the only file changed in place, under its lock), report.json (validation,
 * accuracy, benchmark and profile per variant) and the package's files as the worker wrote them:
 * model*.onnx, labels.txt, README.md, manifest.json, SHA256SUMS and package.zip. Artifact names
 * come from a fixed list, never from a request, so no user string reaches a path join.
 */

export const ExportIdSchema = idOf('export');
/** The export formats' names (the registry, src/export/formats/). */
export const VariantNameSchema = z.enum(FORMAT_NAMES);
export type VariantName = z.infer<typeof VariantNameSchema>;

/** The formats' model files, then the package's other files and the export's own. */
export const ARTIFACT_NAMES = [
  ...FORMAT_FILES,
  'labels.txt',
  'README.md',
  'manifest.json',
  'SHA256SUMS',
  'report.json',
  'package.zip',
] as const;
export const ArtifactNameSchema = z.enum(ARTIFACT_NAMES);
export type ArtifactName = z.infer<typeof ArtifactNameSchema>;

export const EXPORT_STATUSES = ['queued', 'running', 'succeeded', 'failed'] as const;
export const ExportStatusSchema = z.enum(EXPORT_STATUSES);

export const ExportConfigSchema = z.object({
  run_id: RunIdSchema,
  checkpoint: CheckpointNameSchema,
  variants: z.array(VariantNameSchema).min(1),
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
  name: VariantNameSchema,
  file: ArtifactNameSchema,
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

// ── paths ────────────────────────────────────────────────────────────────────────────────────

export interface ExportRef {
  projectId: string;
  experimentId: string;
  exportId: string;
}

export function exportsDir(store: Workspace, projectId: string, experimentId: string): string {
  return path.join(experimentDir(store, projectId, experimentId), 'exports');
}

export function exportDir(store: Workspace, r: ExportRef): string {
  if (!ExportIdSchema.safeParse(r.exportId).success) throw notFound('export', r.exportId);
  return path.join(exportsDir(store, r.projectId, r.experimentId), r.exportId);
}

/** Raw artifacts bypass the JSON document API, so they get the same guard. */
function artifactPath(store: Workspace, r: ExportRef, name: ArtifactName): string {
  return workspacePath(store.root, path.join(exportDir(store, r), ArtifactNameSchema.parse(name)));
}

const exportFile = (store: Workspace, r: ExportRef) => path.join(exportDir(store, r), 'export.json');

// ── export.json ──────────────────────────────────────────────────────────────────────────────

export async function readExport(store: Workspace, r: ExportRef): Promise<ExportFile> {
  return store.get(ExportDoc, exportFile(store, r), 'export', r.exportId);
}

export async function writeExport(store: Workspace, value: ExportFile): Promise<ExportFile> {
  return store.write(ExportDoc, exportFile(store, { projectId: value.project_id, experimentId: value.experiment_id, exportId: value.id }), value);
}

/** Read-modify-write of export.json under its lock; `updated_at` is set here. */
export async function modifyExport(store: Workspace, r: ExportRef, fn: (cur: ExportFile) => ExportFile): Promise<ExportFile> {
  return store.modify(ExportDoc, exportFile(store, r), 'export', r.exportId, (cur) => ({ ...fn(cur), updated_at: new Date().toISOString() }));
}

export async function listExportIds(store: Workspace, projectId: string, experimentId: string): Promise<string[]> {
  return (await store.listDirs(exportsDir(store, projectId, experimentId))).filter((d) => ExportIdSchema.safeParse(d).success);
}

export async function removeExport(store: Workspace, r: ExportRef): Promise<void> {
  await store.removeTree(exportDir(store, r));
}

// ── report.json and artifacts ────────────────────────────────────────────────────────────────

export async function readReport(store: Workspace, r: ExportRef): Promise<ReportFile | null> {
  return store.read(ReportDoc, artifactPath(store, r, 'report.json'));
}

export async function writeReport(store: Workspace, r: ExportRef, report: ReportFile): Promise<void> {
  await store.write(ReportDoc, artifactPath(store, r, 'report.json'), report);
}

/** Writes one package file atomically under its fixed name. */
export async function writeArtifact(store: Workspace, r: ExportRef, name: ArtifactName, bytes: Uint8Array): Promise<void> {
  const file = artifactPath(store, r, name);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, bytes);
}

/** A package file's bytes, or null when the export has no such file. */
export async function readArtifact(store: Workspace, r: ExportRef, name: ArtifactName): Promise<Buffer | null> {
  try {
    return await fs.readFile(artifactPath(store, r, name));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** A package file as a stream (downloads), with its size; NOT_FOUND when it is not there. */
export async function openArtifact(store: Workspace, r: ExportRef, name: ArtifactName): Promise<{ stream: ReadStream; size: number }> {
  const file = artifactPath(store, r, name);
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(`file '${name}' of export`, r.exportId);
    throw e;
  }
  // The stream owns the handle: a file replaced or deleted meanwhile is still read whole.
  const { size } = await fh.stat();
  return { stream: createReadStream(file, { fd: fh }), size };
}

/** The manifest as written into the package, checked against its schema. */
export async function readManifest(store: Workspace, r: ExportRef): Promise<Manifest | null> {
  const bytes = await readArtifact(store, r, 'manifest.json');
  if (bytes === null) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new AppError('STORAGE_CORRUPT', `manifest.json of export '${r.exportId}' is not JSON`);
  }
  try {
    return parseManifest(raw);
  } catch (e) {
    throw new AppError('STORAGE_CORRUPT', `manifest.json of export '${r.exportId}': ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Removes every artifact (export.json stays), e.g. what a failed export had written. */
export async function clearArtifacts(store: Workspace, r: ExportRef): Promise<void> {
  for (const name of ARTIFACT_NAMES) await fs.rm(artifactPath(store, r, name), { force: true });
}
