import os from 'node:os';
import protobuf from 'protobufjs';
import { AppError, badInput } from '../kernel/errors.ts';
import { BYTES_PER_ELEMENT, ONNX_DTYPE, allocTyped, dtypeFromOnnx, typedView } from './dtypes.ts';
import type { Attr, DataType, Dim, Graph, Model, Node, TensorData, TypedArray, ValueInfo } from './ir.ts';
import { ONNX_PROTO } from './onnx-proto.ts';

/**
 * ONNX protobuf ⇄ the in-memory IR. Reads what torch.onnx.export and onnx itself write for opsets
 * 13–21 (raw_data or the typed *_data fields); writes raw_data, little-endian, as onnx does.
 * The version fields are written as the Model says: re-stamping an imported opset-13 model as 17
 * would change the meaning of ops such as ReduceSum.
 */

// raw_data is little-endian by spec; we view it with host-order typed arrays.
if (os.endianness() !== 'LE') throw new Error('codec.ts assumes a little-endian host');

const root = protobuf.parse(ONNX_PROTO, { keepCase: true }).root;
const ModelProto = root.lookupType('onnx.ModelProto');

/** int64 fields come back as numbers or, with long.js present, as Long objects. */
type Int64 = number | { low: number; high: number };

interface PStringEntry { key?: string; value?: string }
interface PTensor {
  dims?: Int64[];
  data_type?: number;
  float_data?: number[];
  int32_data?: number[];
  int64_data?: Int64[];
  double_data?: number[];
  uint64_data?: Int64[];
  string_data?: Uint8Array[];
  name?: string;
  raw_data?: Uint8Array;
  external_data?: PStringEntry[];
  data_location?: number;
}
interface PDim { dim_value?: Int64; dim_param?: string }
interface PValueInfo {
  name?: string;
  type?: { tensor_type?: { elem_type?: number; shape?: { dim?: PDim[] } } };
  doc_string?: string;
}
interface PAttr {
  name?: string;
  type?: number;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: PTensor;
  g?: unknown;
  floats?: number[];
  ints?: Int64[];
  strings?: Uint8Array[];
  tensors?: PTensor[];
  graphs?: unknown[];
  ref_attr_name?: string;
}
interface PNode { input?: string[]; output?: string[]; name?: string; op_type?: string; domain?: string; attribute?: PAttr[] }
interface PGraph {
  node?: PNode[];
  name?: string;
  initializer?: PTensor[];
  input?: PValueInfo[];
  output?: PValueInfo[];
  value_info?: PValueInfo[];
}
interface PModel {
  ir_version?: Int64;
  opset_import?: { domain?: string; version?: Int64 }[];
  producer_name?: string;
  producer_version?: string;
  graph?: PGraph;
  metadata_props?: PStringEntry[];
}

const ATTR_TYPE = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8, TENSORS: 9, GRAPHS: 10 } as const;
const utf8 = new TextDecoder();
const utf8Enc = new TextEncoder();

function num(v: Int64 | undefined): number {
  if (v === undefined) return 0;
  if (typeof v === 'number') return v;
  // high is the signed upper word, so this is exact for |v| < 2^53 and negative values alike.
  return v.high * 4294967296 + (v.low >>> 0);
}
function big(v: Int64): bigint {
  if (typeof v === 'number') return BigInt(v);
  return (BigInt(v.high) << 32n) + BigInt(v.low >>> 0);
}
const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

// ---------------------------------------------------------------- decode

function decodeDtype(code: number, what: string): DataType {
  const d = dtypeFromOnnx(code);
  if (!d) throw badInput(`ONNX ${what}: unsupported element type ${code}`);
  return d;
}

