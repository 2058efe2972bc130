import { z } from 'zod';
import type { DocType } from './common.ts';
import { ImageIdSchema, JobIdSchema, TimestampSchema } from './common.ts';
import { SubsetSchema } from './dataset.ts';
import { CheckpointNameSchema, RunIdSchema } from './experiment.ts';
import { StoredTaskNameSchema } from './task.ts';

/**
 * An experiment's evaluation as stored: `evaluation/evaluation.json` (status, request, problems)
 * and `evaluation/aggregate.json` (the task's aggregate). The per-image records (results.jsonl) and
 * the aggregate's own shape are the task's (src/tasks/<task>/, `itemSchema`, `aggregateSchema`).
 */

/** The subsets an evaluation can take images from: a split's, but `none`. */
export const EvaluatedSubsetSchema = SubsetSchema.exclude(['none']);

export const EVALUATION_STATUSES = ['queued', 'running', 'succeeded', 'failed'] as const;
export const EvaluationStatusSchema = z.enum(EVALUATION_STATUSES);
export type EvaluationStatus = z.infer<typeof EvaluationStatusSchema>;

export const EvaluationConfigSchema = z.object({
  run_id: RunIdSchema,
  checkpoint: CheckpointNameSchema,
  subsets: z.array(EvaluatedSubsetSchema).min(1),
  tta: z.boolean(),
  batch_size: z.number().int().min(1).max(1024),
  /** The evaluated dataset: the run's own (from its config.json), or another of the project's. */
  dataset_id: z.string(),
  split_name: z.string(),
  /**
   * True when `dataset_id` is another dataset than the run trained on: every one of its labelled
   * images is evaluated, recorded as `test` (it is held out by construction); `split_name` is unused.
   */
  whole_dataset: z.boolean().optional(),
  model: z.string(),
  input_size: z.number().int().min(1),
  classes: z.array(z.string()).min(1),
});
export type EvaluationConfig = z.infer<typeof EvaluationConfigSchema>;

export const EvaluationProblemSchema = z.object({ image_id: ImageIdSchema, file: z.string(), reason: z.string() });
export type EvaluationProblem = z.infer<typeof EvaluationProblemSchema>;

/** Stored problems are capped; `problems_total` counts them all. */
export const MAX_STORED_PROBLEMS = 1000;

/**
 * A re-evaluation that failed (or was interrupted) while a succeeded evaluation was in place: recorded
 * beside that one instead of replacing it, so the last good metrics are never lost to a failure.
 */
export const LastAttemptSchema = z.object({
  status: z.literal('failed'),
  config: EvaluationConfigSchema,
  error: z.object({ code: z.string(), message: z.string() }),
  finished_at: TimestampSchema,
});
export type LastAttempt = z.infer<typeof LastAttemptSchema>;

export const EvaluationFileSchema = z.object({
  schema_version: z.literal(1),
  /** The run's task (src/tasks/); absent in an evaluation from before tasks, which is classification. */
  task: StoredTaskNameSchema.optional(),
  status: EvaluationStatusSchema,
  config: EvaluationConfigSchema,
  job_id: JobIdSchema.nullable(),
  problems: z.array(EvaluationProblemSchema).max(MAX_STORED_PROBLEMS),
  problems_total: z.number().int().min(0),
  /** Images evaluated (those with a result line). */
  evaluated: z.number().int().min(0),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  created_at: TimestampSchema,
  finished_at: TimestampSchema.nullable(),
  /** Only on a succeeded evaluation: the failed attempt to replace it, if the latest one failed. */
  last_attempt: LastAttemptSchema.optional(),
  updated_at: TimestampSchema,
});
export type EvaluationFile = z.infer<typeof EvaluationFileSchema>;
export const EvaluationDoc: DocType<EvaluationFile> = { name: 'evaluation.json', version: 1, schema: EvaluationFileSchema };

/**
 * aggregate.json. Its `metrics` are the task's aggregate (classification's AggregateMetricsSchema,
 * or the task's own `aggregateSchema`): the file schema takes any object and the readers and
 * writers below validate it with the schema they are given (storage does not know the tasks).
 */
export const AggregateFileSchema = z.object({ schema_version: z.literal(1), metrics: z.record(z.string(), z.unknown()) });
export type AggregateFile = z.infer<typeof AggregateFileSchema>;
export const AggregateDoc: DocType<AggregateFile> = { name: 'aggregate.json', version: 1, schema: AggregateFileSchema };
