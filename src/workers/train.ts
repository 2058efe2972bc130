import { createHash } from 'node:crypto';
import os from 'node:os';
import { AppError } from '../kernel/errors.ts';
import type { WorkerTask } from '../jobs/pool.ts';
import { countParams, trainableSet, type ModelSpec, type Trainable } from '../models/index.ts';
import type { DatasetFile } from '../schemas/dataset.ts';
import { BN_RECALIBRATION_AUTO_MAX, type Best, type ExperimentSettings, type MetricsLine, type OtherDatasetUse, type RunConfigFile } from '../schemas/experiment.ts';
import { otherDatasetSelection, type EvalTask } from '../evaluation/run-evaluation.ts';
import { readModelRecord } from '../storage/models.ts';
import {
  appendMetrics,
  modifyRun,
  readCheckpoint,
  readRunConfig,
  truncateMetrics,
  writeCheckpoint,
  writeRunConfig,
  type RunRef,
} from '../storage/runs.ts';
import type { Workspace } from '../storage/workspace.ts';
import { decodeCheckpoint, encodeCheckpoint } from '../models/checkpoint.ts';
import { batchCount, type LoaderItem } from '../training/data/loader.ts';
import { LoaderThread, type PrefillReport } from '../training/data/loader-thread.ts';
import { buildModel } from '../training/model-from-config.ts';
import { resumePointOf, runTrainingLoop, type EpochBatches, type LoopTask, type ResumePoint } from '../training/run-loop.ts';
import { getTask, runTaskOf, type AnyTask } from '../tasks/index.ts';
import { backboneReader } from './run-model.ts';
import { startFromWeights } from './pretrained.ts';
import { runWorkerTask, type WorkerFailure, type WorkerLog, type WorkerScope } from './worker-task.ts';

/**
 * Thread entry point of a training run: reads the dataset and model through src/storage, writes
 * config.json (a fresh run) or finds the last valid checkpoint (a resumed one), and runs the
 * epoch loop, whose metrics lines, checkpoints and run.json progress it writes through storage
 * itself, so the main thread only relays small messages.
 */

export interface TrainWorkerPayload {
  workspace: string;
  project_id: string;
  experiment_id: string;
  run_id: string;
  /** Continue from the last valid checkpoint (and the run's own config.json, when written). */
  resume: boolean;
  /** The experiment's settings when the run was queued (a resumed run prefers its config.json). */
  settings: ExperimentSettings;
  threads: number;
}

export type TrainWorkerMessage =
  | { type: 'progress'; fraction: number; detail: Record<string, number> }
  | { type: 'metric'; line: MetricsLine }
  | WorkerLog;

/** A failure comes back as data (see worker-task.ts); a cancelled run is not one: it stopped as asked. */
export type TrainWorkerResult = { ok: true; epochs_done: number; stop_reason: string | null; best: Best | null } | WorkerFailure;

interface Prepared {
  spec: ModelSpec;
  trainable: string[];
  train: LoaderItem[];
  /** The split's `val` subset, or every usable image of the run's validation dataset. */
  val: LoaderItem[];
  /** The task's targets of `train` and `val`, item for item. */
  trainTargets: number[][];
  valTargets: number[][];
  task: AnyTask;
  state: unknown;
  config: RunConfigFile;
}

/** What the epoch loop asks of the run's task, over this run's items and fitted state. */
function loopTask(p: Prepared, h: RunConfigFile['hyperparameters']): LoopTask {
  const k = p.config.dataset.classes.length;
  const { task, state } = p;
  return {
    loss: task.loss(h, state, k),
    targets: (b, subset) => b.indices.map((i) => (subset === 'train' ? p.trainTargets : p.valTargets)[i]),
    collate: (targets) => task.collate(targets, state, k),
    scorer: () => task.scorer(state, k),
    bestMetric: task.bestMetric,
    higherIsBetter: (m) => (m === 'val_loss' ? false : (task.epochMetrics.find((e) => e.key === m)?.higher_is_better ?? true)),
  };
}

