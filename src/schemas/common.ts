import { z } from 'zod';

/**
 * Shapes shared by every stored file. A stored file is described by a `DocType`: its name (for
 * error messages), the one `schema_version` this build reads and writes, and its zod schema.
 */
export interface DocType<T extends { schema_version: number }> {
  name: string;
  version: T['schema_version'];
  schema: z.ZodType<T>;
}

export const ID_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';
export const ID_LENGTH = 8;

/** `{prefix}-{8 chars of 0-9a-z}`; the regex is also what keeps ids safe to join into paths. */
export const idOf = (prefix: string) => z.string().regex(new RegExp(`^${prefix}-[0-9a-z]{${ID_LENGTH}}$`));

export const ProjectIdSchema = idOf('proj');
export const DatasetIdSchema = idOf('ds');
export const ImageIdSchema = idOf('img');
export const JobIdSchema = idOf('job');
/** Imported ONNX backbones (the "Models" page). */
export const BackboneIdSchema = idOf('bb');

export const TimestampSchema = z.iso.datetime();

/** A name a person typed: shown in pages (escaped there), never used in a path. */
export const DisplayNameSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(200)
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'must not contain control characters');

export const DescriptionSchema = z.string().max(5000);
