import { badInput } from '../kernel/errors.ts';
import type { Model, TensorData } from '../onnx/ir.ts';
import { inferShapes } from '../onnx/shape-inference.ts';
import { createSession } from '../runtime/session.ts';

/**
 * Activation ranges for static int8 quantization: the fp32 model is run on calibration images
 * with every float activation exposed as an output, and the min/max of each is recorded (the
 * MinMax calibration of onnxruntime's quantizer). Use images of the dataset, through the eval
 * transform: ranges from other inputs clip real activations.
 */

export interface Range {
  min: number;
  max: number;
}
export type ActivationRanges = Map<string, Range>;

/** Float values computed at run time: the graph inputs and every float node output. */
export function activationValues(model: Model): string[] {
  const g = model.graph;
  const types = inferShapes(g);
  const out = g.inputs.filter((v) => v.dtype === 'float32' && !g.initializers.has(v.name)).map((v) => v.name);
  for (const n of g.nodes) for (const o of n.outputs) if (o !== '' && types.get(o)?.dtype === 'float32') out.push(o);
  return out;
}

export async function calibrateActivations(model: Model, batches: readonly Record<string, TensorData>[], threads?: number): Promise<ActivationRanges> {
  if (batches.length === 0) throw badInput('calibration needs at least one batch');
  const inputs = new Set(model.graph.inputs.map((v) => v.name));
  // graph inputs are read from the feeds; a graph cannot also output them
  const values = activationValues(model).filter((v) => !inputs.has(v));
  const outputs = new Set(model.graph.outputs.map((o) => o.name));
  const exposed: Model = {
    ...model,
    graph: {
      ...model.graph,
      outputs: [...model.graph.outputs, ...values.filter((v) => !outputs.has(v)).map((name) => ({ name, dtype: 'float32' as const }))],
    },
  };
  const session = await createSession(exposed, threads === undefined ? {} : { threads });
  const ranges: ActivationRanges = new Map();
  try {
    for (const feeds of batches) {
      const res = { ...(await session.run(feeds, values)), ...feeds };
      for (const v of [...values, ...Object.keys(feeds).filter((k) => inputs.has(k))]) {
        const data = res[v].data as Float32Array;
        const r = ranges.get(v) ?? { min: Infinity, max: -Infinity };
        for (let i = 0; i < data.length; i++) {
          const x = data[i];
          if (x < r.min) r.min = x;
          if (x > r.max) r.max = x;
        }
        ranges.set(v, r);
      }
    }
  } finally {
    await session.release();
  }
  return ranges;
}
