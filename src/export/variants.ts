import { badInput } from '../kernel/errors.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { encodeModel } from '../onnx/codec.ts';
import type { Model, TensorData } from '../onnx/ir.ts';
import { createSession } from '../runtime/session.ts';
import { getTask, type AnyTask } from '../tasks/index.ts';
import { buildEvalGraph, type InferencePostprocess } from '../training/step-graph.ts';
import { calibrateActivations } from './calibrate.ts';
import { getFormat } from './formats/index.ts';
import { buildFp32ExportOf, type ExportMetadata } from './fp32.ts';
import { outputKindOf, validateVariant, valueScales, type OutputKind, type Validation, type Variant } from './validate.ts';

/**
 * Builds the asked-for variants of one checkpoint and validates each against the training
 * engine's eval graph with the task's post-processing, on the same images (eval-transform tensors
 * of the dataset's validation subset), with the task's export metric (accuracy, mAP, MAE, …)
 * beside it when targets are given. A failed validation is returned, not thrown: the export page
 * shows it. Formats come from the registry (src/export/formats/), the post-processing from the
 * run's task (classification's softmax when none is given).
 */

export interface TaskMetric {
  name: string;
  value: number | null;
}

export interface VariantBuild {
  variant: Variant;
  model: Model;
  bytes: Uint8Array;
  validation: Validation;
  /** The task's export metric on the validation images, when targets were given. */
  metric?: TaskMetric;
  /** Top-1 accuracy (classification's metric), when labels were given. */
  accuracy?: number;
}

export interface BuildVariantsInput {
  model: Model;
  params: Record<string, TensorData>;
  meta: ExportMetadata;
  variants: Variant[];
  /** Validation images as eval-transform batches [n,3,H,W]; also the int8 calibration set. */
  batches: TensorData[];
  /** Each image's target (task.target()), in batch order. */
  targets?: number[][];
  /** Classification's class index of every image, in batch order (targets [[i]]). */
  labels?: number[];
  /** The run's task and its fitted state (default: classification, no class weights). */
  task?: AnyTask;
  state?: unknown;
  threads?: number;
  onProgress?: (step: string) => void;
}

export interface BuildVariantsResult {
  fp32: Model;
  /** The primary output and the task's outputs (after `logits`), with descriptions. */
  primary: string;
  outputs: { name: string; description: string }[];
  /** The manifest's postprocessing, from the task (multi-label picks its thresholds on the reference). */
  postprocessing: Record<string, unknown>;
  kind: OutputKind;
  reference: {
    /** The eval graph's primary outputs [n, K] (named for classification's probabilities). */
    probabilities: Float32Array;
    metric?: TaskMetric;
    accuracy?: number;
  };
  variants: VariantBuild[];
}

async function runAll(model: Model | Uint8Array, batches: TensorData[], output: string, threads?: number): Promise<Float32Array> {
  const session = await createSession(model, threads === undefined ? {} : { threads });
  try {
    const parts: Float32Array[] = [];
    for (const x of batches) parts.push((await session.run({ input: x }, [output]))[output].data.slice() as Float32Array);
    const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) (out.set(p, at), (at += p.length));
    return out;
  } finally {
    await session.release();
  }
}

/** The eval graph (batch-norm unfolded, as training evaluates) with the task's post-processing; its primary output only. */
function referenceGraph(model: Model, params: Record<string, TensorData>, post: InferencePostprocess): { model: Model; primary: string } {
  const ev = buildEvalGraph(model, params);
  const b = new GraphBuilder(ev.graph);
  const raw = b.graph.outputs[0];
  const made = post(b, raw.name);
  b.graph.outputs = [{ name: made.primary, dtype: 'float32', shape: raw.shape }];
  return { model: ev, primary: made.primary };
}

export async function buildVariants(input: BuildVariantsInput): Promise<BuildVariantsResult> {
  if (input.batches.length === 0) throw badInput('validation needs at least one image batch');
  const count = input.batches.reduce((a, b) => a + b.dims[0], 0);
  const targets = input.targets ?? input.labels?.map((l) => [l]);
  if (targets && targets.length !== count) throw badInput(`${targets.length} targets for ${count} images`);
  const task = input.task ?? getTask('classification');
  const state = input.task ? input.state : (input.state ?? { class_weights: null });
  const names = input.meta.labels;
  const k = names.length;
  const post: InferencePostprocess = (b, raw) => task.appendInference(b, raw, state, k);
  const step = input.onProgress ?? (() => {});
  const metricOf = (outputs: Float32Array): TaskMetric | undefined => (targets ? task.exportMetric(outputs, targets, names, state) : undefined);
  const accuracyOf = (m: TaskMetric | undefined) => (m && m.name === 'accuracy' && m.value !== null ? { accuracy: m.value } : {});

  step('reference');
  const ref = referenceGraph(input.model, input.params, post);
  const reference = await runAll(ref.model, input.batches, ref.primary, input.threads);
  const built = buildFp32ExportOf(input.model, input.params, input.meta, post);
  const fp32 = built.model;
  const postprocessing = task.manifestPostprocessing(state, names, built.primary, { outputs: reference, targets: targets ?? [] });
  const kind = outputKindOf(postprocessing);
  const scale = kind === 'values' ? valueScales(targets ?? [], reference, k) : undefined;

  let ranges: Awaited<ReturnType<typeof calibrateActivations>> | null = null;
  const ctx = {
    batches: input.batches,
    // calibrated once, however many formats ask
    calibrate: async (m: Model) => (ranges ??= await calibrateActivations(m, input.batches.map((x) => ({ input: x })), input.threads)),
  };

  const variants: VariantBuild[] = [];
  for (const variant of input.variants) {
    step(variant);
    const model = await getFormat(variant).build(fp32, ctx);
    const bytes = encodeModel(model);
    // the serialized bytes are what ships, so they are what is validated
    const outputs = await runAll(bytes, input.batches, built.primary, input.threads);
    const metric = metricOf(outputs);
    variants.push({
      variant,
      model,
      bytes,
      validation: validateVariant(variant, reference, outputs, k, kind, scale),
      ...(metric ? { metric } : {}),
      ...accuracyOf(metric),
    });
  }
  const refMetric = metricOf(reference);
  return {
    fp32,
    primary: built.primary,
    outputs: built.outputs,
    postprocessing,
    kind,
    reference: { probabilities: reference, ...(refMetric ? { metric: refMetric } : {}), ...accuracyOf(refMetric) },
    variants,
  };
}
