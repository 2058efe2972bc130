import { z } from 'zod';
import { validation } from '../../kernel/errors.ts';
import { PrCurveSchema } from '../../evaluation/metrics/schema.ts';
import { f32 } from '../../onnx/ir.ts';
import type { ImageRecord } from '../../schemas/dataset.ts';
import type { Hyperparameters } from '../../schemas/experiment.ts';
import type { LossSpec } from '../../training/losses.ts';
import type { EvaluationItemInput, TaskDefinition } from '../types.ts';
import { multiLabelResults } from './results.ts';
import { multiLabelPage } from './page.ts';
import {
  averagePrecisions,
  classPrCurve,
  column,
  DEFAULT_THRESHOLD,
  exactMatches,
  hammingLoss,
  labelCardinality,
  macroPrf,
  maxF1Threshold,
  maxF1Thresholds,
  meanAveragePrecision,
  meanDefined,
  microPrf,
  type MultiLabelInput,
  perClassPrf,
  sigmoid,
} from './metrics.ts';

/**
 * Multi-label classification: every image carries any subset of the dataset's classes (its
 * `labels`; [] = labelled with none present, absent = unlabelled). The model's K outputs are one
 * independent logit per class; a target is the image's multi-hot row; training is BCE with logits
 * (optional per-class pos_weight, label smoothing); inference is a sigmoid per class.
 */

const unit = z.number().min(0).max(1);
const count = z.number().int().min(0);
const prf = z.object({ precision: unit, recall: unit, f1: unit });

export const stateSchema = z.object({
  /** Per-class weights of the positive term (negatives / positives on the training subset), or null. */
  pos_weight: z.array(z.number().nonnegative()).nullable(),
});
export type MultiLabelState = z.infer<typeof stateSchema>;

/** The evaluation aggregate (aggregate.json and the API). Null where undefined for the images (e.g. none). */
export const aggregateSchema = z.object({
  /** Macro mean AP over the classes with a positive. */
  map: unit.nullable(),
  micro: prf,
  macro: prf,
  per_class: z.record(
    z.string(),
    z.object({
      /** Null for a class without a positive among the images. */
      ap: unit.nullable(),
      precision: unit,
      recall: unit,
      f1: unit,
      support: count,
      /** The threshold maximising this class's F1 here (the deployment suggestion). */
      threshold: unit,
    }),
  ),
  hamming_loss: unit.nullable(),
  exact_match: unit.nullable(),
  /** The decision threshold of P/R/F1, hamming loss, exact match and the predicted labels. */
  threshold: unit,
  label_cardinality: z.object({ true: z.number().min(0).nullable(), predicted: z.number().min(0).nullable() }),
  /** Per-class PR curves; a class with no positive has none. */
  curves: z.object({ pr: z.record(z.string(), PrCurveSchema) }),
});
export type MultiLabelAggregate = z.infer<typeof aggregateSchema>;

export const itemSchema = z.object({
  image_id: z.string(),
  file: z.string(),
  subset: z.enum(['train', 'val', 'test']),
  /** The true labels. */
  labels: z.array(z.string()),
  /** The labels scored ≥ the decision threshold (0.5), best first. */
  predicted_labels: z.array(z.string()),
  scores: z.record(z.string(), unit),
  /** True labels not predicted, and predicted labels not true. */
  missed: z.array(z.string()),
  extra: z.array(z.string()),
  /** Exact match: the predicted set is the true set. */
  correct: z.boolean(),
});
export type MultiLabelItem = z.infer<typeof itemSchema>;

/** What the manifest's postprocessing carries and predict reads back. */
export const postprocessingSchema = z.object({
  type: z.literal('multilabel'),
  scores_output: z.string(),
  activation: z.literal('sigmoid'),
  thresholds: z.record(z.string(), unit),
});

export interface MultiLabelPrediction {
  /** Every label scored at or above its threshold, best first. */
  labels: { label: string; score: number }[];
  scores: Record<string, number>;
}

/** The image's labels; undefined = unlabelled. Read defensively while the record's `labels` field lands. */
function labelsOf(img: ImageRecord): readonly string[] | undefined {
  const labels = (img as { labels?: unknown }).labels;
  return Array.isArray(labels) ? (labels as string[]) : undefined;
}

function multiHot(labels: readonly string[], names: readonly string[]): number[] {
  const on = new Set(labels);
  return names.map((n) => (on.has(n) ? 1 : 0));
}

function flatten(rows: readonly (readonly number[])[], k: number): Float32Array {
  const out = new Float32Array(rows.length * k);
  rows.forEach((r, i) => {
    if (r.length !== k) throw new Error(`multilabel: a target row has ${r.length} entries for ${k} outputs`);
    out.set(r, i * k);
  });
  return out;
}

