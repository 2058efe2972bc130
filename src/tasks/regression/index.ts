import { z } from 'zod';
import { badInput, validation } from '../../kernel/errors.ts';
import type { GraphBuilder } from '../../onnx/builder.ts';
import { f32, type TensorData } from '../../onnx/ir.ts';
import { constant } from '../../onnx/ops.ts';
import type { ImageRecord } from '../../schemas/dataset.ts';
import type { Hyperparameters } from '../../schemas/experiment.ts';
import type { LossSpec } from '../../training/losses.ts';
import type { EpochScorer, EvaluationItemInput, InferenceOutputs, TaskDataset, TaskDefinition, TaskEvaluation } from '../types.ts';
import { histogram, meanDefined, scatter, targetMetrics, type TargetMetrics } from './metrics.ts';
import { regressionResults } from './results.ts';
import { regressionPage } from './page.ts';
import { regressionEvaluationWarnings, regressionRunWarnings } from './warnings.ts';

/**
 * Regression: one or a few numbers per image (a size, a count, an age), named by the dataset's
 * `target_names`. The model's K outputs are the K targets, standardised: the run fits each
 * target's mean and standard deviation on its training images (the task state), the loss compares
 * the raw outputs with standardised targets — so one learning rate suits targets in millimetres or
 * in kilograms — and the inference graph undoes it (value = raw·std + mean), so an exported model
 * answers in the target's own units. plan/regression.md defines the metrics.
 */

export const REGRESSION_LOSSES = ['mse', 'l1', 'huber'] as const;
export type RegressionLoss = (typeof REGRESSION_LOSSES)[number];

/** The floor of a fitted standard deviation: a constant target must not divide by zero. */
export const MIN_STD = 1e-6;

// ---- schemas ----------------------------------------------------------------------------------

/**
 * config.json's `task_state`. `loss` and `huber_delta` are the run's loss choice, kept so the epoch
 * scorer (which sees only the state) reports the loss the run trains with; absent (a state written
 * elsewhere) they mean MSE.
 */
export const RegressionStateSchema = z.object({
  mean: z.array(z.number()),
  std: z.array(z.number().positive()),
  loss: z.enum(REGRESSION_LOSSES).optional(),
  huber_delta: z.number().positive().optional(),
});
export type RegressionState = z.infer<typeof RegressionStateSchema>;

const nullableNumber = z.number().nullable();

export const TargetMetricsSchema = z.object({
  mae: nullableNumber,
  rmse: nullableNumber,
  r2: nullableNumber,
  median_ae: nullableNumber,
  max_error: nullableNumber,
  mean_target: nullableNumber,
});

export const RegressionAggregateSchema = z.object({
  /** Top-level numbers: the mean over targets (for one target, that target's). */
  mae: nullableNumber,
  rmse: nullableNumber,
  r2: nullableNumber,
  median_ae: nullableNumber,
  max_error: nullableNumber,
  per_target: z.record(z.string(), TargetMetricsSchema),
  /** Predicted against true, at most 500 points evenly subsampled, per target. */
  scatter: z.record(z.string(), z.object({ true: z.array(z.number()), predicted: z.array(z.number()) })),
  /** Residuals (predicted − true) in ~20 equal bins, per target. */
  residual_histogram: z.record(z.string(), z.object({ edges: z.array(z.number()), counts: z.array(z.number().int().min(0)) })),
});
export type RegressionAggregate = z.infer<typeof RegressionAggregateSchema>;

export const RegressionItemSchema = z.object({
  image_id: z.string(),
  file: z.string(),
  subset: z.enum(['train', 'val', 'test']),
  target: z.record(z.string(), z.number()),
  predicted: z.record(z.string(), z.number()),
  /** predicted − target, per target. */
  error: z.record(z.string(), z.number()),
  /** max |error| over the targets: what the grid sorts by. */
  abs_error: z.number().min(0),
});
export type RegressionItem = z.infer<typeof RegressionItemSchema>;

// ---- helpers ----------------------------------------------------------------------------------

/**
 * The run's loss choice from the hyperparameters. `loss` and `huber_delta` are read defensively:
 * a Hyperparameters value from before those fields existed means the default (MSE, δ = 1).
 */
