import type { GraphBuilder } from './builder.ts';
import { ONNX_DTYPE } from './dtypes.ts';
import { type Attr, type DataType, type TensorData, attr, f32, i64, tensor } from './ir.ts';

/**
 * Typed helpers over GraphBuilder, with opset-17 semantics (the opset the studio writes): each
 * takes value names and returns the output name(s). Small constants the ops need as inputs
 * (axes, shapes, pads, clip bounds) become Constant nodes, not initializers, so that a graph's
 * initializers stay exactly its weights.
 */

type B = GraphBuilder;

/** Drops undefined options so defaults stay implicit in the file, as exporters write them. */
function attrs(entries: Record<string, Attr | undefined>): Record<string, Attr> {
  const out: Record<string, Attr> = {};
  for (const [k, v] of Object.entries(entries)) if (v !== undefined) out[k] = v;
  return out;
}
const optInts = (v: number[] | undefined) => (v === undefined ? undefined : attr.ints(v));
const optInt = (v: number | boolean | undefined) => (v === undefined ? undefined : attr.int(Number(v)));
const optFloat = (v: number | undefined) => (v === undefined ? undefined : attr.float(v));

// ---------------------------------------------------------------- constants

export function constant(b: B, value: TensorData, name?: string): string {
  return b.op('Constant', [], { value: attr.tensor(value) }, name ?? 'Constant');
}
/** A 1-D int64 Constant (axes, shapes, pads, starts/ends). */
export function constInts(b: B, values: readonly (number | bigint)[]): string {
  return constant(b, i64([values.length], values));
}
/** A scalar Constant of the given float/int dtype. */
export function constScalar(b: B, value: number, dtype: DataType = 'float32'): string {
  return constant(b, scalarTensor(value, dtype));
}
function scalarTensor(value: number, dtype: DataType): TensorData {
  switch (dtype) {
    case 'float32': return f32([], [value]);
    case 'float64': return tensor('float64', [], Float64Array.of(value));
    case 'int64': return i64([], [value]);
    case 'int32': return tensor('int32', [], Int32Array.of(value));
    case 'int8': return tensor('int8', [], Int8Array.of(value));
    case 'uint8':
    case 'bool': return tensor(dtype, [], Uint8Array.of(value));
    case 'float16': throw new Error('constScalar: build float16 constants from bits with constant()');
  }
}
export function constantOfShape(b: B, shape: string, value = 0, dtype: DataType = 'float32'): string {
  return b.op('ConstantOfShape', [shape], { value: attr.tensor({ ...scalarTensor(value, dtype), dims: [1] }) });
}

// ---------------------------------------------------------------- convolution and linear

export interface ConvOptions {
  strides?: number[];
  /** ONNX order: [x1_begin, x2_begin, …, x1_end, x2_end, …]. */
  pads?: number[];
  dilations?: number[];
  group?: number;
  kernelShape?: number[];
}
export function conv(b: B, x: string, w: string, bias?: string, o: ConvOptions = {}): string {
  return b.op('Conv', bias ? [x, w, bias] : [x, w], attrs({
    strides: optInts(o.strides), pads: optInts(o.pads), dilations: optInts(o.dilations),
    group: optInt(o.group), kernel_shape: optInts(o.kernelShape),
  }));
}

export interface ConvTransposeOptions extends ConvOptions {
  outputPadding?: number[];
  outputShape?: number[];
}
export function convTranspose(b: B, x: string, w: string, bias?: string, o: ConvTransposeOptions = {}): string {
  return b.op('ConvTranspose', bias ? [x, w, bias] : [x, w], attrs({
    strides: optInts(o.strides), pads: optInts(o.pads), dilations: optInts(o.dilations),
    group: optInt(o.group), kernel_shape: optInts(o.kernelShape),
    output_padding: optInts(o.outputPadding), output_shape: optInts(o.outputShape),
  }));
}

