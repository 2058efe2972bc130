import { z } from 'zod';
import type { DocType } from './common.ts';
import { DescriptionSchema, DisplayNameSchema, ProjectIdSchema, TimestampSchema } from './common.ts';

/** `projects/<id>/project.json`. */
export const ProjectFileSchema = z.object({
  schema_version: z.literal(1),
  id: ProjectIdSchema,
  name: DisplayNameSchema,
  description: DescriptionSchema,
  created_at: TimestampSchema,
  updated_at: TimestampSchema,
});
export type ProjectFile = z.infer<typeof ProjectFileSchema>;
/** What the API returns: the file without its version stamp. */
export type Project = Omit<ProjectFile, 'schema_version'>;

export const ProjectDoc: DocType<ProjectFile> = { name: 'project.json', version: 1, schema: ProjectFileSchema };

export const ProjectCreateSchema = z.strictObject({
  name: DisplayNameSchema,
  description: DescriptionSchema.optional(),
});
export type ProjectCreate = z.input<typeof ProjectCreateSchema>;

export const ProjectUpdateSchema = z.strictObject({
  name: DisplayNameSchema.optional(),
  description: DescriptionSchema.optional(),
});
export type ProjectUpdate = z.input<typeof ProjectUpdateSchema>;
