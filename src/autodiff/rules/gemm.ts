import { AppError } from '../../kernel/errors.ts';
import { attr, getFloat, getInt } from '../../onnx/ir.ts';
import { type GradContext, type RuleTable, range, rule } from '../context.ts';

/** Matrix products. */

type Flags = { transA: boolean; transB: boolean; alpha: number };
const gemm = (ctx: GradContext, a: string, b: string, f: Flags): string =>
  ctx.op('Gemm', [a, b], {
    ...(f.transA ? { transA: attr.int(1) } : {}),
    ...(f.transB ? { transB: attr.int(1) } : {}),
    ...(f.alpha !== 1 ? { alpha: attr.float(f.alpha) } : {}),
  });

/** Swaps the last two axes. */
const transposeLast = (ctx: GradContext, v: string, rank: number): string =>
  ctx.op('Transpose', [v], { perm: attr.ints([...range(rank - 2), rank - 1, rank - 2]) });

export const gemmRules: RuleTable = {
  // Y = α·op(A)·op(B) + β·C
  Gemm: rule((ctx) => {
    const node = ctx.node;
    const [a, b] = [ctx.x(0), ctx.x(1)];
    const dy = ctx.dY[0] as string;
    const tA = getInt(node, 'transA', 0) !== 0;
    const tB = getInt(node, 'transB', 0) !== 0;
    const alpha = getFloat(node, 'alpha', 1);
    const beta = getFloat(node, 'beta', 1);
    // dA = α·dY·op(B)ᵀ  (or its transpose when A is stored transposed)
    const dA = () => (tA ? gemm(ctx, b, dy, { transA: tB, transB: true, alpha }) : gemm(ctx, dy, b, { transA: false, transB: !tB, alpha }));
    // dB = α·op(A)ᵀ·dY  (or its transpose when B is stored transposed)
    const dB = () => (tB ? gemm(ctx, dy, a, { transA: true, transB: tA, alpha }) : gemm(ctx, a, dy, { transA: !tA, transB: false, alpha }));
    // dC = β·dY, summed over broadcast axes by the engine
    const dC = () => (beta === 1 ? dy : ctx.op('Mul', [dy, ctx.scalar(beta, a)]));
    return [
      ctx.needs(0) ? dA() : null,
      ctx.needs(1) ? dB() : null,
      ...(node.inputs.length > 2 ? [ctx.needs(2) ? dC() : null] : []),
    ];
  }, [2]),
  // Y = A·B with batch broadcasting: dA = dY·Bᵀ, dB = Aᵀ·dY, each summed over broadcast batch axes.
  MatMul: rule((ctx) => {
    const [a, b] = [ctx.x(0), ctx.x(1)];
    const dy = ctx.dY[0] as string;
    const ra = ctx.rank(a);
    const rb = ctx.rank(b);
    if (ra < 2 || rb < 2) throw new AppError('UNSUPPORTED_OP', `autodiff: MatMul with a 1-D operand (node ${ctx.node.name}); use Unsqueeze`);
    const yShape = ctx.type(ctx.y(0)).shape;
    const batch = yShape.slice(0, -2);
    const ta = ctx.type(a).shape;
    const tb = ctx.type(b).shape;
    return [
      ctx.needs(0) ? ctx.unbroadcast(ctx.op('MatMul', [dy, transposeLast(ctx, b, rb)]), a, [...batch, ...ta.slice(-2)]) : null,
      ctx.needs(1) ? ctx.unbroadcast(ctx.op('MatMul', [transposeLast(ctx, a, ra), dy]), b, [...batch, ...tb.slice(-2)]) : null,
    ];
  }),
};
