import { AppError, isAppError } from '../kernel/errors.ts';
import { DEFAULT_BENCHMARK, runExport, type BenchmarkSizes, type ExportImage } from '../export/run-export.ts';
import type { WorkerTask } from '../jobs/pool.ts';
import type { DatasetFile } from '../schemas/dataset.ts';
import type { RunConfigFile } from '../schemas/experiment.ts';
import { runTaskOf, type AnyTask } from '../tasks/index.ts';
import { readExperiment } from '../storage/experiments.ts';
import { ArtifactNameSchema, ReportFileSchema, storedVariants, writeArtifact, writeReport, type ExportConfig, type ExportRef } from '../storage/exports.ts';
import { readRun, type RunRef } from '../storage/runs.ts';
import type { Workspace } from '../storage/workspace.ts';
import { loadRunModel } from './run-model.ts';
import { cancelledFailure, runWorkerTask, type WorkerFailure, type WorkerLog, type WorkerScope } from './worker-task.ts';

/**
 * Thread entry point of an export: rebuilds the run's model from its config.json, loads the
 * checkpoint, picks the validation images (the run's validation dataset, else its split, `val`
 * first), runs the export (src/export/run-export.ts) and writes the package, report.json and
 * package.zip into the export's folder. The main thread records the outcome in export.json.
 */

export interface ExportWorkerPayload {
  workspace: string;
  project_id: string;
  experiment_id: string;
  export_id: string;
  config: ExportConfig;
  threads: number;
  /** Overrides the benchmark's run counts (tests keep them small). */
  benchmark?: Partial<BenchmarkSizes>;
}

export type ExportWorkerMessage =
  | { type: 'progress'; fraction: number; step_index: number; steps: number }
  | WorkerLog;

/** A failure comes back as data (see worker-task.ts). */
export type ExportWorkerResult = { ok: true; variants: string[] } | WorkerFailure;

/** Validation (and int8 calibration) uses at most this many images: enough to see a variant drift, fast to run. */
export const MAX_VALIDATION_IMAGES = 64;
const SUBSET_ORDER = ['val', 'test', 'train'] as const;

export default async function exportWorker(task: WorkerTask<ExportWorkerPayload>): Promise<ExportWorkerResult> {
  const { payload } = task;
  const cfg = payload.config;
  const ref: ExportRef = { projectId: payload.project_id, experimentId: payload.experiment_id, exportId: payload.export_id };
  const r: RunRef = { projectId: ref.projectId, experimentId: ref.experimentId, runId: cfg.run_id };
  return runWorkerTask(task, { cancelled: cancelledFailure }, async ({ signal, post, log, store }: WorkerScope<ExportWorkerMessage>) => {
    const { config: runConfig, spec, params } = await loadRunModel(store, r, cfg.checkpoint);
    const run = await readRun(store, r);
    const experiment = await readExperiment(store, ref.projectId, ref.experimentId);

    const { task, state, names } = runTaskOf(runConfig);
    // The run's validation images: its validation dataset's, else its split's.
    const valDataset = runConfig.val_dataset ?? null;
    const ds = await store.getDataset(ref.projectId, valDataset?.id ?? runConfig.dataset.id);
    const { subset, images } = await validationImages(store, ref.projectId, ds, runConfig, task, names);
    log(`exporting ${cfg.variants.join(', ')} of ${runConfig.model.name} (${cfg.checkpoint} checkpoint of ${cfg.run_id}), validating on ${images.length} ${subset} images${valDataset ? ` of the dataset '${valDataset.name}'` : ''}`);

    const steps = 100;
    const out = await runExport({
      model: spec.model,
      params,
      labels: names,
      task,
      state,
      size: runConfig.model.input_size,
      normalization: runConfig.augmentation.normalize,
      images,
      subset,
      variants: storedVariants(cfg.variants),
      benchmark: cfg.benchmark ? { ...DEFAULT_BENCHMARK, ...payload.benchmark } : null,
      name: experiment.name,
      source: {
        experiment_id: ref.experimentId,
        run_id: cfg.run_id,
        checkpoint: cfg.checkpoint,
        model: runConfig.model.name,
        dataset_id: runConfig.dataset.id,
        dataset_hash: runConfig.dataset.hash,
        split_id: runConfig.split.name,
        split_hash: runConfig.split.hash,
      },
      runMetrics: run.best ? { [`run_best_${run.best.metric}`]: run.best.value } : {},
      threads: payload.threads,
      signal,
      onProgress(step, fraction) {
        post({ type: 'progress', fraction, step_index: Math.round(fraction * steps), steps });
        log(step);
      },
    });
    for (const f of out.files) await writeArtifact(store, ref, ArtifactNameSchema.parse(f.name), f.bytes);
    await writeReport(store, ref, ReportFileSchema.parse({ schema_version: 1, ...out.report }));
    // Last: a package.zip on disk means every other file was written before it.
    await writeArtifact(store, ref, 'package.zip', out.zip);
    for (const v of out.report.variants) {
      log(`${v.name}: ${v.size_bytes} bytes, validation ${v.validation.passed ? 'passed' : `failed (${v.validation.failures.join('; ')})`}`);
    }
    return { ok: true as const, variants: out.report.variants.map((v) => v.name) };
  });
}

/**
 * Up to MAX_VALIDATION_IMAGES of the run's validation images that have a target for the run's task
 * (task.target() not null): those of its validation dataset (`val_dataset` in config.json; `ds` is
 * then that dataset, every image of it a candidate), else of its split, from the `val` subset
 * (else `test`, else `train`); spread evenly over the subset in dataset order so that every class
 * shows up even when the dataset lists images class by class.
 */
async function validationImages(
  store: Workspace,
  projectId: string,
  ds: DatasetFile,
  cfg: RunConfigFile,
  task: AnyTask,
  names: readonly string[],
): Promise<{ subset: (typeof SUBSET_ORDER)[number]; images: ExportImage[] }> {
  const whole = cfg.val_dataset ? cfg.val_dataset.id === ds.id : false;
  const col = whole ? -1 : ds.split_names.indexOf(cfg.split.name);
  if (!whole && col < 0) throw new AppError('BAD_INPUT', `the dataset no longer has the split '${cfg.split.name}'`);
  for (const subset of whole ? (['val'] as const) : SUBSET_ORDER) {
    const items: { image_id: string; file: string; target: number[] }[] = [];
    for (const img of ds.images) {
      if (!whole && img.split[col] !== subset) continue;
      const target = task.target(img, names);
      if (target !== null) items.push({ image_id: img.id, file: img.file, target });
    }
    if (items.length === 0) continue;
    const n = Math.min(MAX_VALIDATION_IMAGES, items.length);
    const picked = Array.from({ length: n }, (_, i) => items[Math.floor((i * items.length) / n)]);
    const images: ExportImage[] = [];
    for (const c of picked) {
      try {
        images.push({ id: c.image_id, path: await store.datasetFilePath(projectId, ds.id, c.file), target: c.target });
      } catch (e) {
        // A missing file is left out; the rest still validate the export.
        if (!isAppError(e)) throw e;
      }
    }
    if (images.length > 0) return { subset, images };
  }
  throw new AppError('BAD_INPUT', `${whole ? `the validation dataset '${ds.name}'` : `the split '${cfg.split.name}'`} has no labelled images of the run's ${names.length === 1 ? 'output' : 'outputs'} (${names.join(', ')}) to validate the export on`);
}
