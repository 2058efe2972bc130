// First: onnxruntime-node's default export for the CommonJS graph piscina loads in a worker thread.
import './train-interop.ts';
import { AppError, isAppError } from '../core/errors.ts';
import { runEvaluation, selectItems, type EvalItem, type EvalProblem } from '../evaluation/run-evaluation.ts';
import type { WorkerControl, WorkerTask } from '../jobs/pool.ts';
import { createModel, importOnnxBytes, type ModelSpec } from '../models/index.ts';
import type { TensorData } from '../onnx/ir.ts';
import { DatasetDoc } from '../schemas/dataset.ts';
import type { RunConfigFile } from '../schemas/experiment.ts';
import { writeAggregate, writeResults, type EvaluationConfig } from '../storage/evaluation.ts';
import { readModelBytes } from '../storage/models.ts';
import { readCheckpoint, readRunConfig, type RunRef } from '../storage/runs.ts';
import { Workspace } from '../storage/workspace.ts';
import { decodeCheckpoint } from '../training/checkpoint.ts';

/**
 * Thread entry point of an evaluation: rebuilds the run's model from its config.json (the same
 * architecture, seed and classes), loads the checkpoint's parameters, evaluates the chosen subsets
 * and writes aggregate.json and results.jsonl into the evaluation's staging folder. The main thread
 * records the outcome in evaluation.json and swaps the folder in.
 */

export interface EvaluateWorkerPayload {
  workspace: string;
  project_id: string;
  experiment_id: string;
  config: EvaluationConfig;
  threads: number;
}

export type EvaluateWorkerMessage = { type: 'progress'; done: number; total: number } | { type: 'log'; message: string };

/** Errors lose their class crossing threads, so a failure comes back as data. */
export type EvaluateWorkerResult =
  | { ok: true; evaluated: number; problems: EvalProblem[] }
  | { ok: false; error: { code: string; message: string } };

const PROGRESS_EVERY_MS = 200;

export default async function evaluateWorker({ payload, port }: WorkerTask<EvaluateWorkerPayload>): Promise<EvaluateWorkerResult> {
  const controller = new AbortController();
  port.on('message', (m: WorkerControl) => {
    if (m.type === 'abort') controller.abort();
  });
  const post = (m: EvaluateWorkerMessage): void => port.postMessage(m);
  const store = new Workspace(payload.workspace);
  const cfg = payload.config;
  const ref = { projectId: payload.project_id, experimentId: payload.experiment_id };
  const r: RunRef = { ...ref, runId: cfg.run_id };
  try {
    const runConfig = await readRunConfig(store, r);
    if (!runConfig) throw new AppError('NOT_FOUND', `run '${cfg.run_id}' has no config.json`);
    const bytes = await readCheckpoint(store, r, cfg.checkpoint);
    if (!bytes) throw new AppError('NOT_FOUND', `checkpoint '${cfg.checkpoint}' of run '${cfg.run_id}' not found`);
    const ckpt = decodeCheckpoint(bytes);
    const spec = await rebuildModel(store, runConfig);
    const params: Record<string, TensorData> = { ...ckpt.params, ...ckpt.bnStats };

    const ds = await store.get(DatasetDoc, store.datasetFile(payload.project_id, cfg.dataset_id), 'dataset', cfg.dataset_id);
    const sel = selectItems(ds, cfg.split_name, cfg.subsets, cfg.classes);
    const problems: EvalProblem[] = [...sel.problems];
    const items: EvalItem[] = [];
    for (const c of sel.items) {
      try {
        items.push({ ...c, path: await store.datasetFilePath(payload.project_id, cfg.dataset_id, c.file) });
      } catch (e) {
        if (!isAppError(e)) throw e;
        problems.push({ image_id: c.image_id, file: c.file, reason: e.code === 'NOT_FOUND' ? 'the image file is missing' : e.message });
      }
    }
    post({ type: 'log', message: `evaluating ${items.length} images of ${cfg.subsets.join('+')} with ${cfg.model} (${cfg.checkpoint} checkpoint of ${cfg.run_id}${cfg.tta ? ', flip TTA' : ''})` });

    let last = 0;
    const out = await runEvaluation({
      model: spec.model,
      params,
      labels: cfg.classes,
      items,
      size: runConfig.model.input_size,
      normalization: runConfig.augmentation.normalize,
      batchSize: cfg.batch_size,
      tta: cfg.tta,
      threads: payload.threads,
      signal: controller.signal,
      onProgress(done, total) {
        const now = Date.now();
        if (now - last >= PROGRESS_EVERY_MS || done === total) {
          last = now;
          post({ type: 'progress', done, total });
        }
      },
    });
    problems.push(...out.problems);
    await writeResults(store, ref, 'staging', out.records);
    await writeAggregate(store, ref, 'staging', out.aggregate);
    if (problems.length > 0) post({ type: 'log', message: `${problems.length} images could not be evaluated` });
    return { ok: true, evaluated: out.records.length, problems };
  } catch (e) {
    if (controller.signal.aborted) return { ok: false, error: { code: 'CANCELLED', message: 'cancelled' } };
    return { ok: false, error: describe(e) };
  } finally {
    port.close();
  }
}

/** The run's model as training built it: the same catalog entry or imported backbone, classes and seed. */
async function rebuildModel(store: Workspace, cfg: RunConfigFile): Promise<ModelSpec> {
  const m = cfg.model;
  if (m.backbone_id !== undefined) {
    return importOnnxBytes(await readModelBytes(store, m.backbone_id), { numClasses: m.num_classes, seed: cfg.hyperparameters.seed, name: m.name });
  }
  return createModel(m.architecture ?? m.name, { numClasses: m.num_classes, inputSize: m.input_size, seed: cfg.hyperparameters.seed });
}

function describe(e: unknown): { code: string; message: string } {
  if (isAppError(e)) return { code: e.code, message: e.message };
  const code = (e as { code?: unknown } | null)?.code;
  return { code: typeof code === 'string' && /^[A-Z_]{3,40}$/.test(code) ? code : 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
}
