import type { FastifyInstance } from 'fastify';
import { ok } from '../http/envelope.ts';
import { parse, parseParams } from './parse.ts';
import { SplitRequestSchema } from '../schemas/index.ts';
import { DatasetParams, SplitParams } from './schemas.ts';

/** /api/projects/:project_id/datasets/:dataset_id/splits — preview, create, list, delete. */
export default async function splitsRoutes(app: FastifyInstance): Promise<void> {
  const { datasets } = app.studio;
  const base = '/projects/:project_id/datasets/:dataset_id/splits';

  app.post(base, async (req, reply) => {
    const { project_id, dataset_id } = parseParams(DatasetParams, req.params);
    const body = parse(SplitRequestSchema, req.body, 'body');
    if (body.preview) return ok(await datasets.previewSplit(project_id, dataset_id, body));
    const split = await datasets.createSplit(project_id, dataset_id, body);
    reply.code(201);
    return ok(split);
  });

  app.get(base, async (req) => {
    const { project_id, dataset_id } = parseParams(DatasetParams, req.params);
    return ok(await datasets.listSplits(project_id, dataset_id));
  });

  app.delete(`${base}/:name`, async (req) => {
    const { project_id, dataset_id, name } = parseParams(SplitParams, req.params);
    await datasets.deleteSplit(project_id, dataset_id, name);
    return ok({ name, deleted: true });
  });
}
