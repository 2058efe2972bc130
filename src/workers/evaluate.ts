import { isAppError } from '../kernel/errors.ts';
import { runTaskEvaluation, selectItems, type EvalItem, type EvalProblem } from '../evaluation/run-evaluation.ts';
import { runTaskOf } from '../tasks/index.ts';
import type { WorkerTask } from '../jobs/pool.ts';
import { writeAggregate, writeResults, type EvaluationConfig } from '../storage/evaluation.ts';
import type { RunRef } from '../storage/runs.ts';
import { loadRunModel } from './run-model.ts';
import { cancelledFailure, runWorkerTask, type WorkerFailure, type WorkerLog, type WorkerScope } from './worker-task.ts';

/**
 * Thread entry point of an evaluation: rebuilds the run's model from its config.json (the same
 * architecture, seed and outputs), loads the checkpoint's parameters, evaluates the chosen subsets
 * with the run's task (its targets, post-processing, aggregate and records) and writes
 * aggregate.json and results.jsonl, checked with the task's schemas, into the staging folder. The main thread
 * records the outcome in evaluation.json and swaps the folder in.
 */

export interface EvaluateWorkerPayload {
  workspace: string;
  project_id: string;
  experiment_id: string;
  config: EvaluationConfig;
  threads: number;
}

export type EvaluateWorkerMessage = { type: 'progress'; done: number; total: number } | WorkerLog;

/** A failure comes back as data (see worker-task.ts). */
export type EvaluateWorkerResult = { ok: true; evaluated: number; problems: EvalProblem[] } | WorkerFailure;

const PROGRESS_EVERY_MS = 200;

export default async function evaluateWorker(task: WorkerTask<EvaluateWorkerPayload>): Promise<EvaluateWorkerResult> {
  const { payload } = task;
  const cfg = payload.config;
  const ref = { projectId: payload.project_id, experimentId: payload.experiment_id };
  const r: RunRef = { ...ref, runId: cfg.run_id };
  return runWorkerTask(task, { cancelled: cancelledFailure }, async ({ signal, post, log, store }: WorkerScope<EvaluateWorkerMessage>) => {
    const { config: runConfig, spec, params } = await loadRunModel(store, r, cfg.checkpoint);

    const ds = await store.getDataset(payload.project_id, cfg.dataset_id);
    const run = runTaskOf(runConfig);
    const sel = selectItems(ds, cfg.whole_dataset ? null : cfg.split_name, cfg.subsets, run);
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
    log(`evaluating ${items.length} images of ${cfg.whole_dataset ? `the dataset ${cfg.dataset_id}` : cfg.subsets.join('+')} with ${cfg.model} (${cfg.checkpoint} checkpoint of ${cfg.run_id}${cfg.tta ? ', flip TTA' : ''})`);

    let last = 0;
    const out = await runTaskEvaluation({
      model: spec.model,
      params,
      task: run,
      items,
      size: runConfig.model.input_size,
      normalization: runConfig.augmentation.normalize,
      batchSize: cfg.batch_size,
      tta: cfg.tta,
      threads: payload.threads,
      signal,
      onProgress(done, total) {
        const now = Date.now();
        if (now - last >= PROGRESS_EVERY_MS || done === total) {
          last = now;
          post({ type: 'progress', done, total });
        }
      },
    });
    problems.push(...out.problems);
    await writeResults(store, ref, 'staging', out.items, run.task.itemSchema);
    await writeAggregate(store, ref, 'staging', out.aggregate, run.task.aggregateSchema);
    if (problems.length > 0) log(`${problems.length} images could not be evaluated`);
    return { ok: true as const, evaluated: out.items.length, problems };
  });
}
