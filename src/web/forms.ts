import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AppError, notFound } from '../kernel/errors.ts';
import { DatasetIdSchema, ImageIdSchema, JobIdSchema, ProjectIdSchema } from '../schemas/common.ts';
import { SplitNameSchema, SubsetSchema } from '../schemas/dataset.ts';
import { DatasetTaskSchema } from '../schemas/task.ts';

/**
 * What the pages receive: HTML forms (urlencoded, every value a string) and query strings.
 * These schemas turn them into the services' inputs; the services validate the values again
 * (name rules, ratios), so here we only shape and coerce.
 */

/** Browsers post forms urlencoded; Fastify has no parser for it, and the JSON API must not get one. */
export function registerFormParser(app: FastifyInstance): void {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    // Object.fromEntries defines own properties, so a `__proto__` field is just a field.
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
}

export function parseForm<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) {
    const msg = r.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
    throw new AppError('VALIDATION_ERROR', msg, r.error.issues);
  }
  return r.data;
}

/** An id that has not the id shape names nothing, so it is NOT_FOUND (and never reaches a path). */
export function parseIds<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw notFound('page');
  return r.data;
}

export const ProjectIds = z.strictObject({ project_id: ProjectIdSchema });
export const DatasetIds = ProjectIds.extend({ dataset_id: DatasetIdSchema });
export const ImageIds = DatasetIds.extend({ image_id: ImageIdSchema });
export const SplitIds = DatasetIds.extend({ name: SplitNameSchema });
export const JobIds = ProjectIds.extend({ job_id: JobIdSchema });

/** An empty form field or query value means "not given". */
const optional = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === '' ? undefined : v), schema.optional());

export const ProjectForm = z.strictObject({ name: z.string(), description: z.string().optional() });

const datasetFields = { name: z.string(), task: z.preprocess((v) => (v === '' ? undefined : v), DatasetTaskSchema.default('classification')) };
/** Target columns are typed as one text field, comma-separated. */
const columnList = z.preprocess(
  (v) => (typeof v === 'string' ? v.split(',').map((c) => c.trim()).filter((c) => c !== '') : v),
  z.array(z.string()).optional(),
);
export const ImportForm = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('folder'), path: z.string(), ...datasetFields }),
  z.strictObject({
    kind: z.literal('csv'),
    path: z.string(),
    images_root: z.string(),
    image_column: optional(z.string()),
    label_column: optional(z.string()),
    label_separator: optional(z.enum([';', '|'])),
    target_columns: columnList,
    ...datasetFields,
  }),
  z.strictObject({ kind: z.literal('coco'), annotations: z.string(), images_root: z.string(), ...datasetFields }),
  z.strictObject({ kind: z.literal('yolo'), path: z.string(), ...datasetFields }),
]);
export type ImportForm = z.infer<typeof ImportForm>;

export const NavQuery = z.strictObject({
  section: z.enum(['project', 'dataset', 'training', 'evaluation', 'exports']).default('project'),
  dataset: optional(DatasetIdSchema),
});

export const DeleteQuery = z.strictObject({ redirect: optional(z.literal('1')) });

export const GridQuery = z.strictObject({
  page: optional(z.coerce.number().int().min(1).max(1_000_000)),
  label: optional(z.string().max(200)),
  split: optional(SplitNameSchema),
  subset: optional(SubsetSchema),
});
export type GridQuery = z.infer<typeof GridQuery>;

/**
 * The image detail's form, by task: classification's `label` select and `new_label`; multi-label's
 * checkboxes `label_<i>` (index into the classes; present = checked) with `labels_form=1` so that
 * no box checked still says "no label"; regression's `target_<i>` inputs (index into target_names).
 * Indexes, not names, because class and target names may hold any character.
 */
export const RelabelForm = z
  .object({ label: z.string().optional(), new_label: z.string().optional(), labels_form: z.literal('1').optional() })
  .catchall(z.string())
  .superRefine((v, ctx) => {
    for (const k of Object.keys(v)) {
      if (!['label', 'new_label', 'labels_form'].includes(k) && !/^(label|target)_\d{1,4}$/.test(k)) ctx.addIssue({ code: 'custom', message: `unexpected field '${k.slice(0, 64)}'` });
    }
  });
export type RelabelForm = z.infer<typeof RelabelForm>;

/** Ratios are typed as percentages; a split is stored with fractions. */
const percent = z.coerce.number().min(0).max(100);
export const SplitForm = z.strictObject({
  name: z.string(),
  train: percent,
  val: percent,
  test: percent,
  seed: z.preprocess((v) => (v === '' ? 0 : v), z.coerce.number().int().min(0).max(2 ** 31 - 1)),
  stratify: optional(z.literal('on')),
})
  // The form's ratios are percentages: say it in those terms, not in the API's fractions.
  .refine((f) => Math.abs(f.train + f.val + f.test - 100) < 1e-6, { message: 'train, val and test must add up to 100 %', path: ['train'] });
export type SplitForm = z.infer<typeof SplitForm>;

/**
 * An id chosen in a page's query string (`?experiment=…`): any short string, so that one that
 * names nothing — malformed or not — is the page's 404, not a pattern in an error message.
 */
export const SelectionIdSchema = z.string().max(100);