export default async function trainWorker(task: WorkerTask<TrainWorkerPayload>): Promise<TrainWorkerResult> {
  const { payload } = task;
  lowerPriority();
  const r: RunRef = { projectId: payload.project_id, experimentId: payload.experiment_id, runId: payload.run_id };
  return runWorkerTask(task, { cancelled: (): TrainWorkerResult => ({ ok: true, epochs_done: 0, stop_reason: 'cancelled', best: null }) }, async ({ signal, post, log, store }: WorkerScope<TrainWorkerMessage>) => {
    let loader: LoaderThread | null = null;
    try {
      const existing = payload.resume ? await readRunConfig(store, r) : null;
      const p = await prepare(store, payload, existing);
      // Pretrained weights first; a resumed run's checkpoint then replaces them.
      if (p.config.model.weights_id !== undefined && p.config.model.architecture !== undefined) {
        log(await startFromWeights(store, p.spec, p.config.model.architecture, p.config.model.weights_id));
      }
      if (!existing) await writeRunConfig(store, r, p.config);
      const cfg = p.config;
      const h = cfg.hyperparameters;
      const resume = payload.resume ? await findResumePoint(store, r, log) : undefined;
      await truncateMetrics(store, r, resume?.epoch ?? 0);
      await modifyRun(store, r, (run) => ({
        ...run,
        epochs: h.epochs,
        epochs_done: resume?.epoch ?? 0,
        best: resume?.best ?? null,
        checkpoints: run.checkpoints.filter((c) => resume !== undefined && c.epoch <= resume.epoch),
      }));
      // The run is running from here (its badge turns so now, not at the first step, seconds later).
      post({ type: 'progress', fraction: (resume?.epoch ?? 0) / h.epochs, detail: { epoch: resume?.epoch ?? 0, epochs: h.epochs } });
      log(
        resume
          ? `resuming from epoch ${resume.epoch} of ${h.epochs}`
          : `training ${cfg.model.name} (${cfg.model.trainable_param_count.toLocaleString('en')} trainable parameters) on ${p.train.length} images, validating on ${p.val.length}${cfg.val_dataset ? ` of the dataset '${cfg.val_dataset.name}'` : ''}`,
      );
      for (const line of otherDatasetLines(cfg)) log(line);

      const size = cfg.model.input_size;
      const norm = cfg.augmentation.normalize;
      const dropLast = p.train.length >= h.batch_size;
      const onWarning = (w: { id: string; message: string }): void => log(`skipped image ${w.id}: ${w.message}`);
      // Decoding and augmenting run on their own thread: onnxruntime's run() holds this one for the
      // whole step, so a loader here would stall for every step (bench/loader.ts measures it).
      loader = LoaderThread.start();
      const batches = loader;
      const transform = { kind: 'train', size, augmentation: cfg.augmentation } as const;
      const logPrefill = (r: PrefillReport): void => {
        if (r.decoded > 0) log(`decoded ${r.decoded} training images into memory in ${r.seconds.toFixed(1)} s (${r.cachedImages} kept, ${Math.round(r.cachedBytes / 2 ** 20)} MiB)`);
      };
      // The training images are decoded while the trainer is built (the first epoch waits for it);
      // a failure here is the first epoch's to report.
      loader.prefill({ items: p.train, transform }).then(logPrefill, () => undefined);
      const train: EpochBatches = (epoch, signal) =>
        batches.batches({
          items: p.train,
          batchSize: h.batch_size,
          transform,
          normalization: norm,
          seed: h.seed,
          epoch,
          shuffle: true,
          dropLast,
          signal,
          onWarning,
          onPrefilled: logPrefill,
        });
      const val: EpochBatches | null = p.val.length
        ? (_epoch, signal) =>
            batches.batches({ items: p.val, batchSize: h.batch_size, transform: { kind: 'eval', size }, normalization: norm, seed: h.seed, epoch: 0, shuffle: false, dropLast: false, signal, onWarning })
        : null;

      const recal = cfg.bn_recalibration?.enabled ? recalibrationItems(p.train) : [];
      const recalibrate: EpochBatches | undefined = recal.length
        ? (_epoch, signal) =>
            batches.batches({ items: recal, batchSize: h.batch_size, transform: { kind: 'eval', size }, normalization: norm, seed: h.seed, epoch: 0, shuffle: false, dropLast: false, signal, onWarning })
        : undefined;
      const result = await runTrainingLoop(
        {
          model: p.spec.model,
          trainable: p.trainable,
          hyperparameters: h,
          classWeights: cfg.class_weights,
          task: loopTask(p, h),
          ...(recalibrate ? { recalibrate } : {}),
          train,
          stepsPerEpoch: cfg.steps_per_epoch,
          val,
          threads: payload.threads,
          signal,
          resume,
          metadata: { run_id: payload.run_id, model: cfg.model.name },
          // Runs from before fine-tuning settings existed train everything alike.
          fineTune: { head: p.spec.head, freezeEpochs: h.freeze_backbone_epochs ?? 0, backboneLrMultiplier: h.backbone_lr_multiplier ?? 1 },
          sink: {
            async checkpoint(name, content, at) {
              const info = await writeCheckpoint(store, r, name, encodeCheckpoint(content), at);
              await modifyRun(store, r, (run) => ({
                ...run,
                epochs_done: at.epoch,
                best: at.best,
                checkpoints: [...run.checkpoints.filter((c) => c.name !== name), info],
              }));
            },
            async metrics(line) {
              await appendMetrics(store, r, line);
              post({ type: 'metric', line });
            },
            progress(pr) {
              const { fraction, ...detail } = pr;
              post({ type: 'progress', fraction, detail });
            },
            log,
          },
        },
        size,
      );
      return { ok: true as const, epochs_done: result.epochsDone, stop_reason: result.stopReason, best: result.best };
    } finally {
      await loader?.close();
    }
  });
}

