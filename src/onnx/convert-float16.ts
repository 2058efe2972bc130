import { ONNX_DTYPE } from './dtypes.ts';
import { tensorToFloat16 } from './float16.ts';
import { eliminateDeadNodes, renameValues, topoSort, valueNames } from './graph-utils.ts';
import { attr, type Graph, type Model, type Node } from './ir.ts';
import { inferShapes } from './shape-inference.ts';

/**
 * Rewrites a float32 graph to compute in float16: float32 initializers and Constants become
 * float16, and Cast nodes are put where a value crosses between the float16 body and what stays
 * float32 — the graph's inputs and outputs (the interface does not change), the ops in
 * `keepFloat32`, and inputs that ONNX requires to be float32 whatever the data type (Resize's
 * scales). Each crossing is cast once and shared by every reader.
 */

export interface Float16Options {
  /** Op types that compute in float32: their float inputs are cast up, their outputs stay float32. */
  keepFloat32?: Iterable<string>;
}

/** Softmax and reductions accumulate over many values: float16 loses more there than anywhere else. */
export const DEFAULT_KEEP_FLOAT32 = ['Softmax', 'LogSoftmax', 'ReduceSum', 'ReduceMean', 'ReduceSumSquare', 'ReduceL2', 'ReduceLogSumExp'];

/** Input positions typed tensor(float) by the spec, not T. */
const FLOAT32_INPUTS: Record<string, number[]> = { Resize: [1, 2], Upsample: [1] };

type Rep = 'f16' | 'f32';

export function convertToFloat16(model: Model, opts: Float16Options = {}): Model {
  const keep = new Set(opts.keepFloat32 ?? DEFAULT_KEEP_FLOAT32);
  const src = model.graph;
  const types = inferShapes(src);
  const taken = valueNames(src);
  const fresh = (base: string) => {
    let n = base;
    for (let i = 1; taken.has(n); i++) n = `${base}_${i}`;
    taken.add(n);
    return n;
  };

  const initializers = new Map(src.initializers);
  const rep = new Map<string, Rep>();
  for (const v of src.inputs) if (v.dtype === 'float32') rep.set(v.name, 'f32');
  for (const [k, t] of src.initializers) if (t.dtype === 'float32') rep.set(k, 'f32');
  const isInit = (name: string) => src.initializers.has(name);

  const nodes: Node[] = [];
  const converted = new Map<string, string>(); // `${value}|${rep}` → value in that representation
  const as = (value: string, want: Rep): string => {
    const have = rep.get(value);
    if (have === undefined || have === want) return value;
    const key = `${value}|${want}`;
    const done = converted.get(key);
    if (done) return done;
    let out: string;
    if (isInit(value) && want === 'f16') {
      out = fresh(`${value}.fp16`);
      initializers.set(out, tensorToFloat16(src.initializers.get(value)!));
    } else {
      out = fresh(`${value}.${want === 'f16' ? 'fp16' : 'fp32'}`);
      nodes.push({ name: fresh(`Cast_${out}`), opType: 'Cast', inputs: [value], outputs: [out], attrs: { to: attr.int(ONNX_DTYPE[want === 'f16' ? 'float16' : 'float32']) } });
    }
    rep.set(out, want);
    converted.set(key, out);
    return out;
  };
  const isFloatOutput = (n: Node, o: string) => {
    const t = types.get(o);
    return t ? t.dtype === 'float32' : n.inputs.some((i) => rep.has(i));
  };

  for (const node of topoSort(src)) {
    if ((node.domain ?? '') !== '') {
      nodes.push(node);
      continue;
    }
    const n: Node = { ...node, inputs: [...node.inputs], outputs: [...node.outputs], attrs: { ...node.attrs } };
    if (n.opType === 'Constant' && n.attrs.value?.kind === 'tensor' && n.attrs.value.value.dtype === 'float32') {
      n.attrs.value = attr.tensor(tensorToFloat16(n.attrs.value.value));
      rep.set(n.outputs[0], 'f16');
      nodes.push(n);
      continue;
    }
    if (n.opType === 'ConstantOfShape' && n.attrs.value?.kind === 'tensor' && n.attrs.value.value.dtype === 'float32') {
      n.attrs.value = attr.tensor(tensorToFloat16(n.attrs.value.value));
    }
    if (n.opType === 'Cast' && n.attrs.to?.kind === 'int' && n.attrs.to.value === ONNX_DTYPE.float32) {
      n.attrs.to = attr.int(ONNX_DTYPE.float16);
    }
    const compute: Rep = keep.has(n.opType) ? 'f32' : 'f16';
    const pinned = new Set(FLOAT32_INPUTS[n.opType] ?? []);
    n.inputs = n.inputs.map((i, k) => (i === '' || n.opType === 'Cast' ? i : as(i, pinned.has(k) ? 'f32' : compute)));
    for (const o of n.outputs) if (o !== '' && isFloatOutput(node, o)) rep.set(o, compute);
    nodes.push(n);
  }

  // Outputs stay float32 under their own names: the float16 value is renamed and cast back.
  const renames = new Map<string, string>();
  const tail: Node[] = [];
  for (const out of src.outputs) {
    if (out.dtype !== 'float32' || rep.get(out.name) !== 'f16') continue;
    const f16Name = fresh(`${out.name}.fp16`);
    renames.set(out.name, f16Name);
    const up = converted.get(`${out.name}|f32`);
    if (up) renames.set(up, out.name);
    else tail.push({ name: fresh(`Cast_${out.name}`), opType: 'Cast', inputs: [f16Name], outputs: [out.name], attrs: { to: attr.int(ONNX_DTYPE.float32) } });
  }
  const body: Graph = renameValues({ ...src, nodes, initializers, valueInfo: [] }, renames);
  // the renaming also hit the graph's outputs; they keep their names
  const graph: Graph = { ...body, nodes: [...body.nodes, ...tail], outputs: src.outputs.map((v) => ({ ...v })) };
  return { ...model, graph: eliminateDeadNodes(graph) };
}
