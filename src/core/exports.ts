import os from 'node:os';
import type { ReadStream } from 'node:fs';
import { z } from 'zod';
import type { Manifest } from '../export/manifest.ts';
import { FORMATS } from '../export/formats/index.ts';
import { predictImages, type Prediction } from '../export/predict.ts';
import { createPredictCache, type PredictCache } from '../export/predict-cache.ts';
import type { JobView } from '../jobs/registry.ts';
import { FINISHED, type JobOutcome, type JobsService } from '../jobs/service.ts';
import { submitWorkerJob } from '../jobs/submit.ts';
import { createDedicatedPool, type DedicatedPools } from '../jobs/pool.ts';
import { CheckpointNameSchema, RunIdSchema } from '../schemas/experiment.ts';
import {
  clearArtifacts,
  ExportIdSchema,
  listExportIds,
  modifyExport,
  openArtifact,
  readArtifact,
  readExport,
  readManifest,
  readReport,
  removeExport,
  VariantNameSchema,
  storedVariants,
  writeExport,
  type ArtifactName,
  type ExportConfig,
  type ExportFile,
  type ExportRef,
  type ReportFile,
  type VariantName,
  type VariantReport,
} from '../storage/exports.ts';
import { readExperiment } from '../storage/experiments.ts';
import { newId } from '../storage/ids.ts';
import { checkpointExists, readRun, readRunConfig } from '../storage/runs.ts';
import type { Workspace } from '../storage/workspace.ts';
import type { ExportWorkerMessage, ExportWorkerPayload, ExportWorkerResult } from '../workers/export.ts';
import { AppError, conflict, notFound, validation } from '../kernel/errors.ts';
import { onDeleted, type DeletedScope } from './projects.ts';

/**
 * An experiment's exports: starting one as a job (the worker thread in src/workers/export.ts
 * builds, validates, benchmarks and packages the variants), listing and reading them with their
 * report and manifest, streaming their files and zip, predicting with an exported file, deleting.
 */

/** The body of `POST …/exports`. */
export const ExportStartSchema = z.strictObject({
  run_id: RunIdSchema,
  checkpoint: CheckpointNameSchema,
  variants: z
    .array(VariantNameSchema, { error: `must be a list of variants (${VariantNameSchema.options.map((v) => `"${v}"`).join(', ')})` })
    .min(1, 'choose at least one variant')
    .refine((v) => new Set(v).size === v.length, 'a variant is listed twice'),
  /** Benchmark and profile every variant (default true: every export is measured). */
  benchmark: z.boolean({ error: 'must be true or false' }).default(true),
});
export type ExportStart = z.input<typeof ExportStartSchema>;

export type VariantView = VariantReport;

export interface ExportView {
  id: string;
  status: ExportFile['status'];
  created_at: string;
  finished_at: string | null;
  run_id: string;
  checkpoint: 'best' | 'last';
  /** The variants asked for; `variants` holds the built ones once the export succeeded. */
  requested: VariantName[];
  benchmark: boolean;
  variants: VariantView[];
  /** Validation images: which subset of the run's split, and how many. */
  subset: ReportFile['subset'] | null;
  images: number;
  /** Accuracy of the training engine's eval graph on those images (classification). */
  reference_accuracy: number | null;
  /** The task's export metric of the eval graph on those images (accuracy, map, mae, …). */
  reference_metric: { name: string; value: number | null } | null;
  /** The run's task (from the manifest; null until the export has succeeded). */
  task: string | null;
  params: number | null;
  flops: number | null;
  manifest: Manifest | null;
  job_id: string | null;
  error?: { code: string; message: string };
}

export interface PredictResult {
  /** The export's task: what `answer` holds. */
  task: string;
  /**
   * The task's answer for the one image (classification `{top}`, multi-label `{labels, scores}`,
   * regression `{values}`); with several images, `answers` holds one per image instead.
   */
  answer?: unknown;
  answers?: unknown[];
  /**
   * As before tasks: classification's top-5 of the one image (one list per image for several);
   * for the other tasks the same as `answer` / `answers`.
   */
  predictions: Prediction[] | Prediction[][] | unknown;
  variant: VariantName;
  /** Time of the model run alone (all images in one batch), milliseconds. */
  latency_ms: number;
}

