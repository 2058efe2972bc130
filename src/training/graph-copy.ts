import { badInput } from '../kernel/errors.ts';
import type { GraphBuilder } from '../onnx/builder.ts';
import { type Graph, type Model, WRITE_OPSET } from '../onnx/ir.ts';

/** A copy of the model that can be edited without touching the caller's (tensors are shared, never mutated). */
export function cloneModel(m: Model): Model {
  const g = m.graph;
  const graph: Graph = {
    name: g.name,
    nodes: g.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } })),
    inputs: g.inputs.map((v) => ({ ...v, shape: v.shape && [...v.shape] })),
    outputs: g.outputs.map((v) => ({ ...v, shape: v.shape && [...v.shape] })),
    initializers: new Map(g.initializers),
    valueInfo: g.valueInfo.map((v) => ({ ...v, shape: v.shape && [...v.shape] })),
  };
  return { ...m, opsetImports: m.opsetImports.map((o) => ({ ...o })), graph, metadata: { ...m.metadata } };
}

/**
 * The opset imports of a graph that gains autodiff's and the optimizers' nodes, which use opset-17
 * forms (ScatterElements with reduction, ReduceSum with axes as an input). From 13 to 17 the ops
 * a model uses changed only by gaining types and attributes, so the default domain is raised as
 * src/models/import-onnx.ts does; older models must be converted first.
 */
export function trainingOpsets(m: Model): Model['opsetImports'] {
  return m.opsetImports.map((o) => {
    if (o.domain !== '' && o.domain !== 'ai.onnx') return { ...o };
    if (o.version < 13) throw badInput(`the model uses opset ${o.version}; training needs opset 13 or later`);
    return { ...o, version: Math.max(o.version, WRITE_OPSET) };
  });
}

/** Turns initializer `name` into a graph input of the same type; returns its dims. */
export function liftToInput(b: GraphBuilder, name: string): number[] {
  const t = b.graph.initializers.get(name);
  if (!t) throw badInput(`'${name}' is not an initializer of the model`);
  b.graph.initializers.delete(name);
  b.graph.inputs.push({ name, dtype: t.dtype, shape: [...t.dims] });
  return [...t.dims];
}
