import type { GraphBuilder } from '../onnx/builder.ts';
import type { Attr, DataType, Dim, Node } from '../onnx/ir.ts';

/** The static type of a forward value, as shape inference knows it. */
export interface ValueType {
  dtype: DataType;
  shape: Dim[];
}

/**
 * What a gradient rule sees: the forward node, the gradient of each of its outputs, and helpers
 * that emit ONNX nodes into the backward pass (temporaries are named after the forward node).
 */
export interface GradContext {
  readonly b: GraphBuilder;
  readonly node: Node;
  /** Forward input i / output i names. */
  x(i: number): string;
  y(i: number): string;
  /** Gradient of forward output i, null where nothing flows back. */
  readonly dY: (string | null)[];
  /** Whether forward input i needs a gradient (it depends on a wrt value and reaches the loss). */
  needs(i: number): boolean;
  /** Static type of a forward value; throws where shape inference does not know it. */
  type(value: string): ValueType;
  /** The same, or undefined where unknown (for rules with a run-time fallback). */
  typeIfKnown(value: string): ValueType | undefined;
  rank(value: string): number;
  /** All dims as numbers; throws when one is symbolic or unknown. */
  staticShape(value: string): number[];
  /** Emits a node named `<forward node>_grad_<op>`. */
  op(opType: string, inputs: string[], attrs?: Record<string, Attr>): string;
  opN(opType: string, inputs: string[], attrs: Record<string, Attr>, nOutputs: number): string[];
  /** A scalar constant with the dtype of `like`. */
  scalar(value: number, like: string): string;
  /** A constant of the dtype of `like` with the given dims. */
  constant(values: ArrayLike<number>, dims: number[], like: string): string;
  /** A 1-D int64 constant. */
  ints(values: number[]): string;
  /** A scalar int64 constant. */
  intScalar(value: number): string;
  /** The values of a constant int input (initializer or Constant node); undefined if not constant. */
  constInts(value: string): number[] | undefined;
  constFloats(value: string): number[] | undefined;
  /** Forward output i, naming it on the forward node if the model left it unnamed
   *  (MaxPool's Indices, Dropout's mask: outputs the backward pass must read). */
  requireOutput(i: number): string;
  /** Sums `grad` (shaped `from`, where known) over the axes along which input `toInput` was broadcast. */
  unbroadcast(grad: string, toInput: string, from: Dim[] | undefined): string;
}

/** A rule returns exactly one entry per forward input: its gradient value, or null. */
export type GradRule = (ctx: GradContext) => (string | null)[];

/** Ops whose outputs carry no gradient at all (comparisons, shapes, indices): gradient stops. */
export const NO_GRADIENT = 'NO_GRADIENT' as const;

export interface RuleEntry {
  rule: GradRule | typeof NO_GRADIENT;
  /** Inputs the rule returns in the shape of output 0 ('all' for variadic ops); the engine sums
   *  them back to each input's own shape (numpy broadcasting). */
  broadcast?: number[] | 'all';
}

export type RuleTable = Record<string, RuleEntry>;

export const rule = (fn: GradRule, broadcast?: number[] | 'all'): RuleEntry => (broadcast ? { rule: fn, broadcast } : { rule: fn });
export const noGradient: RuleEntry = { rule: NO_GRADIENT };

/** Normalizes a possibly negative axis against a rank. */
export const axisOf = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

/** [0, 1, …, n-1] */
export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Every position in a window of `kernel` (row-major, last axis fastest): [[0,0], [0,1], …]. */
export const kernelTaps = (kernel: number[]): number[][] =>
  kernel.reduce<number[][]>((taps, k) => taps.flatMap((t) => range(k).map((i) => [...t, i])), [[]]);

/**
 * A scalar constant shaped [1, …, 1] at the rank of `like` (rank 0 where unknown), for ops that
 * combine it with `like`: onnxruntime broadcasts a rank-0 scalar against a tensor ending in unit
 * dims ([N, C, 1, 1]) one element at a time, about 70× slower (see training/optimizers.ts).
 */
export function scalarAtRank(ctx: GradContext, value: number, like: string): string {
  const rank = ctx.typeIfKnown(like)?.shape.length ?? 0;
  return rank === 0 ? ctx.scalar(value, like) : ctx.constant([value], new Array<number>(rank).fill(1), like);
}

/**
 * `grad` where the boolean `mask` holds and 0 elsewhere, as grad · float(mask). onnxruntime's
 * Where runs on one thread: on 32×72×56×56, Where(Greater) took 10.3 ms against 3.9 ms for
 * Mul(Cast(Greater)) at 2 threads (bench/engine/masks.ts). The one difference, a NaN or ±Inf in
 * `grad` where the mask is off becoming NaN instead of 0, only arises once training has diverged,
 * and the loss is non-finite by then.
 */
export function masked(ctx: GradContext, mask: string, grad: string): string {
  return ctx.op('Mul', [grad, ctx.op('CastLike', [mask, grad])]);
}
