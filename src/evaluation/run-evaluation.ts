import os from 'node:os';
import { badInput, conflict, validation } from '../kernel/errors.ts';
import type { Model, TensorData } from '../onnx/ir.ts';
import { createSession, type Session } from '../runtime/session.ts';
import type { DatasetFile } from '../schemas/dataset.ts';
import { evalTransform, loadBatches, type LoaderItem } from '../training/data/loader.ts';
import type { Normalization } from '../training/data/tensor.ts';
import { buildInferenceModel } from '../training/step-graph.ts';
import type { AggregateMetrics } from './metrics/schema.ts';
import { EvaluatedSubsetSchema, type ResultRecord } from './results.ts';
import { getTask, type RunTask } from '../tasks/index.ts';

/**
 * The evaluation engine, generic over the run's task: a checkpoint's parameters baked into the
 * inference model export writes (`buildInferenceModel`: batch-norm folded, the task's
 * post-processing — softmax, sigmoid, de-standardising — appended), fed batches made by the same
 * eval transform as training's validation, so an exported model reproduces every prediction here.
 * The task selects the images (`target`/`problem`) and turns the primary outputs into its aggregate
 * and per-image records (`evaluate`). Test-time augmentation averages the primary outputs of each
 * image and its horizontal mirror, whatever the task.
 */

export type EvaluatedSubset = ResultRecord['subset'];

/** An image chosen for evaluation, before its file is resolved. */
export interface EvalCandidate {
  image_id: string;
  /** Dataset-relative, as dataset.json has it. */
  file: string;
  subset: EvaluatedSubset;
  /** The image's target as the task makes it (classification: [class index]). */
  target?: number[];
  /** Classification's class index (target[0]); 0 for the other tasks (the loader needs a number). */
  labelIndex: number;
}

export interface EvalItem extends EvalCandidate {
  /** Absolute path of the image file. */
  path: string;
}

export interface EvalProblem {
  image_id: string;
  file: string;
  reason: string;
}

export interface Selection {
  items: EvalCandidate[];
  /** Images that cannot be evaluated at all (e.g. their label is not one of the model's classes). */
  problems: EvalProblem[];
  /** Images per requested subset with a usable target. */
  counts: Record<string, number>;
  /** Images of the subsets without a label (nothing to compare a prediction with): left out. */
  unlabelled: number;
}

/** What selection and evaluation need of a run's task: the definition, its fitted state, the output names. */
export type EvalTask = Pick<RunTask, 'task' | 'state' | 'names'>;

/** Classification over `classes`, for callers that predate tasks (a plain list of class names). */
export function classificationTask(classes: readonly string[]): EvalTask {
  return { task: getTask('classification'), state: { class_weights: null }, names: [...classes] };
}

/**
 * The labelled images of `subsets` in the split column `splitName` (null: every image of the
 * dataset, counted as `test` — another dataset than the run's), in dataset order, with their
 * targets as the run's task makes them against the run's output names. An image the task cannot
 * use (`problem`: an unknown label, a wrong number of target values) is a problem; one it has no
 * target for is unlabelled. A plain list of class names means classification.
 */
export function selectItems(ds: DatasetFile, splitName: string | null, subsets: readonly string[], run: readonly string[] | EvalTask): Selection {
  const col = splitName === null ? -1 : ds.split_names.indexOf(splitName);
  if (splitName !== null && col < 0) throw badInput(`the dataset no longer has the split '${splitName}'`);
  const { task, names } = isEvalTask(run) ? run : classificationTask(run);
  const wanted = new Set(subsets);
  const counts: Record<string, number> = Object.fromEntries(subsets.map((s) => [s, 0]));
  const items: EvalCandidate[] = [];
  const problems: EvalProblem[] = [];
  let unlabelled = 0;
  for (const img of ds.images) {
    const subset = col < 0 ? 'test' : img.split[col];
    if (!wanted.has(subset)) continue;
    const parsed = EvaluatedSubsetSchema.safeParse(subset);
    if (!parsed.success) continue;
    const problem = task.problem(img, names);
    if (problem !== null) {
      problems.push({ image_id: img.id, file: img.file, reason: problem });
      continue;
    }
    const target = task.target(img, names);
    if (target === null) {
      unlabelled += 1;
      continue;
    }
    counts[subset] += 1;
    items.push({ image_id: img.id, file: img.file, subset: parsed.data, target, labelIndex: task.name === 'classification' ? target[0] : 0 });
  }
  return { items, problems, counts, unlabelled };
}

/** What a run's outputs are called in a message: classes, labels or targets (by what the task's images carry). */
export function outputsWord(task: EvalTask['task']): string {
  return task.labelShape === 'targets' ? 'targets' : task.labelShape === 'multi' ? 'labels' : 'classes';
}

