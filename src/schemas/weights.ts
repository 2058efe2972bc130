import { z } from 'zod';
import { idOf, JobIdSchema, TimestampSchema, type DocType } from './common.ts';

/** `models/weights/<wt-id>/weights.json`: pretrained weights loaded for a catalog architecture (plan/weights.md). */

export const WeightsIdSchema = idOf('wt');
export const WeightsFormatSchema = z.enum(['torchvision_pth', 'safetensors', 'studio_ckpt']);
export const WeightsStatusSchema = z.enum(['loading', 'ready', 'failed']);
export const SkippedTensorSchema = z.object({ name: z.string().max(1000), reason: z.string().max(1000) });

export const WeightsFileSchema = z.object({
  schema_version: z.literal(1),
  id: WeightsIdSchema,
  /** The catalog architecture the weights are for. */
  model: z.string().min(1).max(100),
  source: z.enum(['file', 'download']),
  /** Known once the file's first bytes are read (at once for an upload or path). */
  format: WeightsFormatSchema.nullable(),
  /** `loading` while its job runs; only `ready` weights can start an experiment. */
  status: WeightsStatusSchema,
  /** The file's name as given (upload), its base name (path) or the pinned file (download). */
  file_name: z.string().max(255).nullable(),
  /** A load from a server path: the path read. */
  source_path: z.string().max(4096).nullable(),
  /** A download: the URL fetched. */
  url: z.string().max(2048).nullable(),
  /** Of the file as read or downloaded; null until its job read it. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
  bytes: z.number().int().min(0).nullable(),
  tensors_loaded: z.number().int().min(0),
  /** What the file has that the model does not take, each with the reason (a head of another size, an unknown name, a counter). */
  tensors_skipped: z.array(SkippedTensorSchema),
  /** What the model has that the file does not give (they keep their fresh initialisation). */
  tensors_missing: z.array(z.string().max(1000)),
  /** The classes the file's classifier head was made for (1000 for ImageNet), when it has one that fits. */
  num_classes: z.number().int().min(1).nullable(),
  job_id: JobIdSchema.nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  created_at: TimestampSchema,
  updated_at: TimestampSchema,
});
export type WeightsFile = z.infer<typeof WeightsFileSchema>;
export const WeightsDoc: DocType<WeightsFile> = { name: 'weights.json', version: 1, schema: WeightsFileSchema };

/** A weights record as the API answers it (without the version stamp). */
export type WeightsView = Omit<WeightsFile, 'schema_version'>;

/** `POST /api/models/:name/weights` as JSON: a file on the server. */
export const LoadWeightsPathBodySchema = z.strictObject({
  path: z
    .string()
    .min(1)
    .max(4096)
    .refine((p) => p.startsWith('/'), 'must be an absolute path')
    .refine((p) => !p.includes('\0'), 'must not contain NUL'),
});

/** `POST /api/models/:name/weights/download`: which published file (the default one when left out). */
export const DownloadWeightsBodySchema = z.strictObject({ variant: z.string().min(1).max(64).optional() });
