import { hasTask, registerTask } from '../../src/tasks/index.ts';
import multilabel from '../../src/tasks/multilabel/index.ts';
import regression from '../../src/tasks/regression/index.ts';

/**
 * Makes sure the multi-label and regression tasks are registered in this thread. The built-in
 * registry (src/tasks/index.ts) registers them once its lines are there; until then a test
 * registers them itself, and afterwards this does nothing.
 */
export function ensureTasks(): void {
  for (const t of [multilabel, regression]) if (!hasTask(t.name)) registerTask(t);
}
