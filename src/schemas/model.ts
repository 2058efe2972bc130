import { z } from 'zod';
import { BackboneIdSchema, DisplayNameSchema, TimestampSchema, type DocType } from './common.ts';

/** `models/<bb-id>/model.json`: an imported ONNX backbone, as the import found it. */

const triple = z.tuple([z.number(), z.number(), z.number()]);

export const ModelFileSchema = z.object({
  schema_version: z.literal(1),
  id: BackboneIdSchema,
  name: DisplayNameSchema,
  input_size: z.number().int().min(1),
  mean: triple,
  std: triple,
  /** Parameters of the backbone without its classifier (the head is made per experiment). */
  param_count: z.number().int().min(0),
  /** Trainable blocks before the head, for "train the last K blocks". */
  block_count: z.number().int().min(0),
  source: z.enum(['upload', 'path']),
  source_path: z.string().max(4096).nullable(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().min(0),
  created_at: TimestampSchema,
});
export type ModelFile = z.infer<typeof ModelFileSchema>;
export const ModelDoc: DocType<ModelFile> = { name: 'model.json', version: 1, schema: ModelFileSchema };