/** Mean BCE with logits over every cell (the plain loss: no pos_weight, no smoothing). */
function meanBce(logits: ArrayLike<number>, targets: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i];
    sum += Math.max(x, 0) - x * targets[i] + Math.log1p(Math.exp(-Math.abs(x)));
  }
  return sum / logits.length;
}

/** The labels whose score is at or above their threshold, best first (ties by output order). */
function above(scores: ArrayLike<number>, names: readonly string[], thresholdOf: (k: number) => number): { label: string; score: number }[] {
  return names
    .map((label, k) => ({ label, score: Number(scores[k]), k }))
    .filter((e) => e.score >= thresholdOf(e.k))
    .sort((a, b) => b.score - a.score || a.k - b.k)
    .map(({ label, score }) => ({ label, score }));
}

function evaluate(outputs: Float32Array, items: readonly EvaluationItemInput[], names: readonly string[]): { aggregate: MultiLabelAggregate; items: MultiLabelItem[] } {
  const n = items.length;
  const c = names.length;
  if (outputs.length !== n * c) throw new Error(`multilabel evaluate: ${outputs.length} outputs for ${n} images × ${c} labels`);
  const input: MultiLabelInput = { scores: outputs, targets: flatten(items.map((it) => it.target), c), n, c };
  const aps = averagePrecisions(input);
  const per = perClassPrf(input, DEFAULT_THRESHOLD);
  const thresholds = maxF1Thresholds(input);
  const pr: MultiLabelAggregate['curves']['pr'] = {};
  const perClass: MultiLabelAggregate['per_class'] = {};
  names.forEach((name, k) => {
    perClass[name] = { ap: aps[k], ...per[k], threshold: thresholds[k] };
    const curve = classPrCurve(input, k);
    if (curve) pr[name] = curve;
  });
  const matches = exactMatches(input, DEFAULT_THRESHOLD);
  const aggregate = aggregateSchema.parse({
    map: meanDefined(aps),
    micro: microPrf(input, DEFAULT_THRESHOLD),
    macro: macroPrf(input, DEFAULT_THRESHOLD),
    per_class: perClass,
    hamming_loss: hammingLoss(input, DEFAULT_THRESHOLD),
    exact_match: n === 0 ? null : matches.filter(Boolean).length / n,
    threshold: DEFAULT_THRESHOLD,
    label_cardinality: labelCardinality(input, DEFAULT_THRESHOLD),
    curves: { pr },
  } satisfies MultiLabelAggregate);
  const out = items.map((it, i) => {
    const row = outputs.subarray(i * c, i * c + c);
    const labels = names.filter((_, k) => it.target[k] > 0.5);
    const predicted = above(row, names, () => DEFAULT_THRESHOLD).map((e) => e.label);
    const truth = new Set(labels);
    const said = new Set(predicted);
    return itemSchema.parse({
      image_id: it.image_id,
      file: it.file,
      subset: it.subset,
      labels,
      predicted_labels: predicted,
      scores: Object.fromEntries(names.map((name, k) => [name, row[k]])),
      missed: labels.filter((l) => !said.has(l)),
      extra: predicted.filter((l) => !truth.has(l)),
      correct: matches[i],
    } satisfies MultiLabelItem);
  });
  return { aggregate, items: out };
}

