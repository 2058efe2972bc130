import { z } from 'zod';

/**
 * The stored and served shape of an evaluation's aggregate metrics (`aggregate.json`, and the
 * `aggregate` of `GET …/evaluation`). snake_case as the API. A value that is undefined for the data
 * (e.g. ROC AUC of a class with no images, kappa when everything is one class) is null, never NaN,
 * so the file stays valid JSON.
 */
/** Curves are stored with at most this many points: enough for a chart, small enough for aggregate.json. */
export const MAX_CURVE_POINTS = 200;

const unit = z.number().min(0).max(1);
const count = z.number().int().min(0);

export const AveragedScoresSchema = z.object({ precision: unit, recall: unit, f1: unit });

export const ClassScoresSchema = z.object({ precision: unit, recall: unit, f1: unit, support: count });

export const ReliabilityBinSchema = z.object({
  lower: unit,
  upper: unit,
  count,
  mean_confidence: unit.nullable(),
  accuracy: unit.nullable(),
});

/** Curves hold at most MAX_CURVE_POINTS points (downsampled for storage); x and y have equal length. */
const points = z.array(unit).max(MAX_CURVE_POINTS);

export const RocCurveSchema = z
  .object({ fpr: points, tpr: points })
  .refine((c) => c.fpr.length === c.tpr.length, 'fpr and tpr must have the same length');

/** `average_precision` is the PR curve's area, computed on the full curve before downsampling. */
export const PrCurveSchema = z
  .object({ precision: points, recall: points, average_precision: unit })
  .refine((c) => c.precision.length === c.recall.length, 'precision and recall must have the same length');

export const AggregateMetricsSchema = z
  .object({
    accuracy: unit,
    /** Keys "3" and "5", each present only when there are more classes than k. */
    top_k: z.object({ '3': unit.optional(), '5': unit.optional() }),
    macro: AveragedScoresSchema,
    weighted: AveragedScoresSchema,
    per_class: z.record(z.string(), ClassScoresSchema),
    confusion_matrix: z.object({ labels: z.array(z.string()), matrix: z.array(z.array(count)) }),
    log_loss: z.number().min(0),
    ece: unit,
    /** per_class is null for a class without both positives and negatives; macro averages the rest. */
    roc_auc: z.object({ macro: unit.nullable(), per_class: z.record(z.string(), unit.nullable()) }),
    balanced_accuracy: unit,
    kappa: z.number().min(-1).max(1).nullable(),
    reliability: z.array(ReliabilityBinSchema),
    /** One-vs-rest curves, keyed by label; a class whose curve is undefined has no entry. */
    curves: z.object({ roc: z.record(z.string(), RocCurveSchema), pr: z.record(z.string(), PrCurveSchema) }),
  })
  .superRefine((a, ctx) => {
    const { labels, matrix } = a.confusion_matrix;
    if (matrix.length !== labels.length || matrix.some((row) => row.length !== labels.length)) {
      ctx.addIssue({ code: 'custom', message: `confusion matrix must be ${labels.length} × ${labels.length}`, path: ['confusion_matrix', 'matrix'] });
    }
  });

export type AggregateMetrics = z.infer<typeof AggregateMetricsSchema>;
