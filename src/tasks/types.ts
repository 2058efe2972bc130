import type { z } from 'zod';
import type { HeadBuilder } from '../models/index.ts';
import type { GraphBuilder } from '../onnx/builder.ts';
import type { TensorData } from '../onnx/ir.ts';
import type { ImageRecord } from '../schemas/dataset.ts';
import type { Hyperparameters, MetricsLine, Warning } from '../schemas/experiment.ts';
import type { LossSpec } from '../training/losses.ts';

/**
 * The seam every vision task plugs into (DESIGN §8). The generic machinery — the training worker
 * and its epoch loop, the evaluation job, the export job, predict, the pages — asks the task, never
 * tests `task === …`. A task is a folder `src/tasks/<task>/` whose `index.ts` default-exports one
 * `TaskDefinition`, plus one line in `src/tasks/index.ts`.
 *
 * Vocabulary: the model ends in K "outputs" (logits of K classes, or K regression targets); their
 * names (`outputNames`) are a run's `dataset.classes`, the export's `labels`. A "target" is one
 * image's truth as numbers (`number[]`): a class index, a multi-hot row, the raw target values.
 * The task's `state` is what it fits on the training targets once per run (regression's mean and
 * standard deviation, multi-label's positive weights) and stores in the run's config.json.
 */

/** What a task sees of a dataset: its names and its images. */
export interface TaskDataset {
  task: string;
  classes: readonly string[];
  /** Regression's target column names (empty for the other tasks). */
  target_names?: readonly string[];
  images: readonly ImageRecord[];
}

/** One per-epoch metric a task reports (`val_map`, `val_mae`, …) and how to rank it. */
export interface EpochMetricInfo {
  /** Key in the metrics line's `metrics` map and in `early_stopping.metric`; `val_` prefixed. */
  key: string;
  label: string;
  higher_is_better: boolean;
  /** How pages print it. */
  format: 'percent' | 'number';
}

/** Scores outputs of an epoch (train or val) against their targets; the loss is the plain, unweighted one. */
export interface EpochScorer {
  /** `outputs` are the model's raw outputs [n, K] (logits); `targets` the n images' targets. */
  add(outputs: Float32Array, targets: readonly (readonly number[])[]): void;
  /**
   * Mean loss over the images added (null when none), the task's metrics (null where undefined),
   * and optional diagnostics of the predictions (stored with validation's line, read by `runWarnings`).
   */
  result(): { loss: number | null; metrics: Record<string, number | null>; diagnostics?: Record<string, number | null> };
}

/** The inference graph's outputs a task appends after the raw outputs. */
export interface InferenceOutputs {
  /** The graph output holding what evaluation, validation and predict read ([N, K]). */
  primary: string;
  /** Every appended graph output, in order (the manifest's `outputs` after `logits`). */
  outputs: { name: string; description: string }[];
}

/** A task's evaluation of one set of images. */
export interface TaskEvaluation<Aggregate = unknown, Item = unknown> {
  aggregate: Aggregate;
  /** One per image, in the order given. */
  items: Item[];
}

export interface EvaluationItemInput {
  image_id: string;
  file: string;
  subset: 'train' | 'val' | 'test';
  target: readonly number[];
}

/** The API's `GET /api/tasks` row of a task. */
export interface TaskInfo {
  name: string;
  title: string;
  description: string;
  sources: string[];
  losses: string[];
  default_loss: string;
  epoch_metrics: EpochMetricInfo[];
  evaluation_metrics: string[];
}

export interface TaskDefinition<State = unknown, Aggregate = unknown, Item = unknown> {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  /** What its images carry: one `label`, a set of `labels`, or numeric `targets` (the dataset's fields). */
  readonly labelShape: 'single' | 'multi' | 'targets';
  /** Dataset source kinds (`folder`, `zip`, `csv`, `coco`, `yolo`, …) that can feed this task. */
  readonly sources: readonly string[];
  /** The `hyperparameters.loss` choices this task offers; the first is its default. */
  readonly losses: readonly string[];
  /** Per-epoch validation metrics; `bestMetric` picks `best` unless early stopping names another. */
  readonly epochMetrics: readonly EpochMetricInfo[];
  readonly bestMetric: string;
  /** The task-specific hyperparameters it reads, beyond the common ones (the form shows these). */
  readonly hyperparameters?: readonly ('class_weights' | 'pos_weight' | 'label_smoothing' | 'huber_delta')[];
  /** Distinct outputs the training subset must show (classification: 2 classes; regression: 0). */
  readonly minTrainClasses: number;
  /** Names of the evaluation aggregate's top-level metrics (for `GET /api/tasks`). */
  readonly evaluationMetrics: readonly string[];

  // ---- data -----------------------------------------------------------------------------------

  /** The model's output names for a dataset (class names, or regression's target names). */
  outputNames(ds: TaskDataset): string[];
  /** One image's target against `names` (the run's outputs), or null: it takes no part. */
  target(img: ImageRecord, names: readonly string[]): number[] | null;
  /** Why a labelled image cannot be used with `names` (e.g. an unknown label), or null. */
  problem(img: ImageRecord, names: readonly string[]): string | null;

  // ---- training -------------------------------------------------------------------------------

