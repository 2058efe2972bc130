import type { Graph } from '../onnx/ir.ts';
import { inferShapes } from '../onnx/shape-inference.ts';
import type { ValueType } from './context.ts';

/** Dtype and shape of every forward value: declared ones first, inferred ones for the rest. */
export function typesOf(graph: Graph): Map<string, ValueType> {
  const types = new Map<string, ValueType>();
  for (const [name, t] of inferShapes(graph)) types.set(name, { dtype: t.dtype, shape: [...t.shape] });
  for (const [name, t] of graph.initializers) types.set(name, { dtype: t.dtype, shape: [...t.dims] });
  for (const v of [...graph.inputs, ...graph.valueInfo, ...graph.outputs]) {
    if (v.shape && !types.has(v.name)) types.set(v.name, { dtype: v.dtype, shape: [...v.shape] });
  }
  return types;
}
