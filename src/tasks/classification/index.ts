import { z } from 'zod';
import { aggregate } from '../../evaluation/metrics/aggregate.ts';
import { AggregateMetricsSchema, type AggregateMetrics } from '../../evaluation/metrics/schema.ts';
import { ResultRecordSchema, type ResultRecord } from '../../evaluation/results.ts';
import type { TensorData } from '../../onnx/ir.ts';
import { classIndexScorer } from '../../training/run-loop.ts';
import { softmaxPostprocess } from '../../training/step-graph.ts';
import type { TaskDefinition } from '../types.ts';
import { classificationResults } from './results.ts';
import { classificationEvaluationWarnings, classificationRunWarnings } from './warnings.ts';

/**
 * Single-label classification: one class per image (`label`), softmax cross-entropy, accuracy per
 * epoch, the full classification aggregate (src/evaluation/metrics/), top-k predictions.
 */

const StateSchema = z.object({ class_weights: z.array(z.number().nonnegative()).nullable() });
type State = z.infer<typeof StateSchema>;

/** Predictions shown per image in evaluation records. */
export const TOP_K = 5;

/** The `k` best classes of one probability row, best first; ties to the lower class index; scores clamped to [0, 1]. */
export function topK(row: ArrayLike<number>, labels: readonly string[], k: number): { label: string; score: number }[] {
  const order = Array.from({ length: labels.length }, (_, i) => i).sort((a, b) => row[b] - row[a] || a - b);
  return order.slice(0, Math.min(k, labels.length)).map((i) => ({ label: labels[i], score: clampUnit(row[i]) }));
}

/** float32 softmax can round a hair past 1; stored records stay in [0, 1]. */
function clampUnit(v: number): number {
  return Math.min(Math.max(v, 0), 1);
}

function argmax(row: ArrayLike<number>, from: number, n: number): number {
  let best = 0;
  for (let j = 1; j < n; j++) if (row[from + j] > row[from + best]) best = j;
  return best;
}

const classification: TaskDefinition<State, AggregateMetrics, ResultRecord> = {
  name: 'classification',
  title: 'Classification',
  description: 'One class per image: softmax over the classes, accuracy, confusion matrix, top-k.',
  labelShape: 'single',
  sources: ['folder', 'zip', 'csv', 'coco', 'yolo'],
  losses: ['cross_entropy'],
  epochMetrics: [{ key: 'val_accuracy', label: 'Validation accuracy', higher_is_better: true, format: 'percent' }],
  bestMetric: 'val_accuracy',
  hyperparameters: ['label_smoothing', 'class_weights'],
  minTrainClasses: 2,
  evaluationMetrics: ['accuracy', 'top_k', 'macro', 'weighted', 'per_class', 'confusion_matrix', 'log_loss', 'ece', 'roc_auc', 'balanced_accuracy', 'kappa'],
  results: classificationResults,

  outputNames: (ds) => [...ds.classes],
  target(img, names) {
    if (img.label === null) return null;
    const i = names.indexOf(img.label);
    return i < 0 ? null : [i];
  },
  problem: (img, names) => (img.label !== null && !names.includes(img.label) ? `label '${img.label}' is not one of the model's classes` : null),

  stateSchema: StateSchema,
  fitState(train, names, h) {
    if (h.class_weights !== 'balanced') return { class_weights: null };
    const counts = new Array<number>(names.length).fill(0);
    for (const t of train) counts[t[0]] += 1;
    return { class_weights: counts.map((c) => (c > 0 ? train.length / (names.length * c) : 0)) };
  },
  loss: (h, state) => ({ kind: 'cross_entropy', labelSmoothing: h.label_smoothing, ...(state.class_weights ? { classWeights: state.class_weights } : {}) }),
  collate: (targets): TensorData => ({ dtype: 'int64', dims: [targets.length], data: BigInt64Array.from(targets, (t) => BigInt(t[0])) }),
  scorer: () => classIndexScorer(),

  appendInference: (b, raw) => softmaxPostprocess(b, raw),
  evaluate(outputs, items, names) {
    const c = names.length;
    const probs = new Float32Array(items.length * c);
    const targets = new Int32Array(items.length);
    const records: ResultRecord[] = items.map((it, r) => {
      const row = outputs.subarray(r * c, (r + 1) * c);
      for (let j = 0; j < c; j++) probs[r * c + j] = clampUnit(row[j]);
      targets[r] = it.target[0];
      const top = topK(row, names, TOP_K);
      const label = names[it.target[0]];
      return { image_id: it.image_id, file: it.file, subset: it.subset, label, predicted: top[0].label, confidence: top[0].score, correct: top[0].label === label, top_k: top };
    });
    return { aggregate: aggregate({ probs, targets, labels: names }), items: records };
  },
  aggregateSchema: AggregateMetricsSchema,
  itemSchema: ResultRecordSchema,
  exportMetric(outputs, targets, names) {
    const c = names.length;
    let correct = 0;
    targets.forEach((t, i) => {
      if (argmax(outputs, i * c, c) === t[0]) correct += 1;
    });
    return { name: 'accuracy', value: targets.length ? correct / targets.length : null };
  },
  manifestPostprocessing: (_state, _names, primary) => ({ type: 'softmax', scores_output: primary, activation: 'softmax', axis: 1, labels: 'labels' }),
  runWarnings: classificationRunWarnings,
  evaluationWarnings: (aggregate) => classificationEvaluationWarnings(aggregate),
  predict: (row, names, _post, opts) => ({ top: topK(row, names, opts.topK) }),
};

export default classification;
