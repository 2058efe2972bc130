import { badInput } from '../kernel/errors.ts';
import type { Dim, Model, TensorData, ValueInfo } from '../onnx/ir.ts';
import { buildInferenceModel, softmaxPostprocess, type InferencePostprocess } from '../training/step-graph.ts';
import type { Preprocessing } from './manifest.ts';

/**
 * The fp32 export graph: the training engine's inference model (batch-norm folded, the task's
 * post-processing — softmax `probabilities` for classification) with the logits exposed beside it, the batch axis named `batch`, and labels and
 * preprocessing in metadata_props as JSON strings, so the .onnx file alone is self-describing.
 */

export const BATCH_AXIS = 'batch';
export const INPUT_NAME = 'input';
export const LOGITS_NAME = 'logits';
export const PROBABILITIES_NAME = 'probabilities';

export interface ExportMetadata {
  labels: string[];
  preprocessing: Preprocessing;
  /** Free-form provenance (experiment, run, checkpoint ids); written as `source`. */
  source?: Record<string, string>;
}

/** Metadata keys written into every variant (the manifest repeats them). */
export function exportMetadata(meta: ExportMetadata): Record<string, string> {
  return {
    labels: JSON.stringify(meta.labels),
    preprocessing: JSON.stringify(meta.preprocessing),
    ...(meta.source ? { source: JSON.stringify(meta.source) } : {}),
  };
}

const renameBatch = (v: ValueInfo, from: Dim): ValueInfo => ({
  ...v,
  shape: v.shape?.map((d, i) => (i === 0 && (d === from || d === null || typeof d === 'string') ? BATCH_AXIS : d)),
});

/** The fp32 export graph and what its task's post-processing made (for the manifest's `outputs`). */
export interface Fp32Export {
  model: Model;
  /** The output predict, evaluation and validation read. */
  primary: string;
  /** The task's outputs after `logits`, primary first, with their descriptions. */
  outputs: { name: string; description: string }[];
}

/**
 * Builds the export graph with the task's post-processing `post` (softmax probabilities by
 * default: classification). Graph outputs: `logits`, then the task's outputs, primary first.
 */
export function buildFp32ExportOf(model: Model, params: Record<string, TensorData>, meta: ExportMetadata, post: InferencePostprocess = softmaxPostprocess): Fp32Export {
  let made: ReturnType<InferencePostprocess> | null = null;
  let raw = '';
  const inference = buildInferenceModel(model, params, (b, r) => {
    raw = r;
    made = post(b, r);
    return made;
  });
  const appended = made as ReturnType<InferencePostprocess> | null;
  if (!appended) throw badInput('the inference model has no post-processing');
  const g = inference.graph;
  if (g.inputs.length !== 1) throw badInput(`an exported model needs one input, found ${g.inputs.length}`);
  if (g.inputs[0].name !== INPUT_NAME) throw badInput(`the model's input is '${g.inputs[0].name}', the export contract needs '${INPUT_NAME}'`);
  if (raw !== LOGITS_NAME) throw badInput(`export needs the raw output '${LOGITS_NAME}', the model gives '${raw}'`);
  const first = g.outputs[0];
  const numClasses = first?.shape?.[first.shape.length - 1];
  if (typeof numClasses !== 'number') throw badInput('the logits need a static output dimension');
  if (meta.labels.length !== numClasses) throw badInput(`${meta.labels.length} labels for a model with ${numClasses} classes`);
  const taken = new Set([LOGITS_NAME]);
  for (const o of g.outputs) {
    if (taken.has(o.name)) throw badInput(`the post-processing output '${o.name}' clashes with another output`);
    taken.add(o.name);
  }
  const described = new Map(appended.outputs.map((o) => [o.name, o.description]));
  const batchDim = g.inputs[0].shape?.[0] ?? null;
  const exported: Model = {
    ...inference,
    producerName: 'ai-studio',
    graph: {
      ...g,
      inputs: g.inputs.map((v) => renameBatch(v, batchDim)),
      outputs: [LOGITS_NAME, ...g.outputs.map((o) => o.name)].map((name) => ({ name, dtype: 'float32' as const, shape: [BATCH_AXIS, numClasses] })),
      // intermediate shapes were inferred with the old batch name; the runtime re-infers them
      valueInfo: [],
    },
    metadata: { ...inference.metadata, ...exportMetadata(meta), variant: 'fp32' },
  };
  return {
    model: exported,
    primary: appended.primary,
    outputs: g.outputs.map((o) => ({ name: o.name, description: described.get(o.name) ?? '' })),
  };
}

/** The classification export graph (softmax `probabilities`); see buildFp32ExportOf for any task. */
export function buildFp32Export(model: Model, params: Record<string, TensorData>, meta: ExportMetadata, post?: InferencePostprocess): Model {
  const built = buildFp32ExportOf(model, params, meta, post);
  if (!post && built.primary !== PROBABILITIES_NAME) throw badInput(`export needs the output '${PROBABILITIES_NAME}', the model gives '${built.primary}'`);
  return built.model;
}
