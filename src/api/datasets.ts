import type { FastifyInstance } from 'fastify';
import { ok } from '../http/envelope.ts';
import { parse, parseParams } from './parse.ts';
import { DatasetUpdateSchema } from '../schemas/index.ts';
import { CreateDatasetBody, DatasetParams, ProjectParams } from './schemas.ts';

/** /api/projects/:project_id/datasets — import from a server path (202 + job), list, read, rename, delete. */
export default async function datasetsRoutes(app: FastifyInstance): Promise<void> {
  const { datasets, imports } = app.studio;

  app.post('/projects/:project_id/datasets', async (req, reply) => {
    const { project_id } = parseParams(ProjectParams, req.params);
    const body = parse(CreateDatasetBody, req.body, 'body');
    const started = await imports.start(project_id, body);
    reply.code(202);
    return ok(started);
  });

  app.get('/projects/:project_id/datasets', async (req) => {
    const { project_id } = parseParams(ProjectParams, req.params);
    return ok(await datasets.list(project_id));
  });

  app.get('/projects/:project_id/datasets/:dataset_id', async (req) => {
    const { project_id, dataset_id } = parseParams(DatasetParams, req.params);
    return ok(await datasets.get(project_id, dataset_id));
  });

  app.patch('/projects/:project_id/datasets/:dataset_id', async (req) => {
    const { project_id, dataset_id } = parseParams(DatasetParams, req.params);
    const body = parse(DatasetUpdateSchema, req.body, 'body');
    return ok(await datasets.update(project_id, dataset_id, body));
  });

  app.delete('/projects/:project_id/datasets/:dataset_id', async (req) => {
    const { project_id, dataset_id } = parseParams(DatasetParams, req.params);
    // Through imports: an import still writing into the dataset is cancelled first.
    await imports.removeDataset(project_id, dataset_id);
    return ok({ id: dataset_id, deleted: true });
  });
}