/**
 * The main thread answers requests while this one trains. On Linux a nice value is per thread, and
 * the onnxruntime threads the trainer starts inherit it: training still gets every idle cycle, but
 * a request no longer waits behind a step for its time slice.
 */
const TRAIN_NICE = 10;
function lowerPriority(): void {
  try {
    if (os.getPriority(0) < TRAIN_NICE) os.setPriority(0, TRAIN_NICE);
  } catch {
    // Not permitted or not supported here: training runs at normal priority.
  }
}

/** The dataset's items for the split, the model, and the resolved config (config.json's content). */
async function prepare(store: Workspace, payload: TrainWorkerPayload, existing: RunConfigFile | null): Promise<Prepared> {
  const s = existing ?? payload.settings;
  const datasetId = existing ? existing.dataset.id : payload.settings.dataset_id;
  const splitName = existing ? existing.split.name : payload.settings.split_name;
  const ds = await store.getDataset(payload.project_id, datasetId);
  const col = ds.split_names.indexOf(splitName);
  if (col < 0) throw new AppError('VALIDATION_ERROR', `the dataset no longer has the split '${splitName}'`);
  const task = getTask(existing ? existing.task : payload.settings.task);
  if (ds.task !== task.name) throw new AppError('VALIDATION_ERROR', `the dataset is now a ${ds.task} dataset, the run trains ${task.name}`);
  const classes = existing ? existing.dataset.classes : task.outputNames(ds);
  if (classes.length === 0) throw new AppError('VALIDATION_ERROR', `the dataset has nothing for the model to output (no classes or targets): the ${task.name} task needs some to train`);
  // A validation dataset replaces the split's `val` subset (whose images are then counted, not used).
  const valId = existing ? (existing.val_dataset?.id ?? null) : payload.settings.val_dataset_id;
  const testId = existing ? (existing.test_dataset?.id ?? null) : payload.settings.test_dataset_id;
  const train: LoaderItem[] = [];
  const val: LoaderItem[] = [];
  const trainTargets: number[][] = [];
  const valTargets: number[][] = [];
  let splitVal = 0;
  for (const img of ds.images) {
    const subset = img.split[col];
    if (subset !== 'train' && subset !== 'val') continue;
    const target = task.target(img, classes);
    if (target === null) continue;
    if (subset === 'val') splitVal += 1;
    if (subset === 'val' && valId !== null) continue;
    // The run loop reads every task's targets by item index (loopTask), not the loader's class index.
    const item: LoaderItem = { path: await store.datasetFilePath(payload.project_id, datasetId, img.file), labelIndex: 0, id: img.id, width: img.width, height: img.height };
    (subset === 'train' ? train : val).push(item);
    (subset === 'train' ? trainTargets : valTargets).push(target);
  }
  if (train.length === 0) throw new AppError('VALIDATION_ERROR', `split '${splitName}' has no labelled training images`);
  const run: EvalTask = { task, state: null, names: classes };
  const valDataset = valId === null ? null : await otherDataset(store, payload.project_id, valId, run, 'validation', async (other, items) => {
    const byId = new Map(other.images.map((img) => [img.id, img]));
    for (const c of items) {
      const img = byId.get(c.image_id);
      val.push({ path: await store.datasetFilePath(payload.project_id, other.id, c.file), labelIndex: 0, id: c.image_id, width: img?.width, height: img?.height });
      valTargets.push(c.target ?? []);
    }
  });
  const testDataset = testId === null ? null : await otherDataset(store, payload.project_id, testId, run, 'test');

  const model = s.model;
  const h = s.hyperparameters;
  const numClasses = classes.length;
  const name = model.backbone_id !== undefined ? (await readModelRecord(store, model.backbone_id)).name : (model.architecture ?? '');
  const spec = await buildModel(model, { numClasses, seed: h.seed, name, ...(task.head ? { head: task.head } : {}) }, backboneReader(store));
  const t = model.trainable;
  const which: Trainable = typeof t === 'object' ? { lastBlocks: t.last_blocks } : t;
  const trainable = trainableSet(spec, which);

  const prepared = { spec, trainable, train, val, trainTargets, valTargets, task };
  if (existing) {
    return { ...prepared, state: runTaskOf(existing).state, config: existing };
  }
  const state = task.stateSchema.parse(task.fitState(trainTargets, classes, h));
  const classWeights = isClassWeights(state) ? state.class_weights : null;
  const config: RunConfigFile = {
    schema_version: 1,
    run_id: payload.run_id,
    experiment_id: payload.experiment_id,
    project_id: payload.project_id,
    task: payload.settings.task,
    dataset: { id: ds.id, name: ds.name, hash: datasetHash(ds), classes },
    split: { name: splitName, hash: splitHash(ds, col), train_count: train.length, val_count: splitVal },
    val_dataset: valDataset,
    test_dataset: testDataset,
    model: {
      ...model,
      name,
      num_classes: numClasses,
      param_count: countParams(spec),
      trainable_param_count: countParams(spec, trainable),
    },
    hyperparameters: h,
    augmentation: payload.settings.augmentation,
    class_weights: classWeights,
    task_state: state,
    bn_recalibration: bnRecalibration(spec, h.bn_recalibration, train.length),
    steps_per_epoch: batchCount(train.length, h.batch_size, train.length >= h.batch_size),
    created_at: new Date().toISOString(),
  };
  return { ...prepared, state, config };
}

