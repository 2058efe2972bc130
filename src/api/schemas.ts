import { z } from 'zod';
import {
  DatasetIdSchema,
  DisplayNameSchema,
  ImageIdSchema,
  JobIdSchema,
  ProjectIdSchema,
  SplitNameSchema,
} from '../schemas/index.ts';
import { DatasetTaskSchema } from '../schemas/task.ts';
import { CsvColumn } from '../datasets/types.ts';

/**
 * Request shapes only the HTTP layer has (route params, the API's import source, upload fields).
 * Bodies shared with the core (project/dataset/image updates, image queries, split requests) are
 * the zod schemas in src/schemas. Everything is strict: an unknown field is refused, not ignored.
 */
export const ProjectParams = z.strictObject({ project_id: ProjectIdSchema });
export const DatasetParams = ProjectParams.extend({ dataset_id: DatasetIdSchema });
export const ImageParams = DatasetParams.extend({ image_id: ImageIdSchema });
export const SplitParams = DatasetParams.extend({ name: SplitNameSchema });
export const JobParams = z.strictObject({ job_id: JobIdSchema });

/** Server-side paths must be absolute: a relative one would depend on where the studio was started. */
const serverPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.startsWith('/'), 'must be an absolute path')
  .refine((p) => !p.includes('\0'), 'must not contain NUL');

export const ApiImportSourceSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('folder'), path: serverPath }),
  z.strictObject({
    kind: z.literal('csv'),
    path: serverPath,
    images_root: serverPath,
    /** Header names of the image and label columns (default: found by their usual names). */
    image_column: CsvColumn.optional(),
    label_column: CsvColumn.optional(),
    /** Multi-label: what joins the labels in a cell. */
    label_separator: z.enum([';', '|']).optional(),
    /** Regression: header names of the numeric target columns. */
    target_columns: z.array(CsvColumn).min(1).max(64).optional(),
  }),
  z.strictObject({ kind: z.literal('coco'), annotations: serverPath, images_root: serverPath }),
  z.strictObject({ kind: z.literal('yolo'), path: serverPath }),
]);
export type ApiImportSource = z.infer<typeof ApiImportSourceSchema>;

export const CreateDatasetBody = z.strictObject({
  name: DisplayNameSchema,
  task: DatasetTaskSchema.default('classification'),
  source: ApiImportSourceSchema,
});

/** The text fields of the zip upload form. */
export const UploadFields = z.strictObject({ name: DisplayNameSchema, task: DatasetTaskSchema.default('classification') });

export const SseHeaders = z.object({ 'last-event-id': z.coerce.number().int().min(0).optional() });
