import { AppError } from '../../kernel/errors.ts';
import { getInt, getInts } from '../../onnx/ir.ts';
import { type GradContext, type RuleTable, axisOf, rule } from '../context.ts';

/**
 * Reductions. Opset 17 takes ReduceSum's axes as an input and the other reductions' as an
 * attribute; either way they must be constants to be differentiated.
 */

/** The reduced axes (normalized), or null for "all axes". */
function reducedAxes(ctx: GradContext): number[] | null {
  const node = ctx.node;
  let axes: number[] | undefined;
  if (node.opType === 'ReduceSum') {
    const input = ctx.x(1);
    if (input !== '') {
      axes = ctx.constInts(input);
      if (!axes) throw new AppError('UNSUPPORTED_OP', `autodiff: ${node.opType} with non-constant axes (node ${node.name})`);
    }
  } else {
    axes = getInts(node, 'axes');
  }
  if (!axes || axes.length === 0) return null;
  if (axes.every((a) => a >= 0)) return axes;
  const rank = ctx.rank(ctx.x(0));
  return axes.map((a) => axisOf(a, rank));
}

/** A value shaped like the reduction's output, brought back to X's shape (keepdims restored,
 *  then broadcast). */
export function expandToInput(ctx: GradContext, v: string, axes: number[] | null, keepdims: boolean): string {
  const x = ctx.x(0);
  const kept = keepdims || axes === null ? v : ctx.op('Unsqueeze', [v, ctx.ints(axes)]);
  return ctx.op('Expand', [kept, ctx.op('Shape', [x])]);
}

/** Elements per reduced group as a scalar of X's dtype: static where shapes are, else Size(X)/Size(Y). */
export function groupSize(ctx: GradContext, x: string, y: string): string {
  const xs = ctx.type(x).shape;
  const ys = ctx.type(y).shape;
  if ([...xs, ...ys].every((d) => typeof d === 'number')) {
    const n = (xs as number[]).reduce((a, b) => a * b, 1) / (ys as number[]).reduce((a, b) => a * b, 1);
    return ctx.scalar(n, x);
  }
  return ctx.op('Div', [ctx.op('CastLike', [ctx.op('Size', [x]), x]), ctx.op('CastLike', [ctx.op('Size', [y]), x])]);
}

function reduceSetup(ctx: GradContext): { axes: number[] | null; keepdims: boolean; noop: boolean } {
  const axes = reducedAxes(ctx);
  const noop = axes === null && getInt(ctx.node, 'noop_with_empty_axes', 0) !== 0;
  return { axes, keepdims: getInt(ctx.node, 'keepdims', 1) !== 0, noop };
}

/** Ties share the gradient evenly, as PyTorch's amax/amin do. */
function extremumGrad(ctx: GradContext): (string | null)[] {
  const { axes, keepdims, noop } = reduceSetup(ctx);
  const g = ctx.dY[0] as string;
  const rest = ctx.node.inputs.slice(1).map(() => null);
  if (noop) return [g, ...rest];
  const x = ctx.x(0);
  const mask = ctx.op('CastLike', [ctx.op('Equal', [x, expandToInput(ctx, ctx.y(0), axes, keepdims)]), x]);
  const count = ctx.op('ReduceSum', axes === null ? [mask] : [mask, ctx.ints(axes)], { keepdims: { kind: 'int', value: 1 } });
  const share = ctx.op('Div', [ctx.op('Mul', [mask, expandToInput(ctx, g, axes, keepdims)]), count]);
  return [share, ...rest];
}

export const reduceRules: RuleTable = {
  // dX = broadcast(dY)
  ReduceSum: rule((ctx) => {
    const { axes, keepdims, noop } = reduceSetup(ctx);
    const g = ctx.dY[0] as string;
    return ctx.node.inputs.map((_, i) => (i > 0 ? null : noop ? g : expandToInput(ctx, g, axes, keepdims)));
  }),
  // dX = broadcast(dY) / n
  ReduceMean: rule((ctx) => {
    const { axes, keepdims, noop } = reduceSetup(ctx);
    const g = ctx.dY[0] as string;
    if (noop) return [g];
    return [ctx.op('Div', [expandToInput(ctx, g, axes, keepdims), groupSize(ctx, ctx.x(0), ctx.y(0))])];
  }),
  // dX = 2·X·broadcast(dY)
  ReduceSumSquare: rule((ctx) => {
    const { axes, keepdims } = reduceSetup(ctx);
    const x = ctx.x(0);
    return [ctx.op('Mul', [ctx.op('Mul', [x, ctx.scalar(2, x)]), expandToInput(ctx, ctx.dY[0] as string, axes, keepdims)])];
  }),
  // dX = broadcast(dY)·e^(X − broadcast(Y))
  ReduceLogSumExp: rule((ctx) => {
    const { axes, keepdims } = reduceSetup(ctx);
    const x = ctx.x(0);
    const p = ctx.op('Exp', [ctx.op('Sub', [x, expandToInput(ctx, ctx.y(0), axes, keepdims)])]);
    return [ctx.op('Mul', [p, expandToInput(ctx, ctx.dY[0] as string, axes, keepdims)])];
  }),
  ReduceMax: rule(extremumGrad),
  ReduceMin: rule(extremumGrad),
};
