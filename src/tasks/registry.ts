import { notFound, validation } from '../kernel/errors.ts';
import { declareTaskName } from '../schemas/task.ts';
import type { AnyTask, TaskInfo } from './types.ts';

/**
 * The registered tasks, in registration order. `src/tasks/index.ts` registers the built-in ones;
 * a test may register a toy task in-process and see it in every schema and list.
 */
const tasks = new Map<string, AnyTask>();

export function registerTask(task: AnyTask): void {
  if (tasks.has(task.name)) throw new Error(`task '${task.name}' is already registered`);
  if (!task.epochMetrics.some((m) => m.key === task.bestMetric) && task.bestMetric !== 'val_loss') {
    throw new Error(`task '${task.name}': bestMetric '${task.bestMetric}' is not one of its epoch metrics`);
  }
  if (task.losses.length === 0) throw new Error(`task '${task.name}' offers no loss`);
  tasks.set(task.name, task);
  declareTaskName(task.name, task.labelShape);
}

export function listTasks(): AnyTask[] {
  return [...tasks.values()];
}

export function hasTask(name: string): boolean {
  return tasks.has(name);
}

/** The task named; an unknown name is NOT_FOUND (a stored name from a newer build, say). */
export function getTask(name: string): AnyTask {
  const t = tasks.get(name);
  if (!t) throw notFound('task', name);
  return t;
}

/** For request validation: a name that is not a registered task is a VALIDATION_ERROR on `field`. */
export function taskFor(name: string, field = 'task'): AnyTask {
  const t = tasks.get(name);
  if (!t) throw validation(`${field}: '${name}' is not a task this studio can train (${[...tasks.keys()].join(', ')})`);
  return t;
}

export function taskInfo(t: AnyTask): TaskInfo {
  return {
    name: t.name,
    title: t.title,
    description: t.description,
    sources: [...t.sources],
    losses: [...t.losses],
    default_loss: t.losses[0],
    epoch_metrics: t.epochMetrics.map((m) => ({ ...m })),
    evaluation_metrics: [...t.evaluationMetrics],
  };
}
