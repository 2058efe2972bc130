import type { DataType, Dim, Graph, Model, Node } from '../onnx/ir.ts';
import { getInt } from '../onnx/ir.ts';
import { inferShapes, type ShapeInfo } from '../onnx/shape-inference.ts';

/**
 * Static figures of an export graph: parameters, FLOPs and a per-node table. FLOPs follow the
 * usual convention, 2 × multiply-accumulates of Conv, Gemm and MatMul at batch 1 (bias adds,
 * activations and pooling are left out, as in fvcore/ptflops). Computed on the fp32 graph: the
 * fp16 and int8 variants have the same parameters and arithmetic, only stored differently.
 */

export interface NodeStats {
  node: string;
  opType: string;
  /** Elements of the initializers the node reads. */
  params: number;
  flops: number;
  outputShape: Dim[] | null;
}

export interface ModelStats {
  params: number;
  flops: number;
  nodes: NodeStats[];
}

// shape constants (Reshape targets, int64) are not parameters
const isFloat = (d: DataType) => d === 'float32' || d === 'float16' || d === 'float64';
const numel = (dims: readonly Dim[]) => dims.reduce<number>((a, d) => a * (typeof d === 'number' ? d : 1), 1);

function macs(n: Node, g: Graph, shapes: Map<string, ShapeInfo>): number {
  const out = shapes.get(n.outputs[0])?.shape;
  if (!out || (n.domain ?? '') !== '') return 0;
  const dimsOf = (v: string) => g.initializers.get(v)?.dims ?? shapes.get(v)?.shape;
  switch (n.opType) {
    case 'Conv': {
      // each output element is a dot product over (Cin / group) · kH · kW weights
      const w = dimsOf(n.inputs[1]);
      return w ? numel(out) * numel(w.slice(1)) : 0;
    }
    case 'Gemm': {
      const a = dimsOf(n.inputs[0]);
      if (!a || a.length !== 2) return 0;
      const k = getInt(n, 'transA', 0) ? a[0] : a[1];
      return typeof k === 'number' ? numel(out) * k : 0;
    }
    case 'MatMul': {
      const a = dimsOf(n.inputs[0]);
      const k = a?.[a.length - 1];
      return typeof k === 'number' ? numel(out) * k : 0;
    }
    default:
      return 0;
  }
}

/** Stats at batch 1 for a model whose single image input is `inputName`. */
export function modelStats(model: Model, inputName = 'input'): ModelStats {
  const g = model.graph;
  const input = g.inputs.find((v) => v.name === inputName);
  const shape = input?.shape?.map((d, i) => (i === 0 ? 1 : d));
  const shapes = inferShapes(g, shape ? { inputs: { [inputName]: shape } } : {});
  const nodes = g.nodes.map((n): NodeStats => {
    const params = [...new Set(n.inputs)].reduce((a, i) => {
      const t = g.initializers.get(i);
      return a + (t && isFloat(t.dtype) ? numel(t.dims) : 0);
    }, 0);
    return { node: n.name, opType: n.opType, params, flops: 2 * macs(n, g, shapes), outputShape: shapes.get(n.outputs[0])?.shape ?? null };
  });
  return {
    // an initializer read by two nodes counts once
    params: [...g.initializers.values()].reduce((a, t) => a + (isFloat(t.dtype) ? numel(t.dims) : 0), 0),
    flops: nodes.reduce((a, n) => a + n.flops, 0),
    nodes,
  };
}