export interface PredictInput {
  images: Buffer[];
  variant?: VariantName;
}

export interface ExportsService {
  start(projectId: string, experimentId: string, body: unknown): Promise<{ export: ExportView; job: JobView }>;
  /** Newest first. */
  list(projectId: string, experimentId: string): Promise<ExportView[]>;
  get(projectId: string, experimentId: string, exportId: string): Promise<ExportView>;
  /** package.zip as a stream, with its size and a download name. */
  download(projectId: string, experimentId: string, exportId: string): Promise<{ stream: ReadStream; size: number; filename: string }>;
  /** One file of the package by its name (`model.onnx`, `manifest.json`, …). */
  file(projectId: string, experimentId: string, exportId: string, name: string): Promise<{ stream: ReadStream; size: number; mime: string }>;
  predict(projectId: string, experimentId: string, exportId: string, input: PredictInput): Promise<PredictResult>;
  /** Cancels a running export, deletes its folder and releases its loaded predict sessions. */
  remove(projectId: string, experimentId: string, exportId: string): Promise<{ deleted: true }>;
  /** The variants of an export whose predict session is loaded now (read-only; for tests and diagnostics). */
  loadedVariants(projectId: string, experimentId: string, exportId: string): VariantName[];
  /** Resolves once the export's job (if any) is finished and recorded. */
  wait(projectId: string, experimentId: string, exportId: string): Promise<ExportView>;
  close(): Promise<void>;
}

/** The export thread (a one-thread pool of its own, src/jobs/pool.ts). */
export type ExportPool = DedicatedPools['export'];

export interface ExportsDeps {
  store: Workspace;
  jobs: JobsService;
  /** Intra-op threads of the export thread (default: every core). */
  threads?: number;
  /** Benchmark sizes; tests make them small. */
  benchmark?: ExportWorkerPayload['benchmark'];
  pool?: ExportPool;
  predictCache?: PredictCache;
}

export const PREDICT_TOP_K = 5;
export const PREDICT_MAX_IMAGES = 32;

const MIME: Record<ArtifactName, string> = {
  ...(Object.fromEntries(FORMATS.map((f) => [f.file, f.mediaType])) as Record<(typeof FORMATS)[number]['file'], string>),
  'labels.txt': 'text/plain; charset=utf-8',
  'README.md': 'text/markdown; charset=utf-8',
  'manifest.json': 'application/json; charset=utf-8',
  'SHA256SUMS': 'text/plain; charset=utf-8',
  'report.json': 'application/json; charset=utf-8',
  'package.zip': 'application/zip',
};
const ACTIVE_RUN = new Set(['queued', 'running']);

/** What predict sessions were loaded from; a shorter scope covers every export under it. */
type PredictScope = DeletedScope & { exportId?: string };

/** Cache keys are `project/experiment/export/variant`; ids hold no `/`, so a prefix names exactly one scope. */
function scopePrefix(s: PredictScope): string {
  return [s.projectId, s.experimentId, s.exportId].filter((x) => x !== undefined).map((x) => `${x}/`).join('');
}

