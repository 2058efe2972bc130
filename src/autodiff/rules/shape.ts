import { AppError } from '../../kernel/errors.ts';
import { attr, getInt, getInts, getString } from '../../onnx/ir.ts';
import { type GradContext, type RuleTable, axisOf, masked, range, rule } from '../context.ts';
import { scatterBack } from './scatter.ts';

/** Shape and indexing ops: gradients move values back to where they came from. */

const g0 = (ctx: GradContext): string => ctx.dY[0] as string;
/** dX = reshape(dY, shape(X)); every other input (shape, axes) gets none. */
const reshapeBack = (ctx: GradContext): (string | null)[] =>
  ctx.node.inputs.map((_, i) => (i === 0 ? ctx.op('Reshape', [g0(ctx), ctx.op('Shape', [ctx.x(0)])]) : null));

const INT64_MAX = Number.MAX_SAFE_INTEGER;

/** Zeros shaped like forward value `v`. */
const zerosLike = (ctx: GradContext, v: string): string => ctx.op('Expand', [ctx.scalar(0, v), ctx.op('Shape', [v])]);

export const shapeRules: RuleTable = {
  Reshape: rule(reshapeBack),
  Flatten: rule(reshapeBack),
  Squeeze: rule(reshapeBack),
  Unsqueeze: rule(reshapeBack),
  // dX = dY, un-broadcast to X's shape by the engine; the shape input gets none.
  Expand: rule((ctx) => [g0(ctx), null], [0]),
  // dX = transpose(dY, perm⁻¹)
  Transpose: rule((ctx) => {
    const perm = getInts(ctx.node, 'perm') ?? range(ctx.rank(ctx.x(0))).reverse();
    const inv = new Array<number>(perm.length);
    perm.forEach((p, i) => { inv[p] = i; });
    return [ctx.op('Transpose', [g0(ctx)], { perm: attr.ints(inv) })];
  }),
  // dXᵢ = the i-th piece of dY split along the axis at the inputs' sizes
  Concat: rule((ctx) => {
    const axis = getInt(ctx.node, 'axis', 0);
    const sizes = ctx.node.inputs.map((x) => {
      const shape = ctx.typeIfKnown(x)?.shape;
      const d = shape?.[axisOf(axis, shape.length)];
      return typeof d === 'number' ? ctx.ints([d]) : ctx.op('Gather', [ctx.op('Shape', [x]), ctx.ints([axis])]);
    });
    const split = sizes.length === 1 ? sizes[0] : ctx.op('Concat', sizes, { axis: attr.int(0) });
    const parts = ctx.opN('Split', [g0(ctx), split], { axis: attr.int(axis) }, ctx.node.inputs.length);
    return parts.map((p, i) => (ctx.needs(i) ? p : null));
  }),
  // dX = concat(dYᵢ, zeros where an output had no gradient)
  Split: rule((ctx) => {
    const parts = ctx.node.outputs.map((y, i) => ctx.dY[i] ?? zerosLike(ctx, y));
    return ctx.node.inputs.map((_, i) => (i === 0 ? ctx.op('Concat', parts, { axis: attr.int(getInt(ctx.node, 'axis', 0)) }) : null));
  }),
  Slice: rule((ctx) => [sliceGrad(ctx), null, null, null, null].slice(0, ctx.node.inputs.length)),
  Pad: rule((ctx) => ctx.node.inputs.map((_, i) => (i === 0 ? padGrad(ctx) : null))),
  // dData = scatter-add of dY to the gathered positions; indices get none.
  Gather: rule((ctx) => [
    scatterBack(ctx, (idx) => ctx.op('Gather', [idx, ctx.x(1)], { axis: attr.int(getInt(ctx.node, 'axis', 0)) }), g0(ctx), true),
    null,
  ]),
  GatherElements: rule((ctx) => [
    scatterBack(ctx, (idx) => ctx.op('GatherElements', [idx, ctx.x(1)], { axis: attr.int(getInt(ctx.node, 'axis', 0)) }), g0(ctx), true),
    null,
  ]),
  // Training: dX = dY·mask/(1−ratio); inference: identity.
  Dropout: rule((ctx) => {
    const rest = ctx.node.inputs.slice(1).map(() => null);
    const training = ctx.x(2) === '' ? false : (ctx.constInts(ctx.x(2)) ?? boolConst(ctx, ctx.x(2)))[0] !== 0;
    if (!training) return [g0(ctx), ...rest];
    const ratio = ctx.x(1) === '' ? 0.5 : ctx.constFloats(ctx.x(1))?.[0];
    if (ratio === undefined) throw new AppError('UNSUPPORTED_OP', `autodiff: Dropout with non-constant ratio (node ${ctx.node.name})`);
    const mask = ctx.requireOutput(1);
    const scaled = ctx.op('Mul', [g0(ctx), ctx.scalar(1 / (1 - ratio), ctx.x(0))]);
    return [masked(ctx, mask, scaled), ...rest];
  }),
};

