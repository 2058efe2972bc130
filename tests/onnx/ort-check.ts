import { cloneModel } from '../../src/onnx/graph-utils.ts';
import type { Dim, Model, TensorData } from '../../src/onnx/ir.ts';
import { inferShapes, type InferOptions } from '../../src/onnx/shape-inference.ts';
import { createSession } from '../../src/runtime/session.ts';

export interface ShapeMismatch { value: string; inferred: Dim[] | string; actual: number[]; why: string }

/**
 * Runs `model` in onnxruntime with every node output exposed as a graph output and compares each
 * value's dtype and dims with inferShapes. A symbolic dim must map to one size consistently.
 * Returns the contradictions, the values with some dim left unknown (null), and how many values
 * were compared.
 */
export async function compareWithOrt(model: Model, feeds: Record<string, TensorData>, opts: InferOptions = {}) {
  const inferred = inferShapes(model.graph, opts);
  const probe = cloneModel(model);
  const declared = new Set(probe.graph.outputs.map((o) => o.name));
  const mismatches: ShapeMismatch[] = [];
  for (const n of probe.graph.nodes) {
    for (const o of n.outputs) {
      if (o === '' || declared.has(o)) continue;
      const info = inferred.get(o);
      if (!info) {
        mismatches.push({ value: o, inferred: 'missing', actual: [], why: `${n.opType} output not inferred` });
        continue;
      }
      declared.add(o);
      // dtype goes into the declared output: onnxruntime refuses the model if it is wrong.
      probe.graph.outputs.push({ name: o, dtype: info.dtype });
    }
  }
  probe.graph.valueInfo = [];
  const s = await createSession(probe, { threads: 1, graphOptimization: 'disabled' });
  const out = await s.run(feeds);
  await s.release();
  const binding = new Map<string, number>();
  let compared = 0;
  const unknown: string[] = [];
  for (const [name, t] of Object.entries(out)) {
    const info = inferred.get(name);
    if (!info) continue;
    compared++;
    if (info.shape.includes(null)) unknown.push(name);
    const why = dimsMismatch(info.shape, t.dims, binding);
    if (why || info.dtype !== t.dtype) mismatches.push({ value: name, inferred: info.shape, actual: t.dims, why: why ?? `dtype ${info.dtype} vs ${t.dtype}` });
  }
  return { mismatches, compared, unknown, inferred };
}

function dimsMismatch(inf: Dim[], actual: number[], binding: Map<string, number>): string | undefined {
  if (inf.length !== actual.length) return 'rank';
  for (let i = 0; i < inf.length; i++) {
    const d = inf[i];
    if (d === null) continue;
    if (typeof d === 'number' && d !== actual[i]) return `dim ${i}`;
    if (typeof d === 'string') {
      const b = binding.get(d);
      if (b === undefined) binding.set(d, actual[i]);
      else if (b !== actual[i]) return `symbol ${d} is ${b} elsewhere`;
    }
  }
  return undefined;
}
