import os from 'node:os';
import { badInput } from '../core/errors.ts';
import type { Model, TensorData } from '../onnx/ir.ts';
import { createSession, type Session } from '../runtime/session.ts';
import type { DatasetFile } from '../schemas/dataset.ts';
import { evalTransform, loadBatches, type LoaderItem } from '../training/data/loader.ts';
import type { Normalization } from '../training/data/tensor.ts';
import { buildInferenceModel } from '../training/step-graph.ts';
import { aggregate } from './metrics/aggregate.ts';
import type { AggregateMetrics } from './metrics/schema.ts';
import { EvaluatedSubsetSchema, type ResultRecord } from './results.ts';

/**
 * The evaluation engine: a checkpoint's parameters baked into the inference model export writes
 * (`buildInferenceModel`: batch-norm folded, softmax probabilities), fed batches made by the same
 * eval transform as training's validation, so an exported model reproduces every prediction here.
 * Test-time augmentation averages the probabilities of each image and its horizontal mirror.
 */

export type EvaluatedSubset = ResultRecord['subset'];

/** An image chosen for evaluation, before its file is resolved. */
export interface EvalCandidate {
  image_id: string;
  /** Dataset-relative, as dataset.json has it. */
  file: string;
  subset: EvaluatedSubset;
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
  /** Images that cannot be evaluated at all (their label is not one of the model's classes). */
  problems: EvalProblem[];
  /** Images per requested subset, labelled with a known class. */
  counts: Record<string, number>;
  /** Images of the subsets without a label (nothing to compare a prediction with): left out. */
  unlabelled: number;
}

/**
 * The labelled images of `subsets` in the split column `splitName`, in dataset order. Their labels
 * are mapped to the model's class indices (`classes`, the run's); an unknown label is a problem.
 */
export function selectItems(ds: DatasetFile, splitName: string, subsets: readonly string[], classes: readonly string[]): Selection {
  const col = ds.split_names.indexOf(splitName);
  if (col < 0) throw badInput(`the dataset no longer has the split '${splitName}'`);
  const wanted = new Set(subsets);
  const index = new Map(classes.map((c, i) => [c, i]));
  const counts: Record<string, number> = Object.fromEntries(subsets.map((s) => [s, 0]));
  const items: EvalCandidate[] = [];
  const problems: EvalProblem[] = [];
  let unlabelled = 0;
  for (const img of ds.images) {
    const subset = img.split[col];
    if (!wanted.has(subset)) continue;
    const parsed = EvaluatedSubsetSchema.safeParse(subset);
    if (!parsed.success) continue;
    if (img.label === null) {
      unlabelled += 1;
      continue;
    }
    const labelIndex = index.get(img.label);
    if (labelIndex === undefined) {
      problems.push({ image_id: img.id, file: img.file, reason: `label '${img.label}' is not one of the model's classes` });
      continue;
    }
    counts[subset] += 1;
    items.push({ image_id: img.id, file: img.file, subset: parsed.data, labelIndex });
  }
  return { items, problems, counts, unlabelled };
}

/** Class probabilities for batches of normalized images, from the inference model. */
export interface Predictor {
  readonly numClasses: number;
  /** `input` is [n, 3, size, size]; returns row-major [n, C] probabilities. */
  predict(input: Float32Array, n: number, size: number): Promise<Float32Array>;
  release(): Promise<void>;
}

export async function createPredictor(model: Model, params: Record<string, TensorData>, opts: { threads?: number } = {}): Promise<Predictor> {
  const inference = buildInferenceModel(model, params);
  const out = inference.graph.outputs[0];
  const c = out?.shape?.[out.shape.length - 1];
  if (typeof c !== 'number') throw badInput('the model needs a static class dimension');
  const inputName = inference.graph.inputs.filter((v) => !inference.graph.initializers.has(v.name))[0]?.name;
  if (!inputName) throw badInput('the model has no image input');
  const session: Session = await createSession(inference, { threads: opts.threads ?? os.availableParallelism() });
  return {
    numClasses: c,
    async predict(input, n, size) {
      const res = await session.run({ [inputName]: { dtype: 'float32', dims: [n, 3, size, size], data: input } }, [out.name]);
      const probs = res[out.name].data;
      if (!(probs instanceof Float32Array) || probs.length !== n * c) throw badInput(`the model gave ${probs.length} values for ${n} images × ${c} classes`);
      // the runtime may reuse its output buffer; the caller keeps these
      return probs.slice();
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

export interface EvaluationInput {
  model: Model;
  /** The checkpoint's parameters and batch-norm statistics, written over the model's initializers. */
  params: Record<string, TensorData>;
  /** Class names in class-index order (the run's). */
  labels: readonly string[];
  items: readonly EvalItem[];
  size: number;
  normalization: Normalization;
  batchSize: number;
  tta: boolean;
  threads?: number;
  signal?: AbortSignal;
  onProgress?(done: number, total: number): void;
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

export const TOP_K = 5;

export async function runEvaluation(input: EvaluationInput): Promise<EvaluationOutput> {
  const { items, labels, size } = input;
  if (items.length === 0) throw badInput('there are no images to evaluate');
  const predictor = await createPredictor(input.model, input.params, { threads: input.threads });
  try {
    const c = predictor.numClasses;
    if (c !== labels.length) throw badInput(`the model has ${c} classes, the run lists ${labels.length}`);
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
      let probs = await predictor.predict(b.input, n, size);
      if (input.tta) {
        const mirrored = await predictor.predict(flipHorizontal(b.input, n, size), n, size);
        probs = probs.map((p, j) => (p + mirrored[j]) / 2);
      }
      b.indices.forEach((index, slot) => {
        rows.set(probs.subarray(slot * c, (slot + 1) * c), index * c);
        done[index] = 1;
      });
      seen += n + b.skipped.length;
      input.onProgress?.(seen, items.length);
    }

    const kept: number[] = [];
    for (let i = 0; i < items.length; i++) if (done[i]) kept.push(i);
    if (kept.length === 0) throw badInput(`none of the ${items.length} images could be read`);
    const probs = new Float32Array(kept.length * c);
    const targets = new Int32Array(kept.length);
    const records: ResultRecord[] = kept.map((i, r) => {
      const row = rows.subarray(i * c, (i + 1) * c);
      for (let j = 0; j < c; j++) probs[r * c + j] = clampUnit(row[j]);
      targets[r] = items[i].labelIndex;
      const top = topK(row, labels, TOP_K);
      return {
        image_id: items[i].image_id,
        file: items[i].file,
        subset: items[i].subset,
        label: labels[items[i].labelIndex],
        predicted: top[0].label,
        confidence: top[0].score,
        correct: top[0].label === labels[items[i].labelIndex],
        top_k: top,
      };
    });
    return { records, probs, targets, aggregate: aggregate({ probs, targets, labels }), problems };
  } finally {
    await predictor.release();
  }
}

/** float32 softmax can round a hair past 1; the stored records (and the schema) stay in [0, 1]. */
function clampUnit(v: number): number {
  return Math.min(Math.max(v, 0), 1);
}
