import { AppError } from '../../kernel/errors.ts';
import { getString } from '../../onnx/ir.ts';
import { type GradContext, type RuleTable, range, rule } from '../context.ts';

/**
 * Resize (nearest, linear) is separable and linear in X: along each resized axis Y = M·X with
 * an interpolation matrix M [out, in] built here from the same coordinate rules as
 * onnxruntime's kernel. So dX = Mᵀ·dY per axis, done as MatMuls against constant matrices
 * (only the last two axes may be resized, as in images).
 */

type Mode = { mode: string; coord: string; nearest: string };

/** Where output position o reads from, in input coordinates. */
function sourceCoord(o: number, scale: number, inSize: number, outSize: number, coord: string): number {
  switch (coord) {
    case 'half_pixel': return (o + 0.5) / scale - 0.5;
    case 'pytorch_half_pixel': return outSize > 1 ? (o + 0.5) / scale - 0.5 : 0;
    case 'align_corners': return outSize === 1 ? 0 : (o * (inSize - 1)) / (outSize - 1);
    case 'asymmetric': return o / scale;
    case 'tf_half_pixel_for_nn': return (o + 0.5) / scale;
    default: throw new AppError('UNSUPPORTED_OP', `autodiff: Resize coordinate_transformation_mode ${coord}`);
  }
}

function nearestIndex(x: number, mode: string): number {
  switch (mode) {
    case 'round_prefer_floor': return x === Math.floor(x) + 0.5 ? Math.floor(x) : Math.round(x);
    case 'round_prefer_ceil': return Math.round(x);
    case 'floor': return Math.floor(x);
    case 'ceil': return Math.ceil(x);
    default: throw new AppError('UNSUPPORTED_OP', `autodiff: Resize nearest_mode ${mode}`);
  }
}

/** M [out, in], row-major, so that y = M·x along one axis. */
export function interpolationMatrix(inSize: number, outSize: number, scale: number, m: Mode): number[] {
  const mat = new Array<number>(outSize * inSize).fill(0);
  for (let o = 0; o < outSize; o++) {
    const src = sourceCoord(o, scale, inSize, outSize, m.coord);
    if (m.mode === 'nearest') {
      const i = Math.min(Math.max(nearestIndex(src, m.nearest), 0), inSize - 1);
      mat[o * inSize + i] = 1;
    } else {
      const x = Math.min(Math.max(src, 0), inSize - 1);
      const i0 = Math.floor(x);
      const i1 = Math.min(i0 + 1, inSize - 1);
      const frac = i0 === i1 ? 0 : x - i0;
      mat[o * inSize + i0] += 1 - frac;
      mat[o * inSize + i1] += frac;
    }
  }
  return mat;
}

const transpose = (mat: number[], rows: number, cols: number): number[] =>
  range(cols * rows).map((k) => mat[(k % rows) * cols + Math.floor(k / rows)]);

export const resizeRules: RuleTable = {
  Resize: rule((ctx: GradContext) => {
    const node = ctx.node;
    const x = ctx.x(0);
    const m: Mode = {
      mode: getString(node, 'mode', 'nearest'),
      coord: getString(node, 'coordinate_transformation_mode', 'half_pixel'),
      nearest: getString(node, 'nearest_mode', 'round_prefer_floor'),
    };
    if (m.mode !== 'nearest' && m.mode !== 'linear') throw new AppError('UNSUPPORTED_OP', `autodiff: Resize mode ${m.mode} (node ${node.name})`);
    const inShape = ctx.type(x).shape;
    const outShape = ctx.type(ctx.y(0)).shape;
    const rank = inShape.length;
    const scales = ctx.x(2) === '' ? undefined : ctx.constFloats(ctx.x(2));
    let g = ctx.dY[0] as string;
    for (let a = 0; a < rank; a++) {
      const [i, o] = [inShape[a], outShape[a]];
      if (i === o && (!scales || scales.length === 0 || scales[a] === 1)) continue;
      if (typeof i !== 'number' || typeof o !== 'number' || a < rank - 2) {
        throw new AppError('UNSUPPORTED_OP', `autodiff: Resize gradient supports static resizing of the last two axes only (node ${node.name})`);
      }
      const scale = scales && scales.length ? scales[a] : o / i;
      const mat = interpolationMatrix(i, o, scale, m);
      g = a === rank - 1
        // along the last axis: dX = dY·M
        ? ctx.op('MatMul', [g, ctx.constant(mat, [o, i], x)])
        // along the one before: dX = Mᵀ·dY
        : ctx.op('MatMul', [ctx.constant(transpose(mat, o, i), [i, o], x), g]);
    }
    return [g, ...node.inputs.slice(1).map(() => null)];
  }),
};
