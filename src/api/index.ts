import type { FastifyInstance } from 'fastify';
import { fail } from '../http/envelope.ts';
import { mapError } from '../http/errors.ts';
import projectsRoutes from './projects.ts';
import datasetsRoutes from './datasets.ts';
import uploadRoutes from './upload.ts';
import imagesRoutes from './images.ts';
import splitsRoutes from './splits.ts';
import jobsRoutes from './jobs.ts';
import modelsRoutes from './models.ts';
import experimentsRoutes from './experiments.ts';
import runsRoutes from './runs.ts';
import evaluationRoutes from './evaluation.ts';
import exportsRoutes from './exports.ts';
import tasksRoutes from './tasks.ts';

/**
 * The /api context: every answer is the envelope. Its error and not-found handlers are
 * encapsulated here, so the pages keep their own (HTML) ones.
 */
export default async function apiRoutes(app: FastifyInstance): Promise<void> {
  app.setErrorHandler(async (err, req, reply) => {
    const m = mapError(err);
    if (m.status >= 500) req.log.error(err);
    reply.code(m.status);
    return fail(m.code, m.message);
  });
  app.setNotFoundHandler(async (req, reply) => {
    reply.code(404);
    return fail('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`);
  });

  await app.register(projectsRoutes);
  await app.register(datasetsRoutes);
  await app.register(uploadRoutes);
  await app.register(imagesRoutes);
  await app.register(splitsRoutes);
  await app.register(jobsRoutes);
  await app.register(modelsRoutes);
  await app.register(experimentsRoutes);
  await app.register(tasksRoutes);
  await app.register(runsRoutes);
  await app.register(evaluationRoutes);
  await app.register(exportsRoutes);
}