function decodeTensor(t: PTensor, what: string): TensorData {
  const name = t.name || what;
  if (t.data_location === 1 || (t.external_data?.length ?? 0) > 0) {
    throw badInput(`ONNX tensor '${name}' uses external data, which is not supported; save the model with all tensors inside the .onnx file`);
  }
  const dtype = decodeDtype(t.data_type ?? 0, `tensor '${name}'`);
  const dims = (t.dims ?? []).map(num);
  const n = dims.reduce((a, b) => a * b, 1);
  let data: TypedArray;
  if (t.raw_data && t.raw_data.length > 0) {
    const bytes = n * BYTES_PER_ELEMENT[dtype];
    if (t.raw_data.length !== bytes) throw badInput(`ONNX tensor '${name}': raw_data has ${t.raw_data.length} bytes, expected ${bytes}`);
    // Copy into a fresh, aligned buffer: the decoded bytes are an unaligned slice of the file.
    const buf = new ArrayBuffer(bytes);
    new Uint8Array(buf).set(t.raw_data);
    data = typedView(dtype, buf, 0, n);
  } else {
    data = allocTyped(dtype, n);
    const src: ArrayLike<number | Int64> =
      dtype === 'float32' ? t.float_data ?? []
      : dtype === 'float64' ? t.double_data ?? []
      : dtype === 'int64' ? t.int64_data ?? []
      : t.int32_data ?? []; // int32, int8, uint8, bool, float16 bits: all stored in int32_data
    if (src.length !== n) throw badInput(`ONNX tensor '${name}': ${src.length} values for dims [${dims.join(',')}]`);
    if (data instanceof BigInt64Array) for (let i = 0; i < n; i++) data[i] = big(src[i] as Int64);
    else for (let i = 0; i < n; i++) data[i] = num(src[i] as Int64);
  }
  return { dtype, dims, data };
}

function decodeValueInfo(v: PValueInfo): ValueInfo {
  const name = v.name ?? '';
  const tt = v.type?.tensor_type;
  if (!tt) throw badInput(`ONNX value '${name}' is not a tensor (sequences, maps and optionals are not supported)`);
  const out: ValueInfo = { name, dtype: decodeDtype(tt.elem_type ?? 0, `value '${name}'`) };
  if (tt.shape) {
    out.shape = (tt.shape.dim ?? []).map((d): Dim => {
      if (has(d, 'dim_value')) return num(d.dim_value);
      if (has(d, 'dim_param') && d.dim_param) return d.dim_param;
      return null;
    });
  }
  if (v.doc_string) out.docString = v.doc_string;
  return out;
}

function decodeAttr(a: PAttr, nodeName: string): Attr {
  const where = `attribute '${a.name}' of node '${nodeName}'`;
  if (a.ref_attr_name) throw new AppError('UNSUPPORTED_OP', `ONNX ${where} refers to a function attribute`);
  // IR < 3 models may omit `type`; infer it from which field is present.
  const type = a.type || (
    has(a, 'f') ? ATTR_TYPE.FLOAT : has(a, 'i') ? ATTR_TYPE.INT : has(a, 's') ? ATTR_TYPE.STRING
    : has(a, 't') ? ATTR_TYPE.TENSOR : has(a, 'g') ? ATTR_TYPE.GRAPH
    : a.floats?.length ? ATTR_TYPE.FLOATS : a.ints?.length ? ATTR_TYPE.INTS
    : a.strings?.length ? ATTR_TYPE.STRINGS : 0);
  switch (type) {
    case ATTR_TYPE.FLOAT: return { kind: 'float', value: a.f ?? 0 };
    case ATTR_TYPE.INT: return { kind: 'int', value: num(a.i) };
    case ATTR_TYPE.STRING: return { kind: 'string', value: utf8.decode(a.s ?? new Uint8Array()) };
    case ATTR_TYPE.TENSOR: return { kind: 'tensor', value: decodeTensor(a.t ?? {}, where) };
    case ATTR_TYPE.FLOATS: return { kind: 'floats', value: [...(a.floats ?? [])] };
    case ATTR_TYPE.INTS: return { kind: 'ints', value: (a.ints ?? []).map(num) };
    case ATTR_TYPE.STRINGS: return { kind: 'strings', value: (a.strings ?? []).map((s) => utf8.decode(s)) };
    default: throw new AppError('UNSUPPORTED_OP', `ONNX ${where} has unsupported type ${type} (subgraphs, sparse tensors and type protos are not supported)`);
  }
}

function decodeNode(n: PNode, index: number): Node {
  const name = n.name || `${n.op_type ?? 'node'}_${index}`;
  const node: Node = { name, opType: n.op_type ?? '', inputs: [...(n.input ?? [])], outputs: [...(n.output ?? [])], attrs: {} };
  if (n.domain && n.domain !== 'ai.onnx') node.domain = n.domain;
  for (const a of n.attribute ?? []) node.attrs[a.name ?? ''] = decodeAttr(a, name);
  return node;
}

