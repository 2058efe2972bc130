import multipart from '@fastify/multipart';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../kernel/errors.ts';
import type { Workspace } from '../storage/workspace.ts';
import { ok } from '../http/envelope.ts';
import { parse, parseParams } from './parse.ts';
import { ProjectParams, UploadFields } from './schemas.ts';

/** A zip starts with a local file header, or is empty (end-of-central-directory only). */
const ZIP_MAGIC = [Buffer.from('PK\x03\x04', 'latin1'), Buffer.from('PK\x05\x06', 'latin1')];

/**
 * POST /api/projects/:project_id/datasets/upload — multipart with one `file` (a zip of an
 * ImageNet-style folder) and the fields `name`, `task`. Every limit is explicit: one file of at
 * most the configured size, few and small fields, few parts (thousands of parts end the request
 * early with TOO_MANY_PARTS). The file streams to a workspace temp file, which the import deletes.
 */
export default async function uploadRoutes(app: FastifyInstance): Promise<void> {
  const { settings, store, projects, imports } = app.studio;

  await app.register(multipart, {
    limits: {
      fileSize: settings.maxUploadBytes,
      files: 1,
      fields: 8,
      parts: 16,
      fieldNameSize: 64,
      fieldSize: 4096,
      headerPairs: 32,
    },
    throwFileSizeLimit: true,
  });

  app.post('/projects/:project_id/datasets/upload', async (req, reply) => {
    const { project_id } = parseParams(ProjectParams, req.params);
    if (!req.isMultipart()) throw new AppError('UNSUPPORTED_MEDIA', 'expected multipart/form-data with a zip in `file`');
    // Before streaming what may be gigabytes into a temp file.
    await projects.get(project_id);
    const fields: Record<string, string> = Object.create(null);
    let tempPath: string | undefined;
    try {
      for await (const part of req.parts()) {
        if (part.type === 'file') {
          if (part.fieldname !== 'file' || tempPath !== undefined) {
            part.file.resume();
            throw new AppError('VALIDATION_ERROR', `unexpected file field '${part.fieldname.slice(0, 64)}'`);
          }
          tempPath = await store.writeTempFrom(part.file, 'upload');
          if (part.file.truncated) throw new AppError('PAYLOAD_TOO_LARGE', 'the upload exceeds the size limit');
        } else {
          if (typeof part.value !== 'string') throw new AppError('VALIDATION_ERROR', `field '${part.fieldname}' must be text`);
          fields[part.fieldname] = part.value;
        }
      }
      if (tempPath === undefined) throw new AppError('VALIDATION_ERROR', 'missing the zip in field `file`');
      const body = parse(UploadFields, { ...fields }, 'form fields');
      await checkZip(store, tempPath);
      const started = await imports.start(project_id, { name: body.name, task: body.task, source: { kind: 'zip', path: tempPath } });
      tempPath = undefined; // the import owns it now
      reply.code(202);
      return ok(started);
    } finally {
      if (tempPath !== undefined) await store.removeTemp(tempPath);
    }
  });
}

async function checkZip(store: Workspace, file: string): Promise<void> {
  const head = await store.readHead(file, 4, 'uploaded archive');
  if (head.length < 4 || !ZIP_MAGIC.some((m) => m.equals(head))) {
    throw new AppError('BAD_ARCHIVE', 'the upload is not a zip archive');
  }
}
