import { badInput } from '../core/errors.ts';
import type { Dim, Model, TensorData, ValueInfo } from '../onnx/ir.ts';
import { buildInferenceModel } from '../training/step-graph.ts';
import type { Preprocessing } from './manifest.ts';

/**
 * The fp32 export graph: the training engine's inference model (batch-norm folded, softmax
 * `probabilities`) with the logits exposed beside it, the batch axis named `batch`, and labels and
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

export function buildFp32Export(model: Model, params: Record<string, TensorData>, meta: ExportMetadata): Model {
  const inference = buildInferenceModel(model, params);
  const g = inference.graph;
  if (g.inputs.length !== 1) throw badInput(`an exported classifier needs one input, found ${g.inputs.length}`);
  if (g.inputs[0].name !== INPUT_NAME) throw badInput(`the model's input is '${g.inputs[0].name}', the export contract needs '${INPUT_NAME}'`);
  const softmax = g.nodes.find((n) => n.opType === 'Softmax' && n.outputs[0] === g.outputs[0]?.name);
  if (!softmax) throw badInput('the inference model has no softmax output');
  const probs = g.outputs[0];
  const logits = softmax.inputs[0];
  if (logits !== LOGITS_NAME || probs.name !== PROBABILITIES_NAME) {
    throw badInput(`export needs outputs '${LOGITS_NAME}' and '${PROBABILITIES_NAME}', the model gives '${logits}' and '${probs.name}'`);
  }
  const numClasses = probs.shape?.[probs.shape.length - 1];
  if (typeof numClasses !== 'number') throw badInput('the logits need a static class dimension');
  if (meta.labels.length !== numClasses) throw badInput(`${meta.labels.length} labels for a model with ${numClasses} classes`);
  const batchDim = g.inputs[0].shape?.[0] ?? null;
  return {
    ...inference,
    producerName: 'ai-studio',
    graph: {
      ...g,
      inputs: g.inputs.map((v) => renameBatch(v, batchDim)),
      outputs: [
        { name: LOGITS_NAME, dtype: 'float32', shape: [BATCH_AXIS, numClasses] },
        { name: PROBABILITIES_NAME, dtype: 'float32', shape: [BATCH_AXIS, numClasses] },
      ],
      // intermediate shapes were inferred with the old batch name; the runtime re-infers them
      valueInfo: [],
    },
    metadata: { ...inference.metadata, ...exportMetadata(meta), variant: 'fp32' },
  };
}