/**
 * A second dataset the run validates or tests on, checked as evaluation checks another dataset
 * (ready, the run's task and targets, some image of the run's outputs): what config.json records
 * of it. `take` receives its usable images (the validation set).
 */
async function otherDataset(
  store: Workspace,
  projectId: string,
  id: string,
  run: EvalTask,
  role: 'validation' | 'test',
  take?: (ds: DatasetFile, items: ReturnType<typeof otherDatasetSelection>['items']) => Promise<void>,
): Promise<OtherDatasetUse> {
  const other = await store.readDataset(projectId, id);
  if (!other) throw new AppError('VALIDATION_ERROR', `the ${role} dataset '${id}' no longer exists`);
  const field = role === 'validation' ? 'val_dataset_id' : 'test_dataset_id';
  const sel = otherDatasetSelection(other, run, { field, use: role === 'validation' ? 'used for validation' : 'used as the test set', owner: 'the run' });
  await take?.(other, sel.items);
  return { id: other.id, name: other.name, hash: datasetHash(other), images: sel.counts.test, skipped: sel.problems.length };
}

/** What the run's log says of its validation and test datasets. */
function otherDatasetLines(cfg: RunConfigFile): string[] {
  const lines: string[] = [];
  const skipped = (n: number) => (n > 0 ? `; ${n} image${n === 1 ? '' : 's'} with labels the run does not know skipped` : '');
  if (cfg.val_dataset) {
    const v = cfg.val_dataset;
    lines.push(`validation set: all ${v.images} usable images of the dataset '${v.name}'${skipped(v.skipped)}; the split's ${cfg.split.val_count} val images are not used for validation`);
  }
  if (cfg.test_dataset) {
    const t = cfg.test_dataset;
    lines.push(`test set: ${t.images} usable images of the dataset '${t.name}' (evaluating "test" evaluates it)${skipped(t.skipped)}`);
  }
  return lines;
}

