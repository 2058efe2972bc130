import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { getTask, listTasks, taskInfo } from '../tasks/index.ts';
import { ok } from '../http/envelope.ts';
import { parseParams } from './parse.ts';

const TaskParams = z.strictObject({ task: z.string().regex(/^[a-z][a-z0-9_]{0,39}$/, 'a task name') });

/** /api/tasks — the registered tasks with their losses, per-epoch metrics, evaluation metrics and dataset sources. */
export default async function tasksRoutes(app: FastifyInstance): Promise<void> {
  app.get('/tasks', async () => ok(listTasks().map(taskInfo)));

  app.get('/tasks/:task', async (req) => {
    const { task } = parseParams(TaskParams, req.params);
    return ok(taskInfo(getTask(task)));
  });
}