export interface GemmOptions { transA?: boolean; transB?: boolean; alpha?: number; beta?: number }
/** Y = alpha·A'·B' + beta·C */
export function gemm(b: B, a: string, bm: string, c?: string, o: GemmOptions = {}): string {
  return b.op('Gemm', c ? [a, bm, c] : [a, bm], attrs({
    transA: o.transA ? attr.int(1) : undefined, transB: o.transB ? attr.int(1) : undefined,
    alpha: optFloat(o.alpha), beta: optFloat(o.beta),
  }));
}
export const matmul = (b: B, a: string, c: string) => b.op('MatMul', [a, c]);

// ---------------------------------------------------------------- elementwise

export const add = (b: B, a: string, c: string) => b.op('Add', [a, c]);
export const sub = (b: B, a: string, c: string) => b.op('Sub', [a, c]);
export const mul = (b: B, a: string, c: string) => b.op('Mul', [a, c]);
export const div = (b: B, a: string, c: string) => b.op('Div', [a, c]);
export const pow = (b: B, a: string, c: string) => b.op('Pow', [a, c]);
export const equal = (b: B, a: string, c: string) => b.op('Equal', [a, c]);
export const greater = (b: B, a: string, c: string) => b.op('Greater', [a, c]);
export const less = (b: B, a: string, c: string) => b.op('Less', [a, c]);
export const where = (b: B, cond: string, a: string, c: string) => b.op('Where', [cond, a, c]);
export const sum = (b: B, xs: string[]) => b.op('Sum', xs);
export const max = (b: B, xs: string[]) => b.op('Max', xs);
export const min = (b: B, xs: string[]) => b.op('Min', xs);

export const neg = (b: B, x: string) => b.op('Neg', [x]);
export const abs = (b: B, x: string) => b.op('Abs', [x]);
export const exp = (b: B, x: string) => b.op('Exp', [x]);
export const log = (b: B, x: string) => b.op('Log', [x]);
export const sqrt = (b: B, x: string) => b.op('Sqrt', [x]);
export const reciprocal = (b: B, x: string) => b.op('Reciprocal', [x]);
export const erf = (b: B, x: string) => b.op('Erf', [x]);
export const sign = (b: B, x: string) => b.op('Sign', [x]);
export const not = (b: B, x: string) => b.op('Not', [x]);
export const identity = (b: B, x: string) => b.op('Identity', [x]);
export const cast = (b: B, x: string, to: DataType) => b.op('Cast', [x], { to: attr.int(ONNX_DTYPE[to]) });

// ---------------------------------------------------------------- activations

export const relu = (b: B, x: string) => b.op('Relu', [x]);
export const leakyRelu = (b: B, x: string, alpha = 0.01) => b.op('LeakyRelu', [x], { alpha: attr.float(alpha) });
export const sigmoid = (b: B, x: string) => b.op('Sigmoid', [x]);
export const tanh = (b: B, x: string) => b.op('Tanh', [x]);
/** max(0, min(1, alpha·x + beta)); PyTorch's hardsigmoid is alpha = 1/6, beta = 0.5. */
export const hardSigmoid = (b: B, x: string, o: { alpha?: number; beta?: number } = {}) =>
  b.op('HardSigmoid', [x], attrs({ alpha: optFloat(o.alpha), beta: optFloat(o.beta) }));
export const hardSwish = (b: B, x: string) => b.op('HardSwish', [x]);
/** Clip with bounds given as numbers (float32 Constants) or value names; omitted bounds are open. */
export function clip(b: B, x: string, lo?: number | string, hi?: number | string): string {
  const bound = (v: number | string | undefined) => (v === undefined ? '' : typeof v === 'string' ? v : constScalar(b, v));
  const ins = [x, bound(lo), bound(hi)];
  while (ins[ins.length - 1] === '') ins.pop();
  return b.op('Clip', ins);
}
export const softmax = (b: B, x: string, axis = -1) => b.op('Softmax', [x], { axis: attr.int(axis) });
export const logSoftmax = (b: B, x: string, axis = -1) => b.op('LogSoftmax', [x], { axis: attr.int(axis) });

// ---------------------------------------------------------------- normalization and pooling

