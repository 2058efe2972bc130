import { z } from 'zod';
import type { DocType } from './common.ts';
import { DatasetIdSchema, JobIdSchema, ProjectIdSchema, TimestampSchema } from './common.ts';

export const JobStatusSchema = z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted']);
export type JobStatus = z.infer<typeof JobStatusSchema>;

/** `workspace/jobs/<job-id>.json`: the durable part of a job; live events stay in memory. */
export const JobFileSchema = z.object({
  schema_version: z.literal(1),
  id: JobIdSchema,
  kind: z.string().min(1).max(64),
  status: JobStatusSchema,
  /** 0..1 */
  progress: z.number().min(0).max(1),
  /** Kind-specific counters (e.g. an import's done/total/imported/skipped). */
  progress_detail: z.record(z.string(), z.number()).optional(),
  project_id: ProjectIdSchema.optional(),
  dataset_id: DatasetIdSchema.optional(),
  result: z.unknown().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  created_at: TimestampSchema,
  started_at: TimestampSchema.optional(),
  finished_at: TimestampSchema.optional(),
  updated_at: TimestampSchema,
});
export type JobFile = z.infer<typeof JobFileSchema>;

export const JobDoc: DocType<JobFile> = { name: 'job', version: 1, schema: JobFileSchema };
