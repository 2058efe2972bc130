import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ok } from '../http/envelope.ts';
import { parse, parseParams } from './parse.ts';
import { ImageQuerySchema, ImageUpdateSchema } from '../schemas/index.ts';
import { DatasetParams, ImageParams } from './schemas.ts';
import { sendImageFile } from './serve-image.ts';

const FileQuery = z.strictObject({ original: z.enum(['true', 'false', '1', '0']).optional() });

/** Images of a dataset: the paginated grid, thumbnails, files, relabel, delete. */
export default async function imagesRoutes(app: FastifyInstance): Promise<void> {
  const { datasets } = app.studio;
  const base = '/projects/:project_id/datasets/:dataset_id/images';

  app.get(base, async (req) => {
    const { project_id, dataset_id } = parseParams(DatasetParams, req.params);
    const query = parse(ImageQuerySchema, req.query, 'query');
    return ok(await datasets.listImages(project_id, dataset_id, query));
  });

  app.get(`${base}/:image_id`, async (req) => {
    const { project_id, dataset_id, image_id } = parseParams(ImageParams, req.params);
    return ok(await datasets.getImage(project_id, dataset_id, image_id));
  });

  app.get(`${base}/:image_id/thumbnail`, async (req, reply) => {
    const { project_id, dataset_id, image_id } = parseParams(ImageParams, req.params);
    const file = await datasets.thumbnailPath(project_id, dataset_id, image_id);
    return sendImageFile(reply, file, { browserSafe: false });
  });

  app.get(`${base}/:image_id/file`, async (req, reply) => {
    const { project_id, dataset_id, image_id } = parseParams(ImageParams, req.params);
    const { original } = parse(FileQuery, req.query, 'query');
    const file = await datasets.imageFilePath(project_id, dataset_id, image_id);
    return sendImageFile(reply, file, { browserSafe: !(original === 'true' || original === '1') });
  });

  app.patch(`${base}/:image_id`, async (req) => {
    const { project_id, dataset_id, image_id } = parseParams(ImageParams, req.params);
    const body = parse(ImageUpdateSchema, req.body, 'body');
    return ok(await datasets.relabelImage(project_id, dataset_id, image_id, body));
  });

  app.delete(`${base}/:image_id`, async (req) => {
    const { project_id, dataset_id, image_id } = parseParams(ImageParams, req.params);
    await datasets.deleteImage(project_id, dataset_id, image_id);
    return ok({ id: image_id, deleted: true });
  });
}