  /**
   * The head the task attaches to the backbone's features (src/models/head.ts); absent: the linear
   * head the catalog and the import build, which classification, multi-label and regression use.
   */
  readonly head?: HeadBuilder;

  /** Zod schema of the stored state (config.json's `task_state`). */
  readonly stateSchema: z.ZodType<State>;
  /** What the run fits on its training targets, once. */
  fitState(train: readonly (readonly number[])[], names: readonly string[], h: Hyperparameters): State;
  /** The loss over the raw outputs [N, K]; its target tensor is what `collate` makes. */
  loss(h: Hyperparameters, state: State, outputCount: number): LossSpec;
  /** The loss's target tensor for a batch. */
  collate(targets: readonly (readonly number[])[], state: State, outputCount: number): TensorData;
  scorer(state: State, outputCount: number): EpochScorer;

  // ---- inference, evaluation, export, predict -------------------------------------------------

  /**
   * Appends the post-processing after `raw` ([N, K]) in the inference graph (softmax, sigmoid,
   * de-standardising); `buildInferenceModel(model, params, (b, raw) => task.appendInference(b, raw, state, k))`.
   * Output shapes are [N, K] like the raw outputs.
   */
  appendInference(b: GraphBuilder, raw: string, state: State, outputCount: number): InferenceOutputs;
  /** Evaluates rows of the primary inference output ([n, K], row-major) against their targets. */
  evaluate(outputs: Float32Array, items: readonly EvaluationItemInput[], names: readonly string[], state: State): TaskEvaluation<Aggregate, Item>;
  readonly aggregateSchema: z.ZodType<Aggregate>;
  readonly itemSchema: z.ZodType<Item>;
  /**
   * Compares an export variant's primary outputs with the eval graph's on the same images:
   * the task's headline metric on both (e.g. accuracy, mAP, MAE) and the agreement of their decisions.
   */
  exportMetric(outputs: Float32Array, targets: readonly (readonly number[])[], names: readonly string[], state: State): { name: string; value: number | null };
  /**
   * The manifest's `postprocessing` object. `reference` holds the eval graph's primary outputs on
   * the export's validation images and their targets (multi-label picks its thresholds there).
   */
  manifestPostprocessing(state: State, names: readonly string[], primary: string, reference: { outputs: Float32Array; targets: readonly (readonly number[])[] }): Record<string, unknown>;
  /**
   * What makes a run's result not what it seems, from its metrics lines (e.g. every validation
   * image predicted as one class, a metric no better than a trivial baseline), each with what to try.
   */
  runWarnings?(lines: readonly MetricsLine[], names: readonly string[]): Warning[];
  /** The same for an evaluation's aggregate. */
  evaluationWarnings?(aggregate: Aggregate, names: readonly string[]): Warning[];
  /**
   * How the evaluation page shows this task (its partials in views/tasks/<task>/); absent:
   * classification's own board (views/fragments/evaluation-*.eta).
   */
  readonly evaluationPage?: TaskEvaluationPage<Aggregate, Item>;
  /** Predict's answer for one image's primary output row. */
  predict(row: Float32Array, names: readonly string[], postprocessing: Record<string, unknown>, opts: { topK: number }): unknown;

  // ---- evaluation results ---------------------------------------------------------------------

  /** How the evaluation's per-image records are queried and exported (src/tasks/<task>/results.ts). */
  readonly results: TaskResults<Item>;
}

// ---- evaluation results ---------------------------------------------------------------------------

/** The paging every results query has (`page` 1-based). */
export interface ResultsPage {
  page: number;
  page_size: number;
}

/**
 * A task's side of `GET …/evaluation/results` and `results.csv`: the query string it accepts
 * (strict — a filter of another task is a VALIDATION_ERROR naming it), the filter/sort/page over
 * its records, and its CSV columns.
 */
export interface TaskResults<Item = unknown, Query extends ResultsPage = any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The query string's schema (values arrive as strings); `page`, `page_size` and `sort` defaulted. */
  readonly querySchema: z.ZodType<Query>;
  /** Filter, sort and page. */
  query(items: readonly Item[], q: Query): { items: Item[]; total: number };
  /** The CSV export, one CRLF-ended line at a time, header first; `names` are the run's outputs. */
  csvLines(items: readonly Item[], names: readonly string[]): Generator<string>;
}

/** The evaluation page's view of a task's aggregate and records (src/tasks/<task>/page.ts). */
export interface TaskEvaluationPage<Aggregate, Item> {
  /** The experiment list's figure: "mAP 92.1%". */
  headline(a: Aggregate): { value: string; title: string };
  /** The metrics section (views/tasks/<task>/evaluation-metrics.eta); `names` lists the outputs. */
  board(a: Aggregate, images: number): Record<string, unknown> & { names: string[] };
  /** A grid tile's fields (views/tasks/<task>/evaluation-results.eta). */
  tile(item: Item): Record<string, unknown>;
  /** A result's detail (views/tasks/<task>/evaluation-detail.eta) and its title. */
  detail(item: Item): Record<string, unknown> & { title: string };
  /** The page's filters this task's results query takes, and its sorts (the first is its default). */
  readonly filters: readonly string[];
  readonly sorts: readonly { value: string; label: string }[];
  /** What a click on a result shows ("its labels and scores"). */
  readonly hint: string;
}

export type AnyTask = TaskDefinition<any, any, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