function boolConst(ctx: GradContext, v: string): number[] {
  const init = ctx.b.graph.initializers.get(v);
  if (init?.dtype === 'bool') return Array.from(init.data as Uint8Array);
  throw new AppError('UNSUPPORTED_OP', `autodiff: Dropout with non-constant training_mode (node ${ctx.node.name})`);
}

/**
 * Slice: with unit steps and a static input the gradient is dY padded back with zeros; otherwise
 * dY is scattered to the positions the same Slice picks out of an index map.
 */
function sliceGrad(ctx: GradContext): string {
  const [x, startsV, endsV, axesV, stepsV] = [0, 1, 2, 3, 4].map((i) => ctx.x(i));
  const starts = ctx.constInts(startsV);
  const ends = ctx.constInts(endsV);
  const axes = axesV === '' ? starts?.map((_, i) => i) : ctx.constInts(axesV);
  const steps = stepsV === '' ? starts?.map(() => 1) : ctx.constInts(stepsV);
  const shape = ctx.type(x).shape;
  if (starts && ends && axes && steps && steps.every((s) => s === 1)) {
    const rank = shape.length;
    const pads = new Array<number>(2 * rank).fill(0);
    let ok = true;
    axes.forEach((a0, k) => {
      const a = axisOf(a0, rank);
      const dim = shape[a];
      if (typeof dim !== 'number') { ok = false; return; }
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
      const s = clamp(starts[k]);
      const e = Math.max(clamp(ends[k]), s);
      pads[a] = s;
      pads[a + rank] = dim - e;
    });
    if (ok) return ctx.op('Pad', [g0(ctx), ctx.ints(pads)]);
  }
  const inputs = [startsV, endsV, axesV, stepsV];
  while (inputs[inputs.length - 1] === '') inputs.pop();
  return scatterBack(ctx, (idx) => ctx.op('Slice', [idx, ...inputs]), g0(ctx), false);
}

/** Pad: constant mode crops dY back (and pads where pads were negative); edge/reflect modes
 *  scatter-add dY to the source of every padded element. */
function padGrad(ctx: GradContext): string {
  const mode = getString(ctx.node, 'mode', 'constant');
  const inputs = ctx.node.inputs.slice(1);
  if (mode !== 'constant') {
    // The index map is int64: the float constant_value input is left out.
    const padInputs = inputs.map((v, i) => (i === 1 ? '' : v));
    while (padInputs[padInputs.length - 1] === '') padInputs.pop();
    return scatterBack(ctx, (idx) => ctx.op('Pad', [idx, ...padInputs], { mode: attr.string(mode) }), g0(ctx), true);
  }
  const pads = ctx.constInts(ctx.x(1));
  if (!pads) throw new AppError('UNSUPPORTED_OP', `autodiff: Pad with non-constant pads (node ${ctx.node.name})`);
  // Opset 17's Pad has no axes input: pads cover every axis, begins then ends.
  const n = pads.length / 2;
  const starts = pads.slice(0, n).map((p) => Math.max(p, 0));
  const ends = pads.slice(n).map((p) => (p > 0 ? -p : INT64_MAX));
  let g = ctx.op('Slice', [g0(ctx), ctx.ints(starts), ctx.ints(ends), ctx.ints(range(n))]);
  if (pads.some((p) => p < 0)) g = ctx.op('Pad', [g, ctx.ints(pads.map((p) => Math.max(-p, 0)))]);
  return g;
}