function decodeGraph(g: PGraph): Graph {
  const initializers = new Map<string, TensorData>();
  for (const t of g.initializer ?? []) initializers.set(t.name ?? '', decodeTensor(t, 'initializer'));
  return {
    name: g.name ?? '',
    nodes: (g.node ?? []).map(decodeNode),
    inputs: (g.input ?? []).map((v) => decodeValueInfo(v)),
    outputs: (g.output ?? []).map((v) => decodeValueInfo(v)),
    initializers,
    // value_info only carries hints: entries the IR cannot hold (sequences, strings) are dropped.
    valueInfo: (g.value_info ?? []).flatMap((v) => {
      const code = v.type?.tensor_type?.elem_type;
      return code !== undefined && dtypeFromOnnx(code) ? [decodeValueInfo(v)] : [];
    }),
  };
}

export function decodeModel(bytes: Uint8Array): Model {
  let m: PModel;
  try {
    m = ModelProto.decode(bytes) as unknown as PModel;
  } catch (e) {
    throw badInput(`not an ONNX model: ${(e as Error).message}`);
  }
  if (!m.graph) throw badInput('not an ONNX model: no graph');
  const metadata: Record<string, string> = {};
  for (const e of m.metadata_props ?? []) metadata[e.key ?? ''] = e.value ?? '';
  const model: Model = {
    irVersion: num(m.ir_version),
    opsetImports: (m.opset_import ?? []).map((o) => ({ domain: o.domain ?? '', version: num(o.version) })),
    producerName: m.producer_name ?? '',
    graph: decodeGraph(m.graph),
    metadata,
  };
  if (m.producer_version) model.producerVersion = m.producer_version;
  return model;
}

// ---------------------------------------------------------------- encode

function encodeTensor(name: string, t: TensorData): PTensor {
  const d = t.data;
  return {
    name,
    dims: t.dims,
    data_type: ONNX_DTYPE[t.dtype],
    raw_data: new Uint8Array(d.buffer, d.byteOffset, d.byteLength),
  };
}

function encodeValueInfo(v: ValueInfo): PValueInfo {
  const tensor_type: NonNullable<PValueInfo['type']>['tensor_type'] = { elem_type: ONNX_DTYPE[v.dtype] };
  if (v.shape) {
    tensor_type.shape = {
      dim: v.shape.map((d): PDim => (typeof d === 'number' ? { dim_value: d } : typeof d === 'string' ? { dim_param: d } : {})),
    };
  }
  const out: PValueInfo = { name: v.name, type: { tensor_type } };
  if (v.docString) out.doc_string = v.docString;
  return out;
}

function encodeAttr(name: string, a: Attr): PAttr {
  switch (a.kind) {
    case 'float': return { name, type: ATTR_TYPE.FLOAT, f: a.value };
    case 'int': return { name, type: ATTR_TYPE.INT, i: a.value };
    case 'string': return { name, type: ATTR_TYPE.STRING, s: utf8Enc.encode(a.value) };
    case 'tensor': return { name, type: ATTR_TYPE.TENSOR, t: encodeTensor('', a.value) };
    case 'floats': return { name, type: ATTR_TYPE.FLOATS, floats: a.value };
    case 'ints': return { name, type: ATTR_TYPE.INTS, ints: a.value };
    case 'strings': return { name, type: ATTR_TYPE.STRINGS, strings: a.value.map((s) => utf8Enc.encode(s)) };
  }
}

function encodeNode(n: Node): PNode {
  const out: PNode = {
    input: n.inputs,
    output: n.outputs,
    name: n.name,
    op_type: n.opType,
    attribute: Object.entries(n.attrs).map(([k, a]) => encodeAttr(k, a)),
  };
  if (n.domain) out.domain = n.domain;
  return out;
}

export function encodeModel(model: Model): Uint8Array {
  for (const [name, t] of model.graph.initializers) {
    const n = t.dims.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) throw badInput(`initializer '${name}': ${t.data.length} values for dims [${t.dims.join(',')}]`);
  }
  const g = model.graph;
  const msg: PModel = {
    ir_version: model.irVersion,
    opset_import: model.opsetImports.map((o) => ({ domain: o.domain, version: o.version })),
    producer_name: model.producerName,
    graph: {
      node: g.nodes.map(encodeNode),
      name: g.name,
      initializer: [...g.initializers].map(([k, t]) => encodeTensor(k, t)),
      input: g.inputs.map(encodeValueInfo),
      output: g.outputs.map(encodeValueInfo),
      value_info: g.valueInfo.map(encodeValueInfo),
    },
    metadata_props: Object.entries(model.metadata).map(([key, value]) => ({ key, value })),
  };
  if (model.producerVersion) msg.producer_version = model.producerVersion;
  return ModelProto.encode(msg as protobuf.Message<{}>).finish();
}
