import { badInput } from '../../kernel/errors.ts';
import { balancedAccuracy, cohenKappa } from './agreement.ts';
import { calibration } from './calibration.ts';
import { accuracyOf, confusionMatrix } from './confusion.ts';
import { downsampleCurve } from './downsample.ts';
import { argmaxRows, checkInputs, oneVsRest, type Targets } from './inputs.ts';
import { logLoss } from './log-loss.ts';
import { meanDefined } from './ovr.ts';
import { macroAverage, perClassScores, weightedAverage } from './per-class.ts';
import { averagePrecisionOf, prCurve } from './pr.ts';
import { auc, rocCurve } from './roc.ts';
import { AggregateMetricsSchema, MAX_CURVE_POINTS, type AggregateMetrics } from './schema.ts';
import { reportedTopK, topKAccuracy } from './top-k.ts';

export interface AggregateInput {
  /** Row-major N × C class probabilities (softmax outputs). */
  probs: Float32Array | Float64Array;
  /** True class index of each of the N images. */
  targets: Targets;
  /** The C class names, in class-index order; they key the per-class maps. */
  labels: readonly string[];
  /** At most this many points per stored curve (default MAX_CURVE_POINTS). */
  maxCurvePoints?: number;
}

/**
 * Every aggregate metric of one evaluation, in the API's shape (see schema.ts). Predictions are the
 * argmax of each row. The result is checked against AggregateMetricsSchema before it is returned,
 * so what is stored is always what readers accept.
 */
export function aggregate(input: AggregateInput): AggregateMetrics {
  const { probs, targets, labels } = input;
  const c = labels.length;
  const n = checkInputs(probs, targets, c);
  if (n === 0) throw badInput('there are no images to evaluate');
  if (new Set(labels).size !== c) throw badInput('class labels must be distinct');
  // Labels key the per-class maps; zod (and any plain-object reader) drops a '__proto__' key, so
  // such a label would silently vanish from the stored metrics.
  if (labels.includes('__proto__')) throw badInput("a class label cannot be '__proto__'");

  const matrix = confusionMatrix(targets, argmaxRows(probs, c), c);
  const scores = perClassScores(matrix);
  const topK: AggregateMetrics['top_k'] = {};
  for (const k of reportedTopK(c)) topK[String(k) as '3' | '5'] = topKAccuracy(probs, targets, c, k);
  const cal = calibration(probs, targets, c);

  const perClassAuc: Record<string, number | null> = {};
  const roc: AggregateMetrics['curves']['roc'] = {};
  const pr: AggregateMetrics['curves']['pr'] = {};
  const maxPoints = input.maxCurvePoints ?? MAX_CURVE_POINTS;
  for (let k = 0; k < c; k++) {
    const { scores: s, positive } = oneVsRest(probs, targets, c, k);
    const rc = rocCurve(s, positive, true);
    // The area is taken on the full curve; only the stored copy is downsampled.
    perClassAuc[labels[k]] = rc === null ? null : clampUnit(auc(rc.fpr, rc.tpr));
    if (rc !== null) {
      const [fpr, tpr] = downsampleCurve(rc.fpr, rc.tpr, maxPoints);
      roc[labels[k]] = { fpr, tpr };
    }
    const pc = prCurve(s, positive);
    if (pc !== null) {
      const [recall, precision] = downsampleCurve(pc.recall, pc.precision, maxPoints);
      pr[labels[k]] = { precision, recall, average_precision: clampUnit(averagePrecisionOf(pc)) };
    }
  }

  return AggregateMetricsSchema.parse({
    accuracy: accuracyOf(matrix),
    top_k: topK,
    macro: macroAverage(matrix),
    weighted: weightedAverage(matrix),
    per_class: Object.fromEntries(labels.map((label, k) => [label, scores[k]])),
    confusion_matrix: { labels: [...labels], matrix },
    log_loss: logLoss(probs, targets, c),
    ece: cal.ece,
    roc_auc: { macro: meanDefined(Object.values(perClassAuc)), per_class: perClassAuc },
    balanced_accuracy: balancedAccuracy(matrix),
    kappa: cohenKappa(matrix),
    reliability: cal.bins,
    curves: { roc, pr },
  });
}

/** Sums of rounded terms can land one ulp outside [0, 1]; the schema (rightly) refuses that. */
function clampUnit(v: number): number {
  return Math.min(Math.max(v, 0), 1);
}