export function createExportsService(deps: ExportsDeps): ExportsService {
  const { store, jobs } = deps;
  const pool: ExportPool = deps.pool ?? createDedicatedPool('export');
  const cache = deps.predictCache ?? createPredictCache({ threads: deps.threads });
  // A deleted experiment or project takes its exports' loaded sessions with it at once.
  const unsubscribe = onDeleted(store, (scope) => cache.release(scopePrefix(scope)));
  /** Jobs of this process by export id; removed once the outcome is recorded. */
  const live = new Map<string, { jobId: string; done: Promise<void> }>();

  async function ref(projectId: string, experimentId: string, exportId: string): Promise<ExportRef> {
    await readExperiment(store, projectId, experimentId);
    if (!ExportIdSchema.safeParse(exportId).success) throw notFound('export', exportId);
    return { projectId, experimentId, exportId };
  }

  /** An export left queued/running by a studio that stopped is recorded as failed when next read. */
  async function settled(r: ExportRef): Promise<ExportFile> {
    const cur = await readExport(store, r);
    if ((cur.status !== 'queued' && cur.status !== 'running') || live.has(r.exportId)) return cur;
    const job = cur.job_id ? await jobs.get(cur.job_id).catch(() => null) : null;
    if (job && !FINISHED.has(job.status)) return cur;
    await clearArtifacts(store, r);
    return modifyExport(store, r, (x) => ({
      ...x,
      status: 'failed',
      error: job?.error ?? { code: 'INTERRUPTED', message: 'the studio stopped during this export' },
      finished_at: new Date().toISOString(),
    }));
  }

  async function view(r: ExportRef, f: ExportFile): Promise<ExportView> {
    const done = f.status === 'succeeded';
    const report = done ? await readReport(store, r) : null;
    const manifest = done ? await readManifest(store, r) : null;
    return {
      id: f.id,
      status: f.status,
      created_at: f.created_at,
      finished_at: f.finished_at,
      run_id: f.config.run_id,
      checkpoint: f.config.checkpoint,
      requested: storedVariants(f.config.variants),
      benchmark: f.config.benchmark,
      variants: report?.variants ?? [],
      subset: report?.subset ?? null,
      images: report?.images ?? 0,
      reference_accuracy: report?.reference.accuracy ?? null,
      reference_metric: report?.reference.metric ?? (report?.reference.accuracy != null ? { name: 'accuracy', value: report.reference.accuracy } : null),
      task: manifest?.task ?? null,
      params: report?.params ?? null,
      flops: report?.flops ?? null,
      manifest,
      job_id: f.job_id,
      ...(f.error ? { error: f.error } : {}),
    };
  }

  async function succeeded(r: ExportRef): Promise<ExportFile> {
    const f = await settled(r);
    if (f.status !== 'succeeded') throw conflict(`export '${r.exportId}' is ${f.status}${f.status === 'failed' ? '' : ': wait until it has finished'}`);
    return f;
  }

  async function record(r: ExportRef, outcome: JobOutcome<ExportWorkerResult & { ok: true }>): Promise<void> {
    const finished_at = new Date().toISOString();
    if (outcome.status === 'succeeded') {
      await modifyExport(store, r, (cur) => ({ ...cur, status: 'succeeded', error: null, finished_at }));
      return;
    }
    await clearArtifacts(store, r).catch(() => undefined);
    await modifyExport(store, r, (cur) => ({ ...cur, status: 'failed', error: outcome.error, finished_at })).catch((e: unknown) => {
      // Deleted while it ran: nothing left to record.
      if (!(e instanceof AppError && e.code === 'NOT_FOUND')) throw e;
    });
  }

  async function submit(r: ExportRef, config: ExportConfig, datasetId: string): Promise<JobView> {
    const payload: ExportWorkerPayload = {
      workspace: store.root,
      project_id: r.projectId,
      experiment_id: r.experimentId,
      export_id: r.exportId,
      config,
      threads: deps.threads ?? os.availableParallelism(),
      ...(deps.benchmark ? { benchmark: deps.benchmark } : {}),
    };
    let resolveDone!: () => void;
    const entry = { jobId: '', done: new Promise<void>((resolve) => (resolveDone = resolve)) };
    // Registered before the job exists: a job that settles at once must not leave an entry behind.
    live.set(r.exportId, entry);
    const job = await submitWorkerJob<ExportWorkerMessage, ExportWorkerResult & { ok: true }>(jobs, {
      kind: 'export',
      project_id: r.projectId,
      experiment_id: r.experimentId,
      dataset_id: datasetId,
      work: (o) => pool.run(payload, o),
      onStart: async (handle) => {
        await modifyExport(store, r, (cur) => ({ ...cur, status: 'running', job_id: handle.id }));
      },
      onMessage: (m, handle) => {
        if (m.type === 'progress') handle.progress(m.fraction, { step: m.step_index, steps: m.steps });
        else handle.log(m.message);
      },
      onSettled: async (outcome) => {
        try {
          await record(r, outcome);
        } finally {
          live.delete(r.exportId);
          resolveDone();
        }
      },
    }).catch((e: unknown) => {
      live.delete(r.exportId);
      resolveDone();
      throw e;
    });
    entry.jobId = job.id;
    return job;
  }

  async function modelBytes(r: ExportRef, file: ArtifactName): Promise<Uint8Array> {
    const bytes = await readArtifact(store, r, file);
    if (!bytes) throw notFound(`file '${file}' of export`, r.exportId);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  return {
    async start(projectId, experimentId, body) {
      await readExperiment(store, projectId, experimentId);
      const parsed = ExportStartSchema.safeParse(body ?? {});
      if (!parsed.success) {
        throw validation(`invalid body: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`, parsed.error.issues);
      }
      const req = parsed.data;
      const runRef = { projectId, experimentId, runId: req.run_id };
      const run = await readRun(store, runRef);
      if (ACTIVE_RUN.has(run.status)) throw conflict(`run '${run.id}' is still ${run.status}: export it once it has finished`);
      if (!run.checkpoints.some((c) => c.name === req.checkpoint) || !(await checkpointExists(store, runRef, req.checkpoint))) {
        throw notFound(`checkpoint '${req.checkpoint}' of run`, run.id);
      }
      const runConfig = await readRunConfig(store, runRef);
      if (!runConfig) throw validation(`run '${run.id}' has no config.json (it stopped before it began)`);
      // Checked now so that a bad choice is a 400 here, not a failed job later: validation needs the run's images.
      const ds = await store.readDataset(projectId, runConfig.dataset.id);
      if (!ds) throw validation(`the dataset '${runConfig.dataset.id}' the run trained on no longer exists: an export is validated on its images`);
      if (!ds.split_names.includes(runConfig.split.name)) throw validation(`the dataset no longer has the split '${runConfig.split.name}'`);

      const id = newId('export');
      const r: ExportRef = { projectId, experimentId, exportId: id };
      const now = new Date().toISOString();
      // Variants in a fixed order, whatever order they were asked in.
      const variants = VariantNameSchema.options.filter((v) => req.variants.includes(v));
      const config: ExportConfig = { run_id: run.id, checkpoint: req.checkpoint, variants, benchmark: req.benchmark };
      await writeExport(store, {
        schema_version: 1,
        id,
        project_id: projectId,
        experiment_id: experimentId,
        status: 'queued',
        config,
        job_id: null,
        error: null,
        created_at: now,
        finished_at: null,
        updated_at: now,
      });
      let job: JobView;
      try {
        job = await submit(r, config, runConfig.dataset.id);
      } catch (e) {
        await removeExport(store, r);
        throw e;
      }
      const f = await modifyExport(store, r, (cur) => ({ ...cur, job_id: cur.job_id ?? job.id }));
      return { export: await view(r, f), job };
    },

    async list(projectId, experimentId) {
      await readExperiment(store, projectId, experimentId);
      const out: ExportView[] = [];
      for (const id of await listExportIds(store, projectId, experimentId)) {
        const r = { projectId, experimentId, exportId: id };
        // A folder a delete is removing (or a broken one) is left out rather than failing the list.
        const f = await settled(r).catch(() => null);
        if (f) out.push(await view(r, f));
      }
      return out.sort((a, b) => b.created_at.localeCompare(a.created_at) || b.id.localeCompare(a.id));
    },

    async get(projectId, experimentId, exportId) {
      const r = await ref(projectId, experimentId, exportId);
      return view(r, await settled(r));
    },

    async download(projectId, experimentId, exportId) {
      const r = await ref(projectId, experimentId, exportId);
      const f = await succeeded(r);
      const { stream, size } = await openArtifact(store, r, 'package.zip');
      // Named for a person's downloads folder: the experiment and the variants, not internal ids.
      const exp = await readExperiment(store, projectId, experimentId);
      return { stream, size, filename: `${downloadSlug(exp.name)}-${f.config.variants.join('-')}.zip` };
    },

    async file(projectId, experimentId, exportId, name) {
      const r = await ref(projectId, experimentId, exportId);
      const known = z.enum(Object.keys(MIME) as [ArtifactName, ...ArtifactName[]]).safeParse(name);
      if (!known.success) throw notFound(`file '${name.slice(0, 80)}' of export`, exportId);
      await succeeded(r);
      const { stream, size } = await openArtifact(store, r, known.data);
      return { stream, size, mime: MIME[known.data] };
    },

    async predict(projectId, experimentId, exportId, input) {
      const r = await ref(projectId, experimentId, exportId);
      await succeeded(r);
      if (input.images.length === 0) throw validation('send at least one image');
      if (input.images.length > PREDICT_MAX_IMAGES) throw new AppError('TOO_MANY_PARTS', `at most ${PREDICT_MAX_IMAGES} images at once`);
      const manifest = await readManifest(store, r);
      if (!manifest) throw new AppError('STORAGE_CORRUPT', `export '${exportId}' has no manifest.json`);
      const models = manifest.files.filter((f) => f.role === 'model');
      const chosen = input.variant
        ? models.find((f) => f.variant === input.variant)
        : (models.find((f) => f.variant === 'fp32') ?? models[0]);
      if (!chosen?.variant) throw notFound(`variant '${input.variant ?? 'fp32'}' of export`, exportId);
      const variant = chosen.variant;
      const file = chosen.name as ArtifactName;

      const { answers, ms } = await predictImages({
        cache,
        key: `${scopePrefix(r)}${variant}`,
        load: () => modelBytes(r, file),
        manifest,
        variant,
        images: input.images,
        topK: PREDICT_TOP_K,
      });
      // classification's answer is {top}; its bare top list is what `predictions` held before tasks
      const legacy = answers.map((a) => (a && typeof a === 'object' && Array.isArray((a as { top?: unknown }).top) ? (a as { top: unknown }).top : a));
      return {
        task: manifest.task,
        ...(answers.length === 1 ? { answer: answers[0] } : { answers }),
        predictions: legacy.length === 1 ? legacy[0] : legacy,
        variant,
        latency_ms: ms,
      };
    },

    async remove(projectId, experimentId, exportId) {
      const r = await ref(projectId, experimentId, exportId);
      await readExport(store, r);
      const l = live.get(exportId);
      if (l) {
        if (l.jobId) {
          await jobs.cancel(l.jobId).catch((e: unknown) => {
            // It finished on its own between the look-up and the cancel.
            if (!(e instanceof AppError && e.code === 'CONFLICT')) throw e;
          });
        }
        await l.done;
      }
      await removeExport(store, r);
      // After the folder is gone: a predict arriving in between would otherwise load the session again.
      await cache.release(scopePrefix(r));
      return { deleted: true };
    },

    loadedVariants(projectId, experimentId, exportId) {
      const prefix = scopePrefix({ projectId, experimentId, exportId });
      return cache
        .keys()
        .filter((k) => k.startsWith(prefix))
        .map((k) => VariantNameSchema.parse(k.slice(prefix.length)));
    },

    async wait(projectId, experimentId, exportId) {
      const l = live.get(exportId);
      if (l) await l.done;
      return this.get(projectId, experimentId, exportId);
    },

    async close() {
      unsubscribe();
      await cache.close();
      await pool.destroy();
    },
  };
}

/** A name safe in a Content-Disposition header and any file system: letters, digits, - and _ only. */
export function downloadSlug(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^A-Za-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60);
  return slug || 'export';
}
