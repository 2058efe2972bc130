import { type Dim, attr, tensor } from '../onnx/ir.ts';
import type { GradContext } from './context.ts';

/**
 * numpy broadcasting, undone: sum over the leading axes the input lacked and over the axes where
 * it had size 1 and the gradient does not, then reshape to the input's shape. Decided statically
 * where both shapes are known, else at run time from the two Shape()s.
 */
export function unbroadcast(ctx: GradContext, grad: string, toInput: string, from: Dim[] | undefined): string {
  const to = ctx.b.graph.initializers.get(toInput)?.dims ?? ctx.typeIfKnown(toInput)?.shape;
  const axes = from && to ? staticBroadcastAxes(from, to) : undefined;
  if (!axes) return dynamicUnbroadcast(ctx, grad, toInput);
  if (axes.length === 0) return grad;
  const lead = (from as Dim[]).length - (to as Dim[]).length;
  const summed = ctx.op('ReduceSum', [grad, ctx.ints(axes)], { keepdims: attr.int(lead > 0 ? 0 : 1) });
  if (lead > 0 && axes.length === lead) return summed;
  // keepdims=0 drops exactly the leading axes only when nothing else was summed; else reshape.
  return ctx.op('Reshape', [summed, ctx.op('Shape', [toInput])]);
}

/** The axes to sum, or undefined when unknown or symbolic dims leave it open. */
function staticBroadcastAxes(from: Dim[], to: Dim[]): number[] | undefined {
  const lead = from.length - to.length;
  if (lead < 0) return undefined;
  const axes: number[] = [];
  for (let i = 0; i < from.length; i++) {
    if (i < lead) { axes.push(i); continue; }
    const t = to[i - lead];
    const f = from[i];
    if (t === f && t !== null) continue;
    if (t === 1 && f !== null) { if (f !== 1) axes.push(i); continue; }
    return undefined;
  }
  return axes;
}

/** Run-time version: axes = nonzero(shape(X) left-padded with 1s == 1 and shape(dY) != 1). */
function dynamicUnbroadcast(ctx: GradContext, grad: string, toInput: string): string {
  const sg = ctx.op('Shape', [grad]);
  const sx = ctx.op('Shape', [toInput]);
  const missing = ctx.op('Sub', [ctx.op('Size', [sg]), ctx.op('Size', [sx])]);
  const ones = ctx.op('ConstantOfShape', [ctx.op('Reshape', [missing, ctx.ints([1])])], {
    value: attr.tensor(tensor('int64', [1], BigInt64Array.of(1n))),
  });
  const padded = ctx.op('Concat', [ones, sx], { axis: attr.int(0) });
  const one = ctx.ints([1]);
  const mask = ctx.op('And', [ctx.op('Equal', [padded, one]), ctx.op('Not', [ctx.op('Equal', [sg, one])])]);
  const axes = ctx.op('Reshape', [ctx.op('NonZero', [mask]), ctx.ints([-1])]);
  const summed = ctx.op('ReduceSum', [grad, axes], { keepdims: attr.int(1), noop_with_empty_axes: attr.int(1) });
  return ctx.op('Reshape', [summed, sx]);
}