/** Whether the run recalibrates batch norm (the model must have some) and over how many training images. */
function bnRecalibration(spec: ModelSpec, choice: RunConfigFile['hyperparameters']['bn_recalibration'], trainCount: number): { enabled: boolean; images: number } {
  const hasBn = spec.model.graph.nodes.some((n) => n.opType === 'BatchNormalization');
  const enabled = hasBn && (choice === 'on' || (choice === 'auto' && trainCount <= BN_RECALIBRATION_AUTO_MAX));
  return { enabled, images: enabled ? Math.min(trainCount, BN_RECALIBRATION_AUTO_MAX) : 0 };
}

/** The training images a recalibration pass reads: all of them, or an even spread of at most BN_RECALIBRATION_AUTO_MAX. */
function recalibrationItems(train: LoaderItem[]): LoaderItem[] {
  if (train.length <= BN_RECALIBRATION_AUTO_MAX) return train;
  const step = train.length / BN_RECALIBRATION_AUTO_MAX;
  return Array.from({ length: BN_RECALIBRATION_AUTO_MAX }, (_, i) => train[Math.floor(i * step)]);
}

function isClassWeights(state: unknown): state is { class_weights: number[] | null } {
  return typeof state === 'object' && state !== null && 'class_weights' in state;
}

/** The images and labels as this run read them: ids, content hashes, labels, in stored order. */
function datasetHash(ds: DatasetFile): string {
  const h = createHash('sha256');
  // Classification's lines are as they always were, so an old run's hash still matches its dataset.
  for (const img of ds.images) {
    const extra = (img.labels ? `\t${img.labels.join('\u001f')}` : '') + (img.targets ? `\t${img.targets.join(',')}` : '');
    h.update(`${img.id}\t${img.hash}\t${img.label ?? ''}${extra}\n`);
  }
  return h.digest('hex');
}

function splitHash(ds: DatasetFile, col: number): string {
  const h = createHash('sha256');
  for (const img of ds.images) h.update(`${img.id}\t${img.split[col]}\n`);
  return h.digest('hex');
}

/** The last checkpoint that decodes (checksum included): `last`, else `best`; none → from scratch. */
async function findResumePoint(store: Workspace, r: RunRef, log: (m: string) => void): Promise<ResumePoint | undefined> {
  for (const name of ['last', 'best'] as const) {
    const bytes = await readCheckpoint(store, r, name);
    if (!bytes) continue;
    try {
      return resumePointOf(decodeCheckpoint(bytes));
    } catch (e) {
      log(`checkpoint '${name}' is unusable (${e instanceof Error ? e.message : String(e)})`);
    }
  }
  log('no valid checkpoint: starting from the beginning');
  return undefined;
}
