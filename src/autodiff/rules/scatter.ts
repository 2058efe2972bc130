import { attr } from '../../onnx/ir.ts';
import type { GradContext } from '../context.ts';

/**
 * The adjoint of any op that only moves elements of X around (Gather, Slice, edge/reflect Pad):
 * run the same op on a map of X's flat indices to learn where each output element came from,
 * then scatter dY back to those positions (adding, where one element was used several times).
 */
export function scatterBack(ctx: GradContext, sameOp: (indexMap: string) => string, dY: string, accumulate: boolean): string {
  const x = ctx.x(0);
  const shape = ctx.op('Shape', [x]);
  const size = ctx.op('Size', [x]);
  const indexMap = ctx.op('Reshape', [ctx.op('Range', [ctx.intScalar(0), size, ctx.intScalar(1)]), shape]);
  const sources = ctx.op('Reshape', [sameOp(indexMap), ctx.ints([-1])]);
  return scatterFlat(ctx, sources, dY, accumulate);
}

/** dX = reshape(scatter(zeros(size X), flatIndices, flatten dY), shape X). */
function scatterFlat(ctx: GradContext, flatIndices: string, dY: string, accumulate: boolean): string {
  const x = ctx.x(0);
  const zeros = ctx.op('Expand', [ctx.scalar(0, x), ctx.op('Reshape', [ctx.op('Size', [x]), ctx.ints([1])])]);
  const scattered = ctx.op('ScatterElements', [zeros, flatIndices, ctx.op('Reshape', [dY, ctx.ints([-1])])], {
    axis: attr.int(0),
    ...(accumulate ? { reduction: attr.string('add') } : {}),
  });
  return ctx.op('Reshape', [scattered, ctx.op('Shape', [x])]);
}

