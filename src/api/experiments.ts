import type { FastifyInstance } from 'fastify';
import { deleteExperiment } from '../core/experiments.ts';
import { ExperimentCreateSchema, ExperimentIdSchema, ExperimentPatchSchema } from '../schemas/experiment.ts';
import { ok } from '../http/envelope.ts';
import { parse, parseParams } from './parse.ts';
import { ProjectParams } from './schemas.ts';

export const ExperimentParams = ProjectParams.extend({ experiment_id: ExperimentIdSchema });

/** /api/projects/:project_id/experiments — create (201), list, get, patch, delete. */
export default async function experimentsRoutes(app: FastifyInstance): Promise<void> {
  const { experiments } = app.studio;
  const base = '/projects/:project_id/experiments';

  app.post(base, async (req, reply) => {
    const { project_id } = parseParams(ProjectParams, req.params);
    const body = parse(ExperimentCreateSchema, req.body, 'body');
    const exp = await experiments.create(project_id, body);
    reply.code(201);
    return ok(exp);
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