export interface BatchNormOptions { epsilon?: number; momentum?: number }
/** Inference-mode BatchNormalization: normalizes with the given running statistics. */
export function batchNorm(b: B, x: string, scale: string, bias: string, mean: string, variance: string, o: BatchNormOptions = {}): string {
  return b.op('BatchNormalization', [x, scale, bias, mean, variance], attrs({ epsilon: optFloat(o.epsilon), momentum: optFloat(o.momentum) }));
}
/**
 * Training-mode BatchNormalization (opset 15+ `training_mode=1`): normalizes with batch statistics
 * and returns [y, newRunningMean, newRunningVar], running = momentum·running + (1−momentum)·batch.
 */
export function batchNormTrain(b: B, x: string, scale: string, bias: string, mean: string, variance: string, o: BatchNormOptions = {}): [string, string, string] {
  const [y, m, v] = b.opN('BatchNormalization', [x, scale, bias, mean, variance],
    attrs({ epsilon: optFloat(o.epsilon), momentum: optFloat(o.momentum), training_mode: attr.int(1) }), 3);
  return [y, m, v];
}

export interface PoolOptions {
  kernelShape: number[];
  strides?: number[];
  pads?: number[];
  ceilMode?: boolean;
}
export function maxPool(b: B, x: string, o: PoolOptions & { dilations?: number[] }): string {
  return b.op('MaxPool', [x], poolAttrs(o, { dilations: optInts(o.dilations) }));
}
/** MaxPool with its second output: flat indices of the maxima (for the gradient). */
export function maxPoolWithIndices(b: B, x: string, o: PoolOptions & { dilations?: number[] }): [string, string] {
  const [y, i] = b.opN('MaxPool', [x], poolAttrs(o, { dilations: optInts(o.dilations) }), 2);
  return [y, i];
}
export function averagePool(b: B, x: string, o: PoolOptions & { countIncludePad?: boolean }): string {
  return b.op('AveragePool', [x], poolAttrs(o, { count_include_pad: optInt(o.countIncludePad) }));
}
function poolAttrs(o: PoolOptions, extra: Record<string, Attr | undefined>): Record<string, Attr> {
  return attrs({
    kernel_shape: attr.ints(o.kernelShape), strides: optInts(o.strides), pads: optInts(o.pads),
    ceil_mode: optInt(o.ceilMode), ...extra,
  });
}
export const globalAveragePool = (b: B, x: string) => b.op('GlobalAveragePool', [x]);
export const globalMaxPool = (b: B, x: string) => b.op('GlobalMaxPool', [x]);

// ---------------------------------------------------------------- shape ops

