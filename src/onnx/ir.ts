/**
 * The in-memory ONNX model the whole engine works on: plain data, no protobuf.
 * `codec.ts` turns it into bytes and back; `builder.ts` makes it; `src/autodiff` rewrites it.
 */

export type DataType = 'float32' | 'float16' | 'float64' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

export type TypedArray =
  | Float32Array
  | Float64Array
  | BigInt64Array
  | Int32Array
  | Int8Array
  | Uint8Array
  | Uint16Array; // float16 bits

/** A constant tensor (initializer, Constant value, attribute). `data` is row-major. */
export interface TensorData {
  dtype: DataType;
  dims: number[];
  data: TypedArray;
}

/** A dimension: a number, a symbolic name (`"N"`), or null when unknown. */
export type Dim = number | string | null;

export interface ValueInfo {
  name: string;
  dtype: DataType;
  shape?: Dim[];
  docString?: string;
}

export type Attr =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'strings'; value: string[] }
  | { kind: 'tensor'; value: TensorData };

export interface Node {
  name: string;
  opType: string;
  domain?: string;
  /** '' marks an omitted optional input, as in ONNX. */
  inputs: string[];
  outputs: string[];
  attrs: Record<string, Attr>;
}

export interface Graph {
  name: string;
  nodes: Node[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: Map<string, TensorData>;
  /** Shapes of intermediate values, where known. */
  valueInfo: ValueInfo[];
}

export interface OpsetImport {
  domain: string;
  version: number;
}

export interface Model {
  irVersion: number;
  opsetImports: OpsetImport[];
  producerName: string;
  producerVersion?: string;
  graph: Graph;
  metadata: Record<string, string>;
}

/** The opset the studio writes, and the IR version that goes with it. */
export const WRITE_OPSET = 17;
export const WRITE_IR_VERSION = 8;

export const attr = {
  int: (value: number): Attr => ({ kind: 'int', value }),
  float: (value: number): Attr => ({ kind: 'float', value }),
  string: (value: string): Attr => ({ kind: 'string', value }),
  ints: (value: number[]): Attr => ({ kind: 'ints', value }),
  floats: (value: number[]): Attr => ({ kind: 'floats', value }),
  strings: (value: string[]): Attr => ({ kind: 'strings', value }),
  tensor: (value: TensorData): Attr => ({ kind: 'tensor', value }),
};

export function getInt(node: Node, name: string, fallback: number): number {
  const a = node.attrs[name];
  return a && (a.kind === 'int' || a.kind === 'float') ? a.value : fallback;
}
export function getFloat(node: Node, name: string, fallback: number): number {
  return getInt(node, name, fallback);
}
export function getInts(node: Node, name: string): number[] | undefined {
  const a = node.attrs[name];
  return a && a.kind === 'ints' ? a.value : undefined;
}
export function getString(node: Node, name: string, fallback: string): string {
  const a = node.attrs[name];
  return a && a.kind === 'string' ? a.value : fallback;
}

export function tensor(dtype: DataType, dims: number[], data: TypedArray): TensorData {
  const n = dims.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new Error(`tensor: ${data.length} values for dims [${dims.join(',')}]`);
  return { dtype, dims: [...dims], data };
}
export const f32 = (dims: number[], data: ArrayLike<number> | Float32Array) =>
  tensor('float32', dims, data instanceof Float32Array ? data : Float32Array.from(data));
export const i64 = (dims: number[], data: ArrayLike<number | bigint>) =>
  tensor('int64', dims, BigInt64Array.from(Array.from(data, (v) => BigInt(v))));