/**
 * A dataset other than the one a run trains on, used whole — evaluated (`POST …/evaluation` with
 * `dataset_id`), or as an experiment's validation or test set (`val_dataset_id`, `test_dataset_id`):
 * its images with a target of the run's outputs, every one counted as `test`. Refused when it is
 * not ready (409: still importing, or a failed import), of another task (400), when its target
 * columns are not the run's (400; a task whose images carry target values reads them by position),
 * or when none of its images has a target of the run's outputs (400, with the first problem).
 * Images with a label the run does not know are the selection's `problems`.
 *
 * `field` prefixes the messages (`dataset_id`, `val_dataset_id`); `use` ends them ("evaluated");
 * `owner` names whose outputs they are ("the run", "the training dataset").
 */
export function otherDatasetSelection(ds: DatasetFile, run: EvalTask, opts: { field: string; use: string; owner: string }): Selection {
  const { task, names } = run;
  if (ds.status !== 'ready') throw conflict(`${opts.field}: the dataset '${ds.name}' is ${ds.status === 'importing' ? 'still importing' : 'a failed import'}: it cannot be ${opts.use}`);
  if (ds.task !== task.name) throw validation(`${opts.field}: the dataset '${ds.name}' is a ${ds.task} dataset, not ${task.name}`);
  if (task.labelShape === 'targets') {
    const theirs = task.outputNames(ds);
    if (theirs.length !== names.length || theirs.some((n, i) => n !== names[i])) {
      throw validation(`${opts.field}: the dataset '${ds.name}' has the targets (${theirs.join(', ')}), ${opts.owner}'s are (${names.join(', ')}): they must be the same, in the same order`);
    }
  }
  const sel = selectItems(ds, null, ['test'], run);
  if (sel.counts.test === 0) {
    const why = sel.problems.length > 0 ? `: ${sel.problems.length} of its images have labels ${opts.owner} does not know (e.g. ${sel.problems[0].reason})` : '';
    throw validation(`${opts.field}: the dataset '${ds.name}' has no image labelled with ${opts.owner}'s ${outputsWord(task)}${why}`);
  }
  return sel;
}

function isEvalTask(run: readonly string[] | EvalTask): run is EvalTask {
  return !Array.isArray(run);
}

/** The task's primary inference output for batches of normalized images. */
export interface Predictor {
  /** K: the outputs per image (classes, labels or targets). */
  readonly numClasses: number;
  /** `input` is [n, 3, size, size]; returns the row-major [n, K] primary output. */
  predict(input: Float32Array, n: number, size: number): Promise<Float32Array>;
  release(): Promise<void>;
}

/**
 * The predictor of a model with `task`'s post-processing (classification's softmax when none is
 * given). The graph's first output is the primary one (`buildInferenceModel` puts it first).
 */
export async function createPredictor(model: Model, params: Record<string, TensorData>, opts: { threads?: number; task?: EvalTask } = {}): Promise<Predictor> {
  const run = opts.task;
  const inference = run ? buildInferenceModel(model, params, (b, raw) => run.task.appendInference(b, raw, run.state, run.names.length)) : buildInferenceModel(model, params);
  const out = inference.graph.outputs[0];
  const c = out?.shape?.[out.shape.length - 1];
  if (typeof c !== 'number') throw badInput('the model needs a static output dimension');
  const inputName = inference.graph.inputs.filter((v) => !inference.graph.initializers.has(v.name))[0]?.name;
  if (!inputName) throw badInput('the model has no image input');
  const session: Session = await createSession(inference, { threads: opts.threads ?? os.availableParallelism() });
  return {
    numClasses: c,
    async predict(input, n, size) {
      const res = await session.run({ [inputName]: { dtype: 'float32', dims: [n, 3, size, size], data: input } }, [out.name]);
      const rows = res[out.name].data;
      if (!(rows instanceof Float32Array) || rows.length !== n * c) throw badInput(`the model gave ${rows.length} values for ${n} images × ${c} outputs`);
      // the runtime may reuse its output buffer; the caller keeps these
      return rows.slice();
    },
    release: () => session.release(),
  };
}

/** [n, 3, size, size] mirrored left-right (the last axis reversed). */
export function flipHorizontal(input: Float32Array, n: number, size: number): Float32Array {
  const out = new Float32Array(input.length);
  const rows = n * 3 * size;
  for (let r = 0; r < rows; r++) {
    const base = r * size;
    for (let x = 0; x < size; x++) out[base + x] = input[base + size - 1 - x];
  }
  return out;
}

/** The `k` best classes of one probability row, best first; ties to the lower class index. */
export function topK(row: ArrayLike<number>, labels: readonly string[], k: number): { label: string; score: number }[] {
  const order = Array.from({ length: labels.length }, (_, i) => i).sort((a, b) => row[b] - row[a] || a - b);
  return order.slice(0, Math.min(k, labels.length)).map((i) => ({ label: labels[i], score: clampUnit(row[i]) }));
}