const multilabel: TaskDefinition<MultiLabelState, MultiLabelAggregate, MultiLabelItem> = {
  name: 'multilabel',
  title: 'Multi-label classification',
  description: 'Each image may carry several labels (or none); one sigmoid per label, trained with binary cross-entropy.',
  labelShape: 'multi',
  sources: ['csv', 'coco', 'yolo'],
  losses: ['bce'],
  epochMetrics: [
    { key: 'val_map', label: 'Val mAP', higher_is_better: true, format: 'percent' },
    { key: 'val_micro_f1', label: 'Val micro-F1', higher_is_better: true, format: 'percent' },
  ],
  bestMetric: 'val_map',
  hyperparameters: ['label_smoothing', 'pos_weight'],
  // one label is enough: with independent sigmoids a single label is an ordinary binary problem
  minTrainClasses: 1,
  evaluationMetrics: ['map', 'micro', 'macro', 'per_class', 'hamming_loss', 'exact_match', 'label_cardinality'],
  evaluationPage: multiLabelPage,
  results: multiLabelResults,

  outputNames: (ds) => [...ds.classes],

  target(img, names) {
    const labels = labelsOf(img);
    if (labels === undefined) return null;
    if (labels.some((l) => !names.includes(l))) return null;
    return multiHot(labels, names);
  },

  problem(img, names) {
    const labels = labelsOf(img);
    if (labels === undefined) return null;
    const unknown = labels.filter((l) => !names.includes(l));
    if (unknown.length === 0) return null;
    return `label${unknown.length > 1 ? 's' : ''} ${unknown.map((l) => `'${l}'`).join(', ')} not among the run's labels (${names.join(', ')})`;
  },

  stateSchema,

  /**
   * 'balanced' pos_weight is negatives / positives of each class on the training subset, PyTorch's
   * recipe for BCEWithLogitsLoss: a class's positives then weigh as much as its negatives. A class
   * with no positive (its weight would be infinite or 0/0) keeps 1.
   */
  fitState(train, names, h: Hyperparameters) {
    if (h.pos_weight !== 'balanced') return { pos_weight: null };
    const pos = new Array<number>(names.length).fill(0);
    for (const t of train) t.forEach((v, k) => (pos[k] += v > 0.5 ? 1 : 0));
    return { pos_weight: pos.map((p) => (p === 0 ? 1 : (train.length - p) / p)) };
  },

  loss(h, state, outputCount): LossSpec {
    const name = h.loss;
    if (name !== undefined && name !== 'bce') throw validation(`hyperparameters.loss: multi-label classification trains with 'bce', not '${name}'`);
    if (state.pos_weight && state.pos_weight.length !== outputCount) {
      throw new Error(`multilabel: ${state.pos_weight.length} positive weights for ${outputCount} outputs`);
    }
    return { kind: 'bce_with_logits', labelSmoothing: h.label_smoothing, ...(state.pos_weight ? { posWeight: [...state.pos_weight] } : {}) };
  },

  collate: (targets, _state, outputCount) => f32([targets.length, outputCount], flatten(targets, outputCount)),

  scorer(_state, outputCount) {
    const logits: number[] = [];
    const targets: number[] = [];
    return {
      add(outputs, rows) {
        if (outputs.length !== rows.length * outputCount) throw new Error(`multilabel scorer: ${outputs.length} outputs for ${rows.length} targets`);
        for (const v of outputs) logits.push(v);
        for (const r of rows) for (const v of r) targets.push(v);
      },
      result() {
        const n = logits.length / Math.max(outputCount, 1);
        if (n === 0 || outputCount === 0) return { loss: null, metrics: { map: null, micro_f1: null } };
        const input: MultiLabelInput = { scores: logits.map(sigmoid), targets, n, c: outputCount };
        return { loss: meanBce(logits, targets), metrics: { map: meanAveragePrecision(input), micro_f1: microPrf(input).f1 } };
      },
    };
  },

  appendInference(b, raw) {
    const probs = b.fresh('probabilities');
    b.opN('Sigmoid', [raw], {}, [probs]);
    return { primary: probs, outputs: [{ name: probs, description: 'sigmoid of each logit: the probability that labels[i] is present' }] };
  },

  evaluate: (outputs, items, names) => evaluate(outputs, items, names),
  aggregateSchema,
  itemSchema,

  exportMetric(outputs, targets, names) {
    const c = names.length;
    const n = targets.length;
    return { name: 'map', value: meanAveragePrecision({ scores: outputs, targets: flatten(targets, c), n, c }) };
  },

  /**
   * Per-label thresholds that maximise F1 on the reference (the eval graph's outputs on the export's
   * validation images); 0.5 for a label without a positive there.
   */
  manifestPostprocessing(_state, names, primary, reference) {
    const c = names.length;
    const n = reference.targets.length;
    const targets = flatten(reference.targets, c);
    const thresholds = Object.fromEntries(
      names.map((name, k) => [name, n === 0 ? DEFAULT_THRESHOLD : maxF1Threshold(column(reference.outputs, n, c, k), column(targets, n, c, k))]),
    );
    return { type: 'multilabel', scores_output: primary, activation: 'sigmoid', thresholds };
  },

  predict(row, names, postprocessing): MultiLabelPrediction {
    // only the thresholds matter here; a manifest without them (or with a bad one) falls back to 0.5
    const parsed = postprocessingSchema.pick({ thresholds: true }).safeParse(postprocessing);
    const thresholds = parsed.success ? parsed.data.thresholds : {};
    return {
      labels: above(row, names, (k) => thresholds[names[k]] ?? DEFAULT_THRESHOLD),
      scores: Object.fromEntries(names.map((name, k) => [name, Number(row[k])])),
    };
  },
};

export default multilabel;
