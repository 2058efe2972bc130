import multipart from '@fastify/multipart';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AppError } from '../kernel/errors.ts';
import { PREDICT_MAX_IMAGES } from '../core/exports.ts';
import { ExportIdSchema, VariantNameSchema } from '../storage/exports.ts';
import { ok } from '../http/envelope.ts';
import { parse, parseParams } from './parse.ts';
import { ExperimentParams } from './experiments.ts';

const ExportParams = ExperimentParams.extend({ export_id: ExportIdSchema });
const FileParams = ExportParams.extend({ name: z.string().min(1).max(64) });
const PredictQuery = z.strictObject({ variant: VariantNameSchema.optional() });

/** One image to try a model on: far above any photo a person drops, far below a memory problem. */
export const PREDICT_MAX_BYTES = 16 * 1024 * 1024;

/**
 * /api/projects/:project_id/experiments/:experiment_id/exports — start (202 with the export and its
 * job), list, get, the package zip, one file of it, predict (multipart `image`, one or several
 * files, `?variant=`), delete.
 */
export default async function exportsRoutes(app: FastifyInstance): Promise<void> {
  const { exports } = app.studio;
  const base = '/projects/:project_id/experiments/:experiment_id/exports';
  const one = `${base}/:export_id`;

  // This plugin's own multipart parser, with the limits of predict (upload.ts has the zip's).
  await app.register(multipart, {
    limits: {
      fileSize: PREDICT_MAX_BYTES,
      files: PREDICT_MAX_IMAGES,
      fields: 4,
      parts: PREDICT_MAX_IMAGES + 4,
      fieldNameSize: 64,
      fieldSize: 256,
      headerPairs: 32,
    },
    throwFileSizeLimit: true,
  });

  app.post(base, async (req, reply) => {
    const { project_id, experiment_id } = parseParams(ExperimentParams, req.params);
    const started = await exports.start(project_id, experiment_id, req.body);
    reply.code(202);
    return ok(started);
  });

  app.get(base, async (req) => {
    const { project_id, experiment_id } = parseParams(ExperimentParams, req.params);
    return ok(await exports.list(project_id, experiment_id));
  });

  app.get(one, async (req) => {
    const { project_id, experiment_id, export_id } = parseParams(ExportParams, req.params);
    return ok(await exports.get(project_id, experiment_id, export_id));
  });

  app.delete(one, async (req) => {
    const { project_id, experiment_id, export_id } = parseParams(ExportParams, req.params);
    return ok(await exports.remove(project_id, experiment_id, export_id));
  });

  app.get(`${one}/download`, async (req, reply) => {
    const { project_id, experiment_id, export_id } = parseParams(ExportParams, req.params);
    const zip = await exports.download(project_id, experiment_id, export_id);
    reply
      .type('application/zip')
      .header('content-length', zip.size)
      .header('content-disposition', `attachment; filename="${zip.filename}"`);
    return reply.send(zip.stream);
  });

  app.get(`${one}/files/:name`, async (req, reply) => {
    const { project_id, experiment_id, export_id, name } = parseParams(FileParams, req.params);
    const f = await exports.file(project_id, experiment_id, export_id, name);
    reply
      .type(f.mime)
      .header('content-length', f.size)
      .header('X-Content-Type-Options', 'nosniff')
      .header('Content-Security-Policy', "default-src 'none'; sandbox")
      // `name` is one of the package's fixed file names (the core refuses any other).
      .header('content-disposition', `${name.endsWith('.onnx') || name.endsWith('.zip') ? 'attachment' : 'inline'}; filename="${name}"`);
    return reply.send(f.stream);
  });

  app.post(`${one}/predict`, async (req) => {
    const { project_id, experiment_id, export_id } = parseParams(ExportParams, req.params);
    const query = parse(PredictQuery, req.query, 'query');
    if (!req.isMultipart()) throw new AppError('UNSUPPORTED_MEDIA', 'expected multipart/form-data with the image(s) in `image`');
    // Before reading the images: an export that does not exist answers 404 at once.
    await exports.get(project_id, experiment_id, export_id);
    const images: Buffer[] = [];
    let variant = query.variant;
    for await (const part of req.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== 'image') {
          part.file.resume();
          throw new AppError('VALIDATION_ERROR', `unexpected file field '${part.fieldname.slice(0, 64)}' (send images as \`image\`)`);
        }
        const bytes = await part.toBuffer();
        if (part.file.truncated) throw new AppError('PAYLOAD_TOO_LARGE', `an image exceeds ${PREDICT_MAX_BYTES} bytes`);
        images.push(bytes);
      } else if (part.fieldname === 'variant') {
        variant = parse(VariantNameSchema, part.value, 'field variant');
      } else {
        throw new AppError('VALIDATION_ERROR', `unexpected field '${part.fieldname.slice(0, 64)}'`);
      }
    }
    if (images.length === 0) throw new AppError('VALIDATION_ERROR', 'missing the image in field `image`');
    return ok(await exports.predict(project_id, experiment_id, export_id, { images, ...(variant ? { variant } : {}) }));
  });
}
