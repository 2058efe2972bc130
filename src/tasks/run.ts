import type { RunConfigFile } from '../schemas/experiment.ts';
import { getTask } from './registry.ts';
import type { AnyTask } from './types.ts';

/** A run's task, its fitted state and its output names, as its config.json has them. */
export interface RunTask {
  task: AnyTask;
  state: unknown;
  /** The model's output names (class names or target names), in output order. */
  names: string[];
}

export function runTaskOf(cfg: Pick<RunConfigFile, 'task' | 'task_state' | 'class_weights' | 'dataset'>): RunTask {
  const task = getTask(cfg.task);
  // A run from before tasks stored their state: classification's was its class weights.
  const stored = cfg.task_state ?? { class_weights: cfg.class_weights };
  return { task, state: task.stateSchema.parse(stored), names: [...cfg.dataset.classes] };
}
