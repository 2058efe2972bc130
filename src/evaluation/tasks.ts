import { z } from 'zod';
import type { RunConfigFile } from '../schemas/experiment.ts';
import { getTask, type AnyTask } from '../tasks/index.ts';
import type { TaskResults } from '../tasks/types.ts';
import type { EvalTask } from './run-evaluation.ts';

/**
 * The evaluation's view of the tasks: a stored evaluation's task (absent = classification, as
 * every evaluation before tasks was), a run's task with its state and output names, and each
 * task's results query and CSV.
 */

/** A stored evaluation's task (absent: classification); an unknown name is NOT_FOUND. */
export function evaluationTask(name: string | undefined): AnyTask {
  return getTask(name ?? 'classification');
}

/** How the task's records are queried and exported. */
export function resultsOf(task: AnyTask): TaskResults {
  return task.results;
}

/** A run's task, fitted state and output names from its config.json (runTaskOf's). */
export function evalTaskOf(cfg: Pick<RunConfigFile, 'task' | 'task_state' | 'class_weights' | 'dataset'>): EvalTask {
  const task = evaluationTask(cfg.task);
  // A run from before tasks stored their state: classification's was its class weights.
  const stored = cfg.task_state ?? { class_weights: cfg.class_weights };
  return { task, state: task.stateSchema.parse(stored), names: [...cfg.dataset.classes] };
}

/** Parses a results query string with the task's schema; failures come back as zod's. */
export function parseResultsQuery(task: AnyTask, raw: unknown): z.ZodSafeParseResult<unknown> {
  return resultsOf(task).querySchema.safeParse(raw ?? {});
}