export const flatten = (b: B, x: string, axis = 1) => b.op('Flatten', [x], { axis: attr.int(axis) });
/** Reshape to a constant shape (0 copies the input dim, −1 infers one) or to a shape value. */
export function reshape(b: B, x: string, shape: readonly number[] | string): string {
  return b.op('Reshape', [x, typeof shape === 'string' ? shape : constInts(b, shape)]);
}
export const transpose = (b: B, x: string, perm: number[]) => b.op('Transpose', [x], { perm: attr.ints(perm) });
export const concat = (b: B, xs: string[], axis: number) => b.op('Concat', xs, { axis: attr.int(axis) });
/** Split into the given sizes along `axis`, or into `parts` equal pieces. */
export function split(b: B, x: string, sizes: readonly number[] | { parts: number }, axis = 0): string[] {
  if ('parts' in sizes) return b.opN('Split', [x], { axis: attr.int(axis) }, sizes.parts);
  return b.opN('Split', [x, constInts(b, sizes)], { axis: attr.int(axis) }, sizes.length);
}
export function slice(b: B, x: string, starts: readonly number[], ends: readonly number[], axes?: readonly number[], steps?: readonly number[]): string {
  const ins = [x, constInts(b, starts), constInts(b, ends)];
  if (axes || steps) ins.push(axes ? constInts(b, axes) : '');
  if (steps) ins.push(constInts(b, steps));
  return b.op('Slice', ins);
}
/** Pad with ONNX-ordered pads ([begins…, ends…]); `value` for mode 'constant'. */
export function pad(b: B, x: string, pads: readonly number[], mode: 'constant' | 'reflect' | 'edge' = 'constant', value?: number): string {
  const ins = [x, constInts(b, pads)];
  if (value !== undefined && value !== 0) ins.push(constScalar(b, value));
  return b.op('Pad', ins, mode === 'constant' ? {} : { mode: attr.string(mode) });
}
export function unsqueeze(b: B, x: string, axes: readonly number[]): string {
  return b.op('Unsqueeze', [x, constInts(b, axes)]);
}
/** Squeeze the given axes, or every size-1 axis when none are given. */
export function squeeze(b: B, x: string, axes?: readonly number[]): string {
  return b.op('Squeeze', axes ? [x, constInts(b, axes)] : [x]);
}
/** Expand (broadcast) to a constant shape or a shape value. */
export function expand(b: B, x: string, shape: readonly number[] | string): string {
  return b.op('Expand', [x, typeof shape === 'string' ? shape : constInts(b, shape)]);
}
export function shape(b: B, x: string, o: { start?: number; end?: number } = {}): string {
  return b.op('Shape', [x], attrs({ start: optInt(o.start), end: optInt(o.end) }));
}
export const gather = (b: B, x: string, indices: string, axis = 0) => b.op('Gather', [x, indices], { axis: attr.int(axis) });
export const dropout = (b: B, x: string) => b.op('Dropout', [x]);
export function resize(b: B, x: string, o: { scales?: number[]; sizes?: number[]; mode?: 'nearest' | 'linear' | 'cubic'; coordinateTransformationMode?: string; nearestMode?: string }): string {
  const ins = [x, '', o.scales ? constant(b, f32([o.scales.length], o.scales)) : ''];
  if (o.sizes) ins.push(constInts(b, o.sizes));
  return b.op('Resize', ins, attrs({
    mode: o.mode ? attr.string(o.mode) : undefined,
    coordinate_transformation_mode: o.coordinateTransformationMode ? attr.string(o.coordinateTransformationMode) : undefined,
    nearest_mode: o.nearestMode ? attr.string(o.nearestMode) : undefined,
  }));
}

// ---------------------------------------------------------------- reductions and indices

/** Opset 17: ReduceSum takes axes as an input (empty = all axes unless noop). */
export function reduceSum(b: B, x: string, axes?: readonly number[], keepdims = true): string {
  return b.op('ReduceSum', axes ? [x, constInts(b, axes)] : [x], { keepdims: attr.int(keepdims ? 1 : 0) });
}
/** Opset 17: ReduceMean/Max/Min/SumSquare take axes as an attribute (inputs only from 18). */
export function reduceMean(b: B, x: string, axes?: readonly number[], keepdims = true): string {
  return b.op('ReduceMean', [x], attrs({ axes: axes ? attr.ints([...axes]) : undefined, keepdims: attr.int(keepdims ? 1 : 0) }));
}
export function reduceMax(b: B, x: string, axes?: readonly number[], keepdims = true): string {
  return b.op('ReduceMax', [x], attrs({ axes: axes ? attr.ints([...axes]) : undefined, keepdims: attr.int(keepdims ? 1 : 0) }));
}
export function reduceSumSquare(b: B, x: string, axes?: readonly number[], keepdims = true): string {
  return b.op('ReduceSumSquare', [x], attrs({ axes: axes ? attr.ints([...axes]) : undefined, keepdims: attr.int(keepdims ? 1 : 0) }));
}
export const argMax = (b: B, x: string, axis = -1, keepdims = false) =>
  b.op('ArgMax', [x], { axis: attr.int(axis), keepdims: attr.int(keepdims ? 1 : 0) });
/** One-hot over the last axis: values[0] off, values[1] on (float32). */
export function oneHot(b: B, indices: string, depth: number, off = 0, on = 1): string {
  return b.op('OneHot', [indices, constInts(b, [depth]), constant(b, f32([2], [off, on]))], { axis: attr.int(-1) });
}
