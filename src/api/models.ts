import multipart from '@fastify/multipart';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AppError } from '../kernel/errors.ts';
import { MAX_MODEL_BYTES } from '../core/models.ts';
import { BackboneIdSchema } from '../schemas/common.ts';
import { DisplayNameSchema } from '../schemas/common.ts';
import { ok } from '../http/envelope.ts';
import { parse, parseParams } from './parse.ts';
import { DownloadWeightsBodySchema, LoadWeightsPathBodySchema, WeightsIdSchema } from '../schemas/weights.ts';

/** A catalog architecture's name in a weights route (the catalog says whether it exists). */
const CatalogParams = z.strictObject({ name: z.string().regex(/^[a-z0-9_]{1,64}$/, 'must be a catalog model name') });
const WeightsParams = z.strictObject({ name: CatalogParams.shape.name, weights_id: WeightsIdSchema });

const ModelParams = z.strictObject({ model_id: BackboneIdSchema });
const ImportPathBody = z.strictObject({
  path: z.string().min(1).max(4096).refine((p) => p.startsWith('/'), 'must be an absolute path').refine((p) => !p.includes('\0'), 'must not contain NUL'),
  name: DisplayNameSchema,
});
const UploadFields = z.strictObject({ name: DisplayNameSchema.optional() });

/**
 * /api/models — the catalog and imported backbones; POST /api/models/import takes an `.onnx`
 * either as multipart (`file`, optional `name`) or as JSON `{path, name}` (a file on the server).
 */
export default async function modelsRoutes(app: FastifyInstance): Promise<void> {
  const { models, settings, weights, store } = app.studio;

  await app.register(multipart, {
    // A model file is held in memory whole: the model limit applies to uploads as to path imports.
    limits: { fileSize: Math.min(settings.maxUploadBytes, MAX_MODEL_BYTES), files: 1, fields: 4, parts: 8, fieldNameSize: 64, fieldSize: 4096, headerPairs: 32 },
    throwFileSizeLimit: true,
  });

  app.get('/models', async () => ok(await models.list()));

  app.get('/models/:model_id', async (req) => {
    const { model_id } = parseParams(ModelParams, req.params);
    return ok(await models.get(model_id));
  });

  app.delete('/models/:model_id', async (req) => {
    const { model_id } = parseParams(ModelParams, req.params);
    await models.remove(model_id);
    return ok({ id: model_id, deleted: true });
  });

  app.post('/models/import', async (req, reply) => {
    if (!req.isMultipart()) {
      const body = parse(ImportPathBody, req.body, 'body');
      reply.code(201);
      return ok(await models.importFromPath(body));
    }
    const fields: Record<string, string> = Object.create(null);
    let file: Buffer | undefined;
    let filename = '';
    for await (const part of req.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== 'file' || file !== undefined) {
          part.file.resume();
          throw new AppError('VALIDATION_ERROR', `unexpected file field '${part.fieldname.slice(0, 64)}'`);
        }
        filename = part.filename;
        file = await part.toBuffer();
      } else {
        if (typeof part.value !== 'string') throw new AppError('VALIDATION_ERROR', `field '${part.fieldname}' must be text`);
        fields[part.fieldname] = part.value;
      }
    }
    if (file === undefined) throw new AppError('VALIDATION_ERROR', 'missing the .onnx file in field `file`');
    const f = parse(UploadFields, { ...fields }, 'form fields');
    const name = f.name ?? (filename.replace(/\.onnx$/i, '').trim() || 'imported model');
    reply.code(201);
    return ok(await models.importUpload(new Uint8Array(file.buffer, file.byteOffset, file.length), name));
  });

  // ── pretrained weights of a catalog architecture (plan/weights.md) ──────────────────────────
  app.get('/models/:name/weights', async (req) => {
    const { name } = parseParams(CatalogParams, req.params);
    return ok(await weights.list(name));
  });

  app.get('/models/:name/weights/downloads', async (req) => {
    const { name } = parseParams(CatalogParams, req.params);
    return ok(await weights.downloads(name));
  });

  app.get('/models/:name/weights/:weights_id', async (req) => {
    const { name, weights_id } = parseParams(WeightsParams, req.params);
    return ok(await weights.get(name, weights_id));
  });

  app.delete('/models/:name/weights/:weights_id', async (req) => {
    const { name, weights_id } = parseParams(WeightsParams, req.params);
    await weights.remove(name, weights_id);
    return ok({ id: weights_id, deleted: true });
  });

  app.post('/models/:name/weights/download', async (req, reply) => {
    const { name } = parseParams(CatalogParams, req.params);
    const body = parse(DownloadWeightsBodySchema, req.body ?? {}, 'body');
    const started = await weights.download(name, body.variant);
    reply.code(202);
    return ok(started);
  });

  app.post('/models/:name/weights', async (req, reply) => {
    const { name } = parseParams(CatalogParams, req.params);
    if (!req.isMultipart()) {
      const body = parse(LoadWeightsPathBodySchema, req.body, 'body');
      const started = await weights.loadPath(name, body.path);
      reply.code(202);
      return ok(started);
    }
    let temp: string | undefined;
    let filename = '';
    try {
      for await (const part of req.parts()) {
        if (part.type !== 'file') continue;
        if (part.fieldname !== 'file' || temp !== undefined) {
          part.file.resume();
          throw new AppError('VALIDATION_ERROR', `unexpected file field '${part.fieldname.slice(0, 64)}'`);
        }
        filename = part.filename;
        temp = await store.writeTempFrom(part.file, 'weights');
      }
    } catch (e) {
      if (temp !== undefined) await store.removeTemp(temp).catch(() => undefined);
      throw e;
    }
    if (temp === undefined) throw new AppError('VALIDATION_ERROR', 'missing the weights file in field `file`');
    const started = await weights.loadUpload(name, { tempPath: temp, fileName: filename });
    reply.code(202);
    return ok(started);
  });
}
