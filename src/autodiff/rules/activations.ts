import { attr, getFloat, getInt } from '../../onnx/ir.ts';
import { type GradContext, type RuleTable, masked, rule, scalarAtRank } from '../context.ts';

const g0 = (ctx: GradContext): string => ctx.dY[0] as string;
/** dY where `mask` holds, 0 elsewhere. */
const gate = (ctx: GradContext, mask: string, g = g0(ctx)): string => masked(ctx, mask, g);

/** Softmax-family axis (opset 13+: one axis, default -1), as a 1-D int64 constant. */
const softmaxAxis = (ctx: GradContext): string => ctx.ints([getInt(ctx.node, 'axis', -1)]);

export const activationRules: RuleTable = {
  // dX = dY·[Y > 0] (= [X > 0]): reading the output, not the input, lets the runtime free the
  // input (typically a batch norm's output) after the forward pass, as PyTorch's in-place ReLU does.
  // The mask is Clip(Ceil(Y), 0, 1), exact for Y ≥ 0 (any positive float ceils to ≥ 1): both ops
  // run on onnxruntime's thread pool, where Cast(Greater(Y, 0)) runs on one thread (32×16×112×112
  // at 2 threads: 2.50 against 3.10 ms; MobileNetV3-Small step −2.4 % and −1.7 % in two A/Bs,
  // ResNet-18 within noise).
  Relu: rule((ctx) => [ctx.op('Mul', [g0(ctx), ctx.op('Clip', [ctx.op('Ceil', [ctx.y(0)]), ctx.scalar(0, ctx.x(0)), ctx.scalar(1, ctx.x(0))])])]),
  // dX = dY·(X > 0 ? 1 : alpha)
  LeakyRelu: rule((ctx) => {
    const alpha = getFloat(ctx.node, 'alpha', 0.01);
    const pos = ctx.op('Greater', [ctx.x(0), ctx.scalar(0, ctx.x(0))]);
    return [ctx.op('Where', [pos, g0(ctx), ctx.op('Mul', [g0(ctx), ctx.scalar(alpha, ctx.x(0))])])];
  }),
  // dX = dY·[min < X < max] (strict, as PyTorch's hardtanh/relu6); bounds get no gradient.
  Clip: rule((ctx) => {
    const x = ctx.x(0);
    const conds: string[] = [];
    if (ctx.x(1) !== '') conds.push(ctx.op('Greater', [x, ctx.x(1)]));
    if (ctx.x(2) !== '') conds.push(ctx.op('Less', [x, ctx.x(2)]));
    const gx = conds.length === 0 ? g0(ctx) : gate(ctx, conds.length === 2 ? ctx.op('And', conds) : conds[0]);
    return ctx.node.inputs.map((_, i) => (i === 0 ? gx : null));
  }),
  // dX = dY·Y·(1−Y)
  Sigmoid: rule((ctx) => {
    const y = ctx.y(0);
    return [ctx.op('Mul', [g0(ctx), ctx.op('Mul', [y, ctx.op('Sub', [ctx.scalar(1, y), y])])])];
  }),
  // dX = dY·(1−Y²)
  Tanh: rule((ctx) => {
    const y = ctx.y(0);
    return [ctx.op('Mul', [g0(ctx), ctx.op('Sub', [ctx.scalar(1, y), ctx.op('Mul', [y, y])])])];
  }),
  // Y = clamp(alpha·X + beta, 0, 1): dX = alpha·dY where 0 < Y < 1
  HardSigmoid: rule((ctx) => {
    const y = ctx.y(0);
    const alpha = getFloat(ctx.node, 'alpha', 0.2);
    // at Y's rank: squeeze-excite gates are [N, C, 1, 1] (see scalarAtRank)
    const inside = ctx.op('And', [ctx.op('Greater', [y, scalarAtRank(ctx, 0, y)]), ctx.op('Less', [y, scalarAtRank(ctx, 1, y)])]);
    return [gate(ctx, inside, ctx.op('Mul', [g0(ctx), scalarAtRank(ctx, alpha, y)]))];
  }),
  // Y = X·h(X), h = clamp(X/6 + 1/2, 0, 1): dX = 0 for X < −3, dY·(X/3 + 1/2) for X ≤ 3, dY
  // above (PyTorch's hardswish_backward, boundaries included). Written as h + X/6·[|X| ≤ 3], the
  // product rule, with the band as a float mask: no Where (see `masked`); 8.9 against 22.9 ms on
  // 32×72×56×56.
  HardSwish: rule((ctx) => {
    const x = ctx.x(0);
    const h = ctx.op('HardSigmoid', [x], { alpha: attr.float(1 / 6), beta: attr.float(0.5) });
    // [|X| ≤ 3] = ⌊clamp(4 − |X|, 0, 1)⌋, exact (4 − |X| is exact near 3), in ops onnxruntime runs
    // on its thread pool, where LessOrEqual and Cast run on one (MobileNetV3-Small step −2.7 %
    // in two A/Bs)
    const band = ctx.op('Floor', [ctx.op('HardSigmoid', [ctx.op('Abs', [x])], { alpha: attr.float(-1), beta: attr.float(4) })]);
    const slope = ctx.op('Add', [h, ctx.op('Mul', [ctx.op('Mul', [x, ctx.scalar(1 / 6, x)]), band])]);
    return [ctx.op('Mul', [g0(ctx), slope])];
  }),
  // dX = dY where X > 0, dY·slope elsewhere; dSlope = dY·X where X ≤ 0 (summed over broadcast axes)
  PRelu: rule((ctx) => {
    const x = ctx.x(0);
    const pos = ctx.op('Greater', [x, ctx.scalar(0, x)]);
    const zero = ctx.scalar(0, x);
    return [
      ctx.needs(0) ? ctx.op('Where', [pos, g0(ctx), ctx.op('Mul', [g0(ctx), ctx.x(1)])]) : null,
      ctx.needs(1) ? ctx.op('Where', [pos, zero, ctx.op('Mul', [g0(ctx), x])]) : null,
    ];
  }, [0, 1]),
  // Y = X for X > 0, alpha·(e^X − 1) below: dX = dY, or dY·(Y + alpha) below
  Elu: rule((ctx) => {
    const x = ctx.x(0);
    const alpha = getFloat(ctx.node, 'alpha', 1);
    const below = ctx.op('Mul', [g0(ctx), ctx.op('Add', [ctx.y(0), ctx.scalar(alpha, x)])]);
    return [ctx.op('Where', [ctx.op('Greater', [x, ctx.scalar(0, x)]), g0(ctx), below])];
  }),
  // dX = dY·2/√π·e^(−X²)  (GELU as exported by torch is built on Erf)
  Erf: rule((ctx) => {
    const x = ctx.x(0);
    const bell = ctx.op('Exp', [ctx.op('Neg', [ctx.op('Mul', [x, x])])]);
    return [ctx.op('Mul', [g0(ctx), ctx.op('Mul', [bell, ctx.scalar(2 / Math.sqrt(Math.PI), x)])])];
  }),
  // Y = ln(1 + e^X): dX = dY·σ(X)
  Softplus: rule((ctx) => [ctx.op('Mul', [g0(ctx), ctx.op('Sigmoid', [ctx.x(0)])])]),
  // dX = Y·(dY − Σ_axis dY·Y)
  Softmax: rule((ctx) => {
    const y = ctx.y(0);
    const dot = ctx.op('ReduceSum', [ctx.op('Mul', [g0(ctx), y]), softmaxAxis(ctx)], { keepdims: attr.int(1) });
    return [ctx.op('Mul', [y, ctx.op('Sub', [g0(ctx), dot])])];
  }),
  // dX = dY − e^Y·Σ_axis dY
  LogSoftmax: rule((ctx) => {
    const total = ctx.op('ReduceSum', [g0(ctx), softmaxAxis(ctx)], { keepdims: attr.int(1) });
    return [ctx.op('Sub', [g0(ctx), ctx.op('Mul', [ctx.op('Exp', [ctx.y(0)]), total])])];
  }),
};