interface EvaluationInputBase {
  model: Model;
  /** The checkpoint's parameters and batch-norm statistics, written over the model's initializers. */
  params: Record<string, TensorData>;
  items: readonly EvalItem[];
  size: number;
  normalization: Normalization;
  batchSize: number;
  tta: boolean;
  threads?: number;
  signal?: AbortSignal;
  onProgress?(done: number, total: number): void;
}

export interface EvaluationInput extends EvaluationInputBase {
  /** Class names in class-index order (the run's). */
  labels: readonly string[];
}

export interface EvaluationOutput {
  /** One per evaluated image, in dataset order. */
  records: ResultRecord[];
  /** Row-major [records.length, C] probabilities, in the order of `records`. */
  probs: Float32Array;
  targets: Int32Array;
  aggregate: AggregateMetrics;
  /** Images that could not be read or decoded; the rest were evaluated. */
  problems: EvalProblem[];
}

export interface TaskEvaluationInput extends EvaluationInputBase {
  task: EvalTask;
}

export interface TaskEvaluationOutput {
  /** The task's records, one per evaluated image, in dataset order. */
  items: unknown[];
  aggregate: unknown;
  /** Row-major [items.length, K] primary outputs (TTA-averaged), in the order of `items`. */
  outputs: Float32Array;
  targets: number[][];
  problems: EvalProblem[];
}

export const TOP_K = 5;

/** Evaluates `items` with the run's task: its inference outputs, its aggregate and records. */
export async function runTaskEvaluation(input: TaskEvaluationInput): Promise<TaskEvaluationOutput> {
  const { items, size, task: run } = input;
  if (items.length === 0) throw badInput('there are no images to evaluate');
  const predictor = await createPredictor(input.model, input.params, { threads: input.threads, task: run });
  try {
    const c = predictor.numClasses;
    if (c !== run.names.length) throw badInput(`the model has ${c} outputs, the run lists ${run.names.length}`);
    // Results are kept by item index so the output is in dataset order whatever the batch order.
    const rows = new Float32Array(items.length * c);
    const done = new Uint8Array(items.length);
    const problems: EvalProblem[] = [];
    const loaderItems: LoaderItem[] = items.map((it) => ({ path: it.path, labelIndex: it.labelIndex, id: it.image_id }));
    const byId = new Map(items.map((it) => [it.image_id, it]));
    let seen = 0;
    for await (const b of loadBatches({
      items: loaderItems,
      batchSize: input.batchSize,
      size,
      normalization: input.normalization,
      transform: evalTransform(size),
      seed: 0,
      epoch: 0,
      shuffle: false,
      dropLast: false,
      signal: input.signal,
      onWarning: (w) => {
        const it = byId.get(w.id);
        problems.push({ image_id: w.id, file: it?.file ?? w.path, reason: w.message });
      },
    })) {
      const n = b.indices.length;
      let out = await predictor.predict(b.input, n, size);
      if (input.tta) {
        const mirrored = await predictor.predict(flipHorizontal(b.input, n, size), n, size);
        out = out.map((p, j) => (p + mirrored[j]) / 2);
      }
      b.indices.forEach((index, slot) => {
        rows.set(out.subarray(slot * c, (slot + 1) * c), index * c);
        done[index] = 1;
      });
      seen += n + b.skipped.length;
      input.onProgress?.(seen, items.length);
    }

    const kept: number[] = [];
    for (let i = 0; i < items.length; i++) if (done[i]) kept.push(i);
    if (kept.length === 0) throw badInput(`none of the ${items.length} images could be read`);
    const outputs = new Float32Array(kept.length * c);
    kept.forEach((i, r) => outputs.set(rows.subarray(i * c, (i + 1) * c), r * c));
    const evalItems = kept.map((i) => {
      const it = items[i];
      return { image_id: it.image_id, file: it.file, subset: it.subset, target: it.target ?? [it.labelIndex] };
    });
    const evaluated = run.task.evaluate(outputs, evalItems, run.names, run.state);
    return { items: evaluated.items, aggregate: evaluated.aggregate, outputs, targets: evalItems.map((it) => it.target), problems };
  } finally {
    await predictor.release();
  }
}

/** Classification's evaluation (the shape it had before tasks): records, probabilities and class targets. */
export async function runEvaluation(input: EvaluationInput): Promise<EvaluationOutput> {
  const { labels, ...rest } = input;
  const out = await runTaskEvaluation({ ...rest, task: classificationTask(labels) });
  const probs = out.outputs.map(clampUnit);
  const targets = Int32Array.from(out.targets, (t) => t[0]);
  return { records: out.items as ResultRecord[], probs, targets, aggregate: out.aggregate as AggregateMetrics, problems: out.problems };
}

/** float32 softmax can round a hair past 1; the stored records (and the schema) stay in [0, 1]. */
function clampUnit(v: number): number {
  return Math.min(Math.max(v, 0), 1);
}
