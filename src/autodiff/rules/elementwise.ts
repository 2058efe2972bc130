import { getInt } from '../../onnx/ir.ts';
import { type GradContext, type RuleTable, rule } from '../context.ts';

/**
 * Elementwise arithmetic. Rules return gradients shaped like the output; the engine sums them
 * back over broadcast axes (the `broadcast` column), so no rule here deals with broadcasting.
 */

const g0 = (ctx: GradContext): string => ctx.dY[0] as string;
const when = (ctx: GradContext, i: number, make: () => string): string | null => (ctx.needs(i) ? make() : null);

/** Gradient for each input of a variadic Max/Min: the output's gradient goes to the inputs equal
 *  to the output, split evenly among ties (as PyTorch's maximum/minimum do). */
function extremumGrad(ctx: GradContext): (string | null)[] {
  const y = ctx.y(0);
  const masks = ctx.node.inputs.map((x) => ctx.op('CastLike', [ctx.op('Equal', [x, y]), y]));
  const count = masks.length > 1 ? ctx.op('Sum', masks) : masks[0];
  const share = ctx.op('Div', [g0(ctx), count]);
  return masks.map((m, i) => when(ctx, i, () => ctx.op('Mul', [share, m])));
}

export const elementwiseRules: RuleTable = {
  Identity: rule((ctx) => [g0(ctx)]),
  // dA = dY, dB = dY
  Add: rule((ctx) => [g0(ctx), g0(ctx)], [0, 1]),
  // dA = dY, dB = -dY
  Sub: rule((ctx) => [g0(ctx), when(ctx, 1, () => ctx.op('Neg', [g0(ctx)]))], [0, 1]),
  // dA = dY·B, dB = dY·A
  Mul: rule((ctx) => [
    when(ctx, 0, () => ctx.op('Mul', [g0(ctx), ctx.x(1)])),
    when(ctx, 1, () => ctx.op('Mul', [g0(ctx), ctx.x(0)])),
  ], [0, 1]),
  // dA = dY / B, dB = -dY·Y / B
  Div: rule((ctx) => [
    when(ctx, 0, () => ctx.op('Div', [g0(ctx), ctx.x(1)])),
    when(ctx, 1, () => ctx.op('Neg', [ctx.op('Div', [ctx.op('Mul', [g0(ctx), ctx.y(0)]), ctx.x(1)])])),
  ], [0, 1]),
  // dA = dY·B·A^(B-1), dB = dY·Y·ln A
  Pow: rule((ctx) => {
    const a = ctx.x(0);
    const e = ctx.op('CastLike', [ctx.x(1), a]);
    return [
      when(ctx, 0, () => ctx.op('Mul', [ctx.op('Mul', [g0(ctx), e]), ctx.op('Pow', [a, ctx.op('Sub', [e, ctx.scalar(1, a)])])])),
      when(ctx, 1, () => ctx.op('Mul', [ctx.op('Mul', [g0(ctx), ctx.y(0)]), ctx.op('Log', [a])])),
    ];
  }, [0, 1]),
  Sum: rule((ctx) => ctx.node.inputs.map(() => g0(ctx)), 'all'),
  Max: rule(extremumGrad, 'all'),
  Min: rule(extremumGrad, 'all'),
  // dX = -dY
  Neg: rule((ctx) => [ctx.op('Neg', [g0(ctx)])]),
  // dX = dY·sign(X)
  Abs: rule((ctx) => [ctx.op('Mul', [g0(ctx), ctx.op('Sign', [ctx.x(0)])])]),
  // dX = dY·Y
  Exp: rule((ctx) => [ctx.op('Mul', [g0(ctx), ctx.y(0)])]),
  // dX = dY / X
  Log: rule((ctx) => [ctx.op('Div', [g0(ctx), ctx.x(0)])]),
  // dX = dY / (2·Y)
  Sqrt: rule((ctx) => [ctx.op('Div', [ctx.op('Mul', [g0(ctx), ctx.scalar(0.5, ctx.x(0))]), ctx.y(0)])]),
  // dX = -dY·Y²
  Reciprocal: rule((ctx) => [ctx.op('Neg', [ctx.op('Mul', [g0(ctx), ctx.op('Mul', [ctx.y(0), ctx.y(0)])])])]),
  // dCond = none, dA = where(cond, dY, 0), dB = where(cond, 0, dY)
  Where: rule((ctx) => {
    const zero = ctx.scalar(0, ctx.y(0));
    return [
      null,
      when(ctx, 1, () => ctx.op('Where', [ctx.x(0), g0(ctx), zero])),
      when(ctx, 2, () => ctx.op('Where', [ctx.x(0), zero, g0(ctx)])),
    ];
  }, [1, 2]),
  // Between float types the gradient is cast back; a cast to int or bool has none (an int input
  // never depends on a wrt value, so only the target type needs checking).
  Cast: rule((ctx) => [castBack(ctx)]),
  CastLike: rule((ctx) => [castBack(ctx), null]),
};

// ONNX TensorProto codes of float16, float, double, bfloat16
const FLOAT_CODES = new Set([1, 10, 11, 16]);
const FLOATS = new Set(['float32', 'float64', 'float16']);
function castBack(ctx: GradContext): string | null {
  const node = ctx.node;
  const toFloat = node.opType === 'Cast'
    ? FLOAT_CODES.has(getInt(node, 'to', 0))
    : FLOATS.has(ctx.typeIfKnown(ctx.x(1))?.dtype ?? 'float32');
  return toFloat ? ctx.op('CastLike', [g0(ctx), ctx.x(0)]) : null;
}
