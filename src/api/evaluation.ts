import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { ImageIdSchema } from '../schemas/common.ts';
import { ok } from '../http/envelope.ts';
import { parseParams } from './parse.ts';
import { ExperimentParams } from './experiments.ts';

const ResultParams = ExperimentParams.extend({ image_id: ImageIdSchema });

/**
 * /api/projects/:project_id/experiments/:experiment_id/evaluation — start (202 with the job; its
 * progress streams from /api/jobs/:id/events), get (status, task, config, the task's aggregate
 * metrics), per-image results (the task's records, filtered, sorted and paged by the task's query;
 * one image; the task's CSV), the metrics as a JSON download, reset; and
 * …/checkpoints, the checkpoints that can be evaluated.
 */
export default async function evaluationRoutes(app: FastifyInstance): Promise<void> {
  const { evaluation } = app.studio;
  const exp = '/projects/:project_id/experiments/:experiment_id';
  const base = `${exp}/evaluation`;

  app.get(`${exp}/checkpoints`, async (req) => {
    const { project_id, experiment_id } = parseParams(ExperimentParams, req.params);
    return ok(await evaluation.checkpoints(project_id, experiment_id));
  });

  app.post(base, async (req, reply) => {
    const { project_id, experiment_id } = parseParams(ExperimentParams, req.params);
    const started = await evaluation.start(project_id, experiment_id, req.body);
    reply.code(202);
    return ok(started);
  });

  app.get(base, async (req) => {
    const { project_id, experiment_id } = parseParams(ExperimentParams, req.params);
    return ok(await evaluation.get<unknown>(project_id, experiment_id));
  });

  app.delete(base, async (req) => {
    const { project_id, experiment_id } = parseParams(ExperimentParams, req.params);
    return ok(await evaluation.reset(project_id, experiment_id));
  });

  app.get(`${base}/results`, async (req) => {
    const { project_id, experiment_id } = parseParams(ExperimentParams, req.params);
    // The evaluation's task owns the query's schema (src/tasks/<task>/results.ts): the service parses it.
    return ok(await evaluation.results<unknown>(project_id, experiment_id, (req.query ?? {}) as Record<string, unknown>));
  });

  app.get(`${base}/results/:image_id`, async (req) => {
    const { project_id, experiment_id, image_id } = parseParams(ResultParams, req.params);
    return ok(await evaluation.result<unknown>(project_id, experiment_id, image_id));
  });

  // Registered as its own static route: `results.csv` must not be taken for an image id.
  app.get(`${base}/results.csv`, async (req, reply) => {
    const { project_id, experiment_id } = parseParams(ExperimentParams, req.params);
    const lines = await evaluation.resultsCsv(project_id, experiment_id);
    reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="evaluation-${experiment_id}-results.csv"`);
    return reply.send(Readable.from(lines));
  });

  app.get(`${base}/metrics.json`, async (req, reply) => {
    const { project_id, experiment_id } = parseParams(ExperimentParams, req.params);
    const metrics = await evaluation.metrics<unknown>(project_id, experiment_id);
    reply.header('content-disposition', `attachment; filename="evaluation-${experiment_id}-metrics.json"`);
    return metrics;
  });
}