function lossChoice(h: Hyperparameters): { loss: RegressionLoss; huber_delta: number } {
  const { loss, huber_delta } = h as Hyperparameters & { loss?: unknown; huber_delta?: unknown };
  const name = loss === undefined || loss === null ? REGRESSION_LOSSES[0] : loss;
  if (typeof name !== 'string' || !(REGRESSION_LOSSES as readonly string[]).includes(name)) {
    throw validation(`hyperparameters.loss: '${String(name)}' is not a regression loss (${REGRESSION_LOSSES.join(', ')})`);
  }
  const delta = huber_delta === undefined || huber_delta === null ? 1 : huber_delta;
  if (typeof delta !== 'number' || !(delta > 0) || !Number.isFinite(delta)) {
    throw validation(`hyperparameters.huber_delta: must be a positive number, got ${String(delta)}`);
  }
  return { loss: name as RegressionLoss, huber_delta: delta };
}

function checkState(state: RegressionState, k: number): void {
  if (state.mean.length !== k || state.std.length !== k) {
    throw badInput(`regression state has ${state.mean.length} means and ${state.std.length} standard deviations for ${k} outputs`);
  }
}

/** One element's loss on the standardised scale, as the training graph computes it (PyTorch's definitions). */
function elementLoss(kind: RegressionLoss, delta: number): (d: number) => number {
  switch (kind) {
    case 'mse':
      return (d) => d * d;
    case 'l1':
      return (d) => Math.abs(d);
    case 'huber':
      // HuberLoss(delta): 0.5·d² where |d| ≤ δ, else δ·(|d| − 0.5·δ)
      return (d) => (Math.abs(d) <= delta ? 0.5 * d * d : delta * (Math.abs(d) - 0.5 * delta));
  }
}

/** Splits row-major [n, k] values into k columns. */
function columns(values: ArrayLike<number>, n: number, k: number): Float64Array[] {
  const cols = Array.from({ length: k }, () => new Float64Array(n));
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) cols[j][i] = values[i * k + j];
  return cols;
}

function record<T>(names: readonly string[], f: (name: string, j: number) => T): Record<string, T> {
  return Object.fromEntries(names.map((name, j) => [name, f(name, j)]));
}

function checkRows(outputs: Float32Array, rows: number, k: number, what: string): void {
  if (outputs.length !== rows * k) throw badInput(`${what}: ${outputs.length} values for ${rows} images × ${k} targets`);
}

// ---- the scorer -------------------------------------------------------------------------------

/**
 * An epoch's loss and metrics. Raw outputs are de-standardised to score MAE and R² in the target's
 * units; the loss is the run's loss on the standardised scale (what the training steps report), the
 * mean over every image and target.
 */
class RegressionScorer implements EpochScorer {
  readonly #state: RegressionState;
  readonly #k: number;
  readonly #loss: (d: number) => number;
  #lossSum = 0;
  #n = 0;
  readonly #truth: number[][];
  readonly #pred: number[][];

  constructor(state: RegressionState, k: number) {
    checkState(state, k);
    this.#state = state;
    this.#k = k;
    this.#loss = elementLoss(state.loss ?? 'mse', state.huber_delta ?? 1);
    this.#truth = Array.from({ length: k }, () => []);
    this.#pred = Array.from({ length: k }, () => []);
  }

  add(outputs: Float32Array, targets: readonly (readonly number[])[]): void {
    const k = this.#k;
    checkRows(outputs, targets.length, k, 'regression scorer');
    const { mean, std } = this.#state;
    targets.forEach((t, i) => {
      if (t.length !== k) throw badInput(`regression scorer: a target has ${t.length} values, expected ${k}`);
      for (let j = 0; j < k; j++) {
        const raw = outputs[i * k + j];
        this.#lossSum += this.#loss(raw - (t[j] - mean[j]) / std[j]);
        this.#truth[j].push(t[j]);
        this.#pred[j].push(raw * std[j] + mean[j]);
      }
    });
    this.#n += targets.length;
  }

