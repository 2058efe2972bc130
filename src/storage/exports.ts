import { createReadStream, promises as fs, type ReadStream } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { AppError, notFound } from '../kernel/errors.ts';
import { FORMAT_FILES, FORMAT_NAMES } from '../export/formats/index.ts';
import { parseManifest, type Manifest } from '../export/manifest.ts';
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

export { ExportIdSchema } from '../schemas/export.ts';
import { ExportIdSchema } from '../schemas/export.ts';
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

/** Stored variant names as the registry's: a name no format has (a file from another build) is STORAGE_CORRUPT. */
export function storedVariants(names: readonly string[]): VariantName[] {
  const r = z.array(VariantNameSchema).safeParse(names);
  if (!r.success) throw new AppError('STORAGE_CORRUPT', `export names variants this build has no format for: ${names.join(', ')}`);
  return r.data;
}
export type ArtifactName = z.infer<typeof ArtifactNameSchema>;

export {
  EXPORT_STATUSES,
  ExportConfigSchema,
  ExportDoc,
  ExportFileSchema,
  ExportStatusSchema,
  ReportDoc,
  ReportFileSchema,
  ValidationReportSchema,
  BenchmarkReportSchema,
  ProfileRowSchema,
  ProfileReportSchema,
  TaskMetricSchema,
  VariantReportSchema,
  type ExportConfig,
  type ExportFile,
  type ReportFile,
  type ValidationReport,
  type StoredBenchmark,
  type ProfileReport,
  type VariantReport,
} from '../schemas/export.ts';
import { ExportDoc, ReportDoc, type ExportFile, type ReportFile } from '../schemas/export.ts';

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
