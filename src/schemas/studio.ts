import { z } from 'zod';
import type { DocType } from './common.ts';
import { TimestampSchema } from './common.ts';

/** `workspace/studio.json`: marks a folder as a studio workspace and remembers one-time decisions. */
export const StudioFileSchema = z.object({
  schema_version: z.literal(1),
  created_at: TimestampSchema,
  /** Set once the example project was offered, so deleting it does not bring it back. */
  example_offered: z.boolean(),
});
export type StudioFile = z.infer<typeof StudioFileSchema>;

export const StudioDoc: DocType<StudioFile> = { name: 'studio.json', version: 1, schema: StudioFileSchema };