  result(): { loss: number | null; metrics: Record<string, number | null> } {
    if (this.#n === 0) return { loss: null, metrics: { mae: null, r2: null } };
    const per = this.#truth.map((truth, j) => targetMetrics(truth, this.#pred[j]));
    const loss = this.#lossSum / (this.#n * this.#k);
    return {
      loss: Number.isFinite(loss) ? loss : null,
      metrics: { mae: finiteOrNull(meanDefined(per.map((m) => m.mae))), r2: finiteOrNull(meanDefined(per.map((m) => m.r2))) },
    };
  }
}

/** A diverged run's NaN must reach the metrics line as null, not as NaN (JSON has none). */
function finiteOrNull(x: number | null): number | null {
  return x !== null && Number.isFinite(x) ? x : null;
}

// ---- the definition ---------------------------------------------------------------------------

const TOP_LEVEL = ['mae', 'rmse', 'r2', 'median_ae', 'max_error'] as const;

function evaluate(outputs: Float32Array, items: readonly EvaluationItemInput[], names: readonly string[]): TaskEvaluation<RegressionAggregate, RegressionItem> {
  const k = names.length;
  const n = items.length;
  checkRows(outputs, n, k, 'regression evaluation');
  for (let i = 0; i < outputs.length; i++) {
    if (!Number.isFinite(outputs[i])) {
      throw badInput(`the model's output for image '${items[Math.floor(i / k)].image_id}' is not a finite number (did the run diverge?)`);
    }
  }
  const truthRows = new Float64Array(n * k);
  items.forEach((it, i) => {
    if (it.target.length !== k) throw badInput(`image '${it.image_id}' has ${it.target.length} target values, expected ${k}`);
    for (let j = 0; j < k; j++) truthRows[i * k + j] = it.target[j];
  });
  const truth = columns(truthRows, n, k);
  const pred = columns(outputs, n, k);

  // records built with Object.fromEntries: a target named like an Object.prototype key stays an own field
  const perTarget: Record<string, TargetMetrics> = record(names, (_, j) => targetMetrics(truth[j], pred[j]));
  const scatters = record(names, (_, j) => scatter(truth[j], pred[j]));
  const hists = record(names, (_, j) => histogram(pred[j].map((p, i) => p - truth[j][i])));
  const per = names.map((name) => perTarget[name]);
  const top = Object.fromEntries(TOP_LEVEL.map((m) => [m, meanDefined(per.map((p) => p[m]))])) as Record<(typeof TOP_LEVEL)[number], number | null>;
  const aggregate = RegressionAggregateSchema.parse({ ...top, per_target: perTarget, scatter: scatters, residual_histogram: hists });

  const resultItems = items.map((it, i) => {
    const error = names.map((_, j) => pred[j][i] - truth[j][i]);
    return RegressionItemSchema.parse({
      image_id: it.image_id,
      file: it.file,
      subset: it.subset,
      target: record(names, (_, j) => truth[j][i]),
      predicted: record(names, (_, j) => pred[j][i]),
      error: record(names, (_, j) => error[j]),
      abs_error: error.reduce((m, e) => Math.max(m, Math.abs(e)), 0),
    });
  });
  return { aggregate, items: resultItems };
}

const regression: TaskDefinition<RegressionState, RegressionAggregate, RegressionItem> = {
  name: 'regression',
  title: 'Regression',
  description: 'Predict one or more numbers per image (a size, a count, an age) from CSV target columns.',
  labelShape: 'targets',
  sources: ['csv'],
  losses: REGRESSION_LOSSES,
  epochMetrics: [
    { key: 'val_mae', label: 'Val MAE', higher_is_better: false, format: 'number' },
    { key: 'val_r2', label: 'Val R²', higher_is_better: true, format: 'number' },
  ],
  bestMetric: 'val_mae',
  // a regression run needs no spread of classes, only targets (a constant one still trains: std is floored)
  hyperparameters: ['huber_delta'],
  minTrainClasses: 0,
  evaluationMetrics: TOP_LEVEL,
  runWarnings: (lines) => regressionRunWarnings(lines),
  evaluationWarnings: (aggregate) => regressionEvaluationWarnings(aggregate.r2),
  evaluationPage: regressionPage,
  results: regressionResults,

  outputNames(ds: TaskDataset): string[] {
    return [...(ds.target_names ?? [])];
  },

  target(img, names) {
    const t = img.targets;
    // the schema keeps stored values finite; checked again because a NaN target would poison the fit
    if (t === undefined || t.length !== names.length || !t.every(Number.isFinite)) return null;
    return [...t];
  },

  problem(img, names) {
    const t = img.targets;
    if (t === undefined) return null;
    if (t.length !== names.length) return `it has ${t.length} target value${t.length === 1 ? '' : 's'}, the targets are ${names.length} (${names.join(', ')})`;
    const bad = t.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) return `its value of '${names[bad]}' is not a finite number`;
    return null;
  },

