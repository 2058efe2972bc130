import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { createExperiment, deleteExperiment } from '../core/experiments.ts';
import { ClientTokenSchema, ExperimentCreateRequestSchema, ExperimentIdSchema, ExperimentPatchSchema } from '../schemas/experiment.ts';
import { ok } from '../http/envelope.ts';
import { parse, parseParams } from './parse.ts';
import { ProjectParams } from './schemas.ts';

export const ExperimentParams = ProjectParams.extend({ experiment_id: ExperimentIdSchema });
/** The create's optional `Idempotency-Key` header (the body's `client_token` by another name). */
const CreateHeaders = z.object({ 'idempotency-key': ClientTokenSchema.optional() });

/**
 * /api/projects/:project_id/experiments — create (201; with `start_run` its first run too;
 * idempotent with a client token: a repeat answers the first's experiment and run with
 * `Idempotent-Replayed: true`), list, get, patch, delete.
 */
export default async function experimentsRoutes(app: FastifyInstance): Promise<void> {
  const { experiments } = app.studio;
  const base = '/projects/:project_id/experiments';

  app.post(base, async (req, reply) => {
    const { project_id } = parseParams(ProjectParams, req.params);
    const { start_run, ...body } = parse(ExperimentCreateRequestSchema, req.body, 'body');
    const headers = parse(CreateHeaders, req.headers, 'headers');
    const token = headers['idempotency-key'];
    const { experiment, replayed, run } = await createExperiment(app.studio, project_id, body, { start: start_run, ...(token === undefined ? {} : { clientToken: token }) });
    if (replayed) reply.header('Idempotent-Replayed', 'true');
    reply.code(201);
    return ok(start_run ? { ...experiment, run } : experiment);
  });

  app.get(base, async (req) => {
    const { project_id } = parseParams(ProjectParams, req.params);
    return ok(await experiments.list(project_id));
  });

  app.get(`${base}/:experiment_id`, async (req) => {
    const { project_id, experiment_id } = parseParams(ExperimentParams, req.params);
    return ok(await experiments.get(project_id, experiment_id));
  });

  app.patch(`${base}/:experiment_id`, async (req) => {
    const { project_id, experiment_id } = parseParams(ExperimentParams, req.params);
    const body = parse(ExperimentPatchSchema, req.body, 'body');
    return ok(await experiments.update(project_id, experiment_id, body));
  });

  app.delete(`${base}/:experiment_id`, async (req) => {
    const { project_id, experiment_id } = parseParams(ExperimentParams, req.params);
    await deleteExperiment(app.studio, project_id, experiment_id);
    return ok({ id: experiment_id, deleted: true });
  });
}
