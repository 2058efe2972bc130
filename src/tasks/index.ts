import classification from './classification/index.ts';
import multilabel from './multilabel/index.ts';
import regression from './regression/index.ts';
import { registerTask } from './registry.ts';

/**
 * The built-in tasks, one line each (DESIGN §8). Importing this module registers them; the
 * registry's functions are re-exported so callers import one place.
 */
registerTask(classification);
registerTask(multilabel);
registerTask(regression);

export { runTaskOf, type RunTask } from './run.ts';
export { getTask, hasTask, listTasks, registerTask, taskFor, taskInfo } from './registry.ts';
export type { AnyTask, EpochMetricInfo, TaskDefinition, TaskEvaluationPage, TaskInfo } from './types.ts';