  stateSchema: RegressionStateSchema,

  fitState(train, names, h) {
    const k = names.length;
    const { loss, huber_delta } = lossChoice(h);
    const mean = new Array<number>(k).fill(0);
    const std = new Array<number>(k).fill(1);
    const n = train.length;
    if (n > 0) {
      for (const t of train) {
        if (t.length !== k) throw badInput(`a training target has ${t.length} values, expected ${k}`);
        for (let j = 0; j < k; j++) mean[j] += t[j];
      }
      for (let j = 0; j < k; j++) {
        mean[j] /= n;
        // population standard deviation (divide by n), as a StandardScaler fits it
        let ss = 0;
        for (const t of train) ss += (t[j] - mean[j]) ** 2;
        std[j] = Math.max(Math.sqrt(ss / n), MIN_STD);
      }
    }
    return loss === 'huber' ? { mean, std, loss, huber_delta } : { mean, std, loss };
  },

  loss(h, state, k): LossSpec {
    checkState(state, k);
    const { loss, huber_delta } = lossChoice(h);
    switch (loss) {
      case 'mse':
        return { kind: 'mse' };
      case 'l1':
        // SmoothL1 with β = 0 is plain L1 (PyTorch's definition)
        return { kind: 'smooth_l1', beta: 0 };
      case 'huber':
        return { kind: 'huber', delta: huber_delta };
    }
  },

  collate(targets, state, k): TensorData {
    checkState(state, k);
    const data = new Float32Array(targets.length * k);
    targets.forEach((t, i) => {
      if (t.length !== k) throw badInput(`a target has ${t.length} values, expected ${k}`);
      for (let j = 0; j < k; j++) data[i * k + j] = (t[j] - state.mean[j]) / state.std[j];
    });
    return f32([targets.length, k], data);
  },

  scorer(state, k) {
    return new RegressionScorer(state, k);
  },

  appendInference(b: GraphBuilder, raw: string, state: RegressionState, k: number): InferenceOutputs {
    checkState(state, k);
    // [1, K] constants broadcast over the batch: value = raw · std + mean, in float32 as the graph runs
    const scaled = b.op('Mul', [raw, constant(b, f32([1, k], state.std))]);
    const value = b.fresh('value');
    b.opN('Add', [scaled, constant(b, f32([1, k], state.mean))], {}, [value]);
    return {
      primary: value,
      outputs: [{ name: value, description: 'the predicted values in the targets\' own units; index i is labels[i] (the target names)' }],
    };
  },

  evaluate(outputs, items, names) {
    return evaluate(outputs, items, names);
  },
  aggregateSchema: RegressionAggregateSchema,
  itemSchema: RegressionItemSchema,

  exportMetric(outputs, targets, names) {
    const k = names.length;
    checkRows(outputs, targets.length, k, 'regression export metric');
    if (targets.length === 0) return { name: 'mae', value: null };
    const truth = columns(targets.flatMap((t) => [...t]), targets.length, k);
    const pred = columns(outputs, targets.length, k);
    const per = truth.map((col, j) => targetMetrics(col, pred[j]).mae);
    return { name: 'mae', value: finiteOrNull(meanDefined(per)) };
  },

  manifestPostprocessing(_state, names, primary) {
    return { type: 'regression', values_output: primary, targets: names.map((name) => ({ name })) };
  },

  predict(row, names) {
    if (row.length !== names.length) throw badInput(`predict: ${row.length} outputs for ${names.length} targets`);
    return { values: Object.fromEntries(names.map((name, j) => [name, row[j]])) };
  },
};

export default regression;
