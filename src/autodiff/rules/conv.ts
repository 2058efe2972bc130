import { AppError } from '../../kernel/errors.ts';
import { attr, getInt, getInts, getString } from '../../onnx/ir.ts';
import { type GradContext, type RuleTable, kernelTaps, range, rule } from '../context.ts';
import { phaseGeometry, stridePhases, tapWindow } from '../phases.ts';

/** Conv and ConvTranspose, any spatial rank, strides, pads, dilations and groups. */

interface ConvGeometry {
  strides: number[];
  dilations: number[];
  /** [begin…, end…] as in ONNX */
  pads: number[];
  group: number;
  kernel: number[];
}

function geometry(ctx: GradContext, spatialIn: number[], kernel: number[]): ConvGeometry {
  const node = ctx.node;
  const r = kernel.length;
  const strides = getInts(node, 'strides') ?? new Array<number>(r).fill(1);
  const dilations = getInts(node, 'dilations') ?? new Array<number>(r).fill(1);
  let pads = getInts(node, 'pads') ?? new Array<number>(2 * r).fill(0);
  const autoPad = getString(node, 'auto_pad', 'NOTSET');
  if (autoPad === 'VALID') pads = new Array<number>(2 * r).fill(0);
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    if (node.opType !== 'Conv') throw new AppError('UNSUPPORTED_OP', `autodiff: ${node.opType} with auto_pad ${autoPad} (node ${node.name})`);
    pads = new Array<number>(2 * r).fill(0);
    for (let i = 0; i < r; i++) {
      const out = Math.ceil(spatialIn[i] / strides[i]);
      const total = Math.max(0, (out - 1) * strides[i] + dilations[i] * (kernel[i] - 1) + 1 - spatialIn[i]);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[i + r] = total - pads[i];
    }
  }
  return { strides, dilations, pads, group: getInt(node, 'group', 1), kernel };
}

/** Spatial dims of a static [N, C, …spatial] value (N may be symbolic). */
function spatialOf(ctx: GradContext, v: string): { channels: number; spatial: number[] } {
  const shape = ctx.type(v).shape;
  const rest = shape.slice(1);
  if (!rest.every((d): d is number => typeof d === 'number')) {
    throw new AppError('UNSUPPORTED_OP', `autodiff: ${ctx.node.opType} gradient needs static channels and spatial dims for '${v}', got [${shape.join(',')}] (node ${ctx.node.name})`);
  }
  return { channels: rest[0], spatial: rest.slice(1) };
}

/** `x` ([N, C, …spatial]) zero-padded by a conv's ONNX `pads` ([begin…, end…]); `x` itself where they are all 0. */
function padSpatial(ctx: GradContext, x: string, pads: number[]): string {
  const r = pads.length / 2;
  return pads.some((p) => p !== 0) ? ctx.op('Pad', [x, ctx.ints([0, 0, ...pads.slice(0, r), 0, 0, ...pads.slice(r)])]) : x;
}

/**
 * The adjoint of a convolution over an input of size `inSize`, as a ConvTranspose of `grad` with
 * the same weights. The rows a strided conv never reached are restored by trimming the end pad or,
 * where that would go negative, by output_padding.
 */
export function transposedConv(ctx: GradContext, grad: string, w: string, g: ConvGeometry, inSize: number[], outSize: number[]): string {
  const r = g.kernel.length;
  const pads = [...g.pads];
  const outputPadding = new Array<number>(r).fill(0);
  for (let i = 0; i < r; i++) {
    const reach = (outSize[i] - 1) * g.strides[i] + g.dilations[i] * (g.kernel[i] - 1) + 1;
    const end = reach - inSize[i] - pads[i];
    if (end >= 0) pads[i + r] = end;
    else { pads[i + r] = 0; outputPadding[i] = -end; }
  }
  return ctx.op('ConvTranspose', [grad, w], {
    strides: attr.ints(g.strides),
    dilations: attr.ints(g.dilations),
    pads: attr.ints(pads),
    group: attr.int(g.group),
    ...(outputPadding.some((p) => p !== 0) ? { output_padding: attr.ints(outputPadding) } : {}),
  });
}

/**
 * dX of a stride-1 conv as a plain Conv of dY with the kernel flipped and its channel axes
 * swapped (per group), padded by d·(k−1) − p: onnxruntime's Conv runs this about twice as fast
 * as the equivalent ConvTranspose (measured 50 ms against 177 ms on the 32×64×56×56 3×3 case).
 * Returns null where the geometry needs ConvTranspose (strides > 1, or pads beyond the kernel).
 */
function flippedConv(ctx: GradContext, dy: string, w: string, g: ConvGeometry, outChannels: number, inChannels: number): string | null {
  const r = g.kernel.length;
  const reach = g.kernel.map((k, i) => g.dilations[i] * (k - 1));
  const pads = g.pads.map((p, j) => reach[j % r] - p);
  if (g.strides.some((s) => s !== 1) || pads.some((p) => p < 0)) return null;
  const spatial = range(r).map((i) => i + 2);
  // W [O, C/g, k…] → W' [C, O/g, k…], reversed along every spatial axis
  const swapped = g.group === 1
    ? ctx.op('Transpose', [w], { perm: attr.ints([1, 0, ...spatial]) })
    : ctx.op('Reshape', [
      ctx.op('Transpose', [ctx.op('Reshape', [w, ctx.ints([g.group, outChannels / g.group, inChannels / g.group, ...g.kernel])])], {
        perm: attr.ints([0, 2, 1, ...spatial.map((a) => a + 1)]),
      }),
      ctx.ints([inChannels, outChannels / g.group, ...g.kernel]),
    ]);
  const taps = g.kernel.reduce((a, k) => a * k, 1);
  // A 1×1 kernel is its own reversal. Reversing every spatial axis reverses each filter's
  // flattened taps, done as a MatMul with the anti-identity: onnxruntime's reversing Slice copies
  // element by element (512×512×3×3: 6.6 ms against ~0, ResNet-18 step −1.2 % (A/B);
  // MobileNetV3-Small's 576×96 and 576×144 pointwise weights took 0.36–0.54 ms each, its step
  // −3.7 % and −6.4 % in two A/Bs without them).
  // Exact for finite weights (each output is one weight times 1 plus zeros).
  const flipped = taps === 1
    ? swapped
    : ctx.op('Reshape', [
      ctx.op('MatMul', [ctx.op('Reshape', [swapped, ctx.ints([-1, taps])]), ctx.constant(antiIdentity(taps), [taps, taps], w)]),
      ctx.op('Shape', [swapped]),
    ]);
  return ctx.op('Conv', [dy, flipped], {
    pads: attr.ints(pads),
    dilations: attr.ints(g.dilations),
    group: attr.int(g.group),
  });
}

/** The n×n matrix with ones on its anti-diagonal: row vector × it = the vector reversed. */
function antiIdentity(n: number): Float32Array {
  const m = new Float32Array(n * n);
  for (let i = 0; i < n; i++) m[i * n + (n - 1 - i)] = 1;
  return m;
}

/**
 * dW of an ungrouped conv, one GEMM per kernel tap (32×64×56×56 3×3, one thread: 203 ms against
 * 542 ms for the convolution form below, whose im2col suits a 3×3 kernel but not a 56×56 one):
 *   dW[:, :, k] = dY₂ · X_k,  dY₂ = dY as [O, N·out],  X_k = the input window tap k reads, as [N·out, C]
 * with X in NHWC so that each tap's window is one strided Slice and a Reshape.
 */
function weightGradByTaps(ctx: GradContext, x: string, channels: number, dy: string, g: ConvGeometry, inSize: number[], outSize: number[]): string {
  const r = g.kernel.length;
  const spatialAxes = range(r).map((i) => i + 1);
  const padded = padSpatial(ctx, x, g.pads);
  const nhwc = ctx.op('Transpose', [padded], { perm: attr.ints([0, ...range(r).map((i) => i + 2), 1]) });
  const dy2 = ctx.op('Reshape', [ctx.op('Transpose', [dy], { perm: attr.ints([1, 0, ...range(r).map((i) => i + 2)]) }), ctx.ints([0, -1])]);
  const flat = ctx.ints([-1, channels]);
  const taps = kernelTaps(g.kernel);
  const last = ctx.ints([2]);
  const parts = taps.map((tap) => {
    const starts = tap.map((t, i) => t * g.dilations[i]);
    const ends = starts.map((st, i) => st + g.strides[i] * (outSize[i] - 1) + 1);
    // a 1×1 stride-1 unpadded conv reads X whole
    const whole = starts.every((st, i) => st === 0 && ends[i] === inSize[i] && g.strides[i] === 1) && g.pads.every((p) => p === 0);
    const window = whole ? nhwc : ctx.op('Slice', [nhwc, ctx.ints(starts), ctx.ints(ends), ctx.ints(spatialAxes), ctx.ints(g.strides)]);
    return ctx.op('Unsqueeze', [ctx.op('Gemm', [dy2, ctx.op('Reshape', [window, flat])]), last]);
  });
  const stacked = parts.length === 1 ? parts[0] : ctx.op('Concat', parts, { axis: attr.int(2) });
  return ctx.op('Reshape', [stacked, ctx.ints([0, channels, ...g.kernel])]);
}

/**
 * The window of X (NCHW) that each kernel tap reads, as a function of the tap: a Slice of X padded,
 * or, for a 2-D conv with equal strides ≥ 2 and at least s² taps, a shifted stride phase (see
 * ../phases.ts): onnxruntime copies strided Slices element by element, and ResNet-18's
 * 64→128 3×3/2 dW (batch 32, 2 threads, the forward conv included) took 86–93 ms with them
 * against 56–58 ms with phases. A 1×1 stride-2 conv reads one phase of s²: it keeps its Slice.
 */
function stridedWindows(ctx: GradContext, x: string, channels: number, g: ConvGeometry, inSize: number[], outSize: number[], tapCount: number): (tap: number[]) => string {
  const r = g.kernel.length;
  const s = g.strides[0];
  if (r === 2 && s >= 2 && g.strides[1] === s && tapCount >= s * s) {
    const phases = stridePhases(ctx, x, channels, s, inSize);
    const geometry = phaseGeometry(s, g.dilations, g.pads, inSize, outSize);
    return (tap) => tapWindow(ctx, phases, tap, geometry).window;
  }
  let padded: string | undefined;
  const spatialAxes = ctx.ints(range(r).map((i) => i + 2));
  return (tap) => {
    const starts = tap.map((t, i) => t * g.dilations[i]);
    // the tap that reads X exactly where it lies (the centre of a stride-1 "same" conv) needs no copy
    if (starts.every((st, i) => st === g.pads[i] && g.strides[i] === 1 && outSize[i] === inSize[i])) return x;
    const ends = starts.map((st, i) => st + g.strides[i] * (outSize[i] - 1) + 1);
    padded ??= padSpatial(ctx, x, g.pads);
    return ctx.op('Slice', [padded, ctx.ints(starts), ctx.ints(ends), spatialAxes, ctx.ints(g.strides)]);
  };
}

/**
 * dW of an ungrouped conv as batched MatMuls on NCHW, for outputs with more positions than channels
 * (L = out positions ≥ C and O), where it ran about twice as fast as the GEMM per tap above
 * (32×64→64×56×56 1×1: 10 ms against 20 ms of CPU; bench/engine/conv-dw-1x1.ts):
 *   dW[:, :, k] = (Σ_n X_k[n] · dY[n]ᵀ)ᵀ,  X_k[n] as [C, L], dY[n]ᵀ as [L, O] (transposed once)
 * A 1×1 stride-1 conv transposes whichever of X and dY has fewer channels.
 */
function weightGradBatched(ctx: GradContext, x: string, channels: number, outChannels: number, dy: string, g: ConvGeometry, inSize: number[], outSize: number[]): string {
  const batch0 = ctx.ints([0]);
  const asRows = (v: string, c: number) => ctx.op('Reshape', [v, ctx.ints([0, c, -1])]);
  const swapLast = { perm: attr.ints([0, 2, 1]) };
  const dyRows = asRows(dy, outChannels);
  const whole = g.kernel.every((k) => k === 1) && g.strides.every((s) => s === 1) && g.pads.every((p) => p === 0);
  if (whole && channels <= outChannels) {
    // Σ_n dY[n] · X[n]ᵀ → [O, C]
    const prod = ctx.op('MatMul', [dyRows, ctx.op('Transpose', [asRows(x, channels)], swapLast)]);
    return ctx.op('Reshape', [ctx.op('ReduceSum', [prod, batch0], { keepdims: attr.int(0) }), ctx.ints([outChannels, channels, ...g.kernel])]);
  }
  const dyT = ctx.op('Transpose', [dyRows], swapLast);
  const taps = kernelTaps(g.kernel);
  const windowOf = stridedWindows(ctx, x, channels, g, inSize, outSize, taps.length);
  const last = ctx.ints([2]);
  const parts = taps.map((tap) => {
    const prod = ctx.op('MatMul', [asRows(whole ? x : windowOf(tap), channels), dyT]);
    return ctx.op('Unsqueeze', [ctx.op('ReduceSum', [prod, batch0], { keepdims: attr.int(0) }), last]);
  });
  const stacked = parts.length === 1 ? parts[0] : ctx.op('Concat', parts, { axis: attr.int(2) });
  return ctx.op('Reshape', [ctx.op('Transpose', [stacked], { perm: attr.ints([1, 0, 2]) }), ctx.ints([outChannels, channels, ...g.kernel])]);
}

/**
 * dW of an ungrouped 2-D conv with equal strides as one batched MatMul over an im2col of X: every
 * kernel tap's window, a shifted stride phase of X (../phases.ts), stacked tap-minor under each
 * channel, so that Σ_n dY[n] · cols[n]ᵀ is dW as [O, C·kh·kw] with no transpose after:
 *   cols[n] = [C·kh·kw, L],  dY[n] = [O, L],  L = output positions
 * For RGB stems, whose C-row per-tap GEMMs waste the machine (the forward conv included, batch 32,
 * 2 threads): MobileNetV3-Small's 3→16 3×3/2 47 → 17 ms, ResNet-18's 3→64 7×7/2 154 → 128 ms
 * against the convolution form. With more channels the per-tap forms below are as fast or faster
 * (ResNet-18's stride-1 3×3 layers: 113 vs 118, 94 vs 100, 95 vs 119, 102 vs 184 ms).
 */
function weightGradByIm2col(ctx: GradContext, x: string, channels: number, outChannels: number, dy: string, g: ConvGeometry, inSize: number[], outSize: number[]): string {
  const s = g.strides[0];
  const phases = s === 1 ? [x] : stridePhases(ctx, x, channels, s, inSize);
  const geometry = phaseGeometry(s, g.dilations, g.pads, inSize, outSize);
  const taps = kernelTaps(g.kernel);
  const windows = taps.map((tap) => ctx.op('Unsqueeze', [tapWindow(ctx, phases, tap, geometry).window, ctx.ints([2])]));
  const cols = ctx.op('Reshape', [ctx.op('Concat', windows, { axis: attr.int(2) }), ctx.ints([0, channels * taps.length, -1])]);
  const prod = ctx.op('MatMul', [ctx.op('Reshape', [dy, ctx.ints([0, outChannels, -1])]), ctx.op('Transpose', [cols], { perm: attr.ints([0, 2, 1]) })]);
  return ctx.op('Reshape', [ctx.op('ReduceSum', [prod, ctx.ints([0])], { keepdims: attr.int(0) }), ctx.ints([outChannels, channels, ...g.kernel])]);
}

/**
 * dW of a stride-1 depthwise conv (one filter per channel) by one small GEMM per kernel row and
 * the diagonals of its product. With X as [C, N, Hp, Wp] (padded) and dY as [C, N·Ho, Wo]:
 *   P_i[c] = (rows i … i+Ho−1 of each image of X[c])ᵀ · dY[c]   [Wp, Wo], summed over n and h
 *   dW[c, 0, i, j] = Σ_w P_i[c][w + j·d, w]                      (a diagonal of P_i)
 * The GEMMs do Wp/kw times the multiply-adds that dW needs, but read X kh times where the grouped
 * convolution form (im2col per channel, then a one-row GEMM) writes and reads it kh·kw times.
 * MobileNetV3's depthwise layers (batch 32, 2 threads, the forward conv included): 88ch 28² 3×3
 * 17.9 → 10.6 ms, 240ch 14² 5×5 22.3 → 15.8, 576ch 7² 5×5 18.8 → 15.4, 72ch 56² 3×3 57.8 → 52.3;
 * at 112² the extra multiply-adds win (50.4 against 53.4), hence the width limit. Stride 2 kept the
 * grouped form (72ch 56²: 20.5 against 25.8).
 */
const DIAGONAL_MAX_WIDTH = 64;

function depthwiseWeightGradByDiagonals(ctx: GradContext, x: string, channels: number, dy: string, g: ConvGeometry, inSize: number[], outSize: number[]): string {
  const [kh, kw] = g.kernel;
  const [dh, dw] = g.dilations;
  const [ho, wo] = outSize;
  const wp = inSize[1] + g.pads[1] + g.pads[3];
  const padded = padSpatial(ctx, x, g.pads);
  const swap = { perm: attr.ints([1, 0, 2, 3]) };
  const xt = ctx.op('Transpose', [padded], swap);
  const dyt = ctx.op('Reshape', [ctx.op('Transpose', [dy], swap), ctx.ints([channels, -1, wo])]);
  // P_i flattened: entry (w + j·d, w) sits at w·(Wo + 1) + j·d·Wo
  const diagonals = ctx.ints(range(kw).flatMap((j) => range(wo).map((w) => w * (wo + 1) + j * dw * wo)));
  const rows = range(kh).map((i) => {
    const window = ctx.op('Reshape', [ctx.op('Slice', [xt, ctx.ints([i * dh]), ctx.ints([i * dh + ho]), ctx.ints([2])]), ctx.ints([channels, -1, wp])]);
    const product = ctx.op('MatMul', [ctx.op('Transpose', [window], { perm: attr.ints([0, 2, 1]) }), dyt]);
    const picked = ctx.op('Gather', [ctx.op('Reshape', [product, ctx.ints([channels, -1])]), diagonals], { axis: attr.int(1) });
    return ctx.op('ReduceSum', [ctx.op('Reshape', [picked, ctx.ints([channels, kw, wo])]), ctx.ints([2])], { keepdims: attr.int(0) });
  });
  return ctx.op('Reshape', [ctx.op('Concat', rows, { axis: attr.int(1) }), ctx.ints([channels, 1, kh, kw])]);
}

/**
 * Below this many input channels (an RGB stem), an ungrouped conv's dW avoids the per-tap forms,
 * which multiply a C-row matrix per tap and whose strided Slices copy runs of one float: 2-D convs
 * with equal strides take the im2col above, the rest the convolution form below. Against the
 * per-tap forms, the convolution form took ResNet-18's stem (3→64, 7×7/2, batch 32, 2 threads) in
 * 107 ms against 434 ms, MobileNetV3's (3→16, 3×3/2) in 27 against 46 ms; at 16 channels it is
 * already 3× slower.
 */
const CONV_FORM_MAX_CHANNELS = 8;

/**
 * dW of a conv Y = conv(X, W), picking the form for its geometry (each form's comment has the
 * figures). The convolution form, for groups > 1 other than stride-1 depthwise and for the stems
 * the im2col does not take: a convolution of X (batch and channel axes swapped) with dY (likewise)
 * as the kernel; stride and dilation trade places. Groups: X's channels are regrouped so that each
 * group's N images become that group's input channels.
 *   Xt[c, j·N + n] = X[n, j·C/g + c],  dYt[o, n] = dY[n, o],  dW = transpose(conv(Xt, dYt, group g))
 */
export function weightGrad(ctx: GradContext, x: string, channels: number, dy: string, g: ConvGeometry, inSize: number[], outSize: number[], outChannels?: number): string {
  if (g.group === 1 && channels < CONV_FORM_MAX_CHANNELS && outChannels !== undefined && g.kernel.length === 2 && g.strides[1] === g.strides[0]) {
    return weightGradByIm2col(ctx, x, channels, outChannels, dy, g, inSize, outSize);
  }
  if (g.kernel.length === 2 && g.group === channels && outChannels === channels && g.strides.every((s) => s === 1)
    && inSize[1] + g.pads[1] + g.pads[3] <= DIAGONAL_MAX_WIDTH) {
    return depthwiseWeightGradByDiagonals(ctx, x, channels, dy, g, inSize, outSize);
  }
  if (g.group === 1 && channels >= CONV_FORM_MAX_CHANNELS) {
    const positions = outSize.reduce((a, b) => a * b, 1);
    return outChannels !== undefined && positions >= Math.max(channels, outChannels)
      ? weightGradBatched(ctx, x, channels, outChannels, dy, g, inSize, outSize)
      : weightGradByTaps(ctx, x, channels, dy, g, inSize, outSize);
  }
  const r = g.kernel.length;
  const swap = [1, 0, ...range(r).map((i) => i + 2)];
  const perGroup = channels / g.group;
  const xt = g.group === 1 ? ctx.op('Transpose', [x], { perm: attr.ints(swap) }) : ctx.op('Reshape', [
    ctx.op('Transpose', [ctx.op('Reshape', [x, ctx.ints([-1, g.group, perGroup, ...inSize])])], { perm: attr.ints([2, 1, 0, ...range(r).map((i) => i + 3)]) }),
    ctx.ints([perGroup, -1, ...inSize]),
  ]);
  const dyt = ctx.op('Transpose', [dy], { perm: attr.ints(swap) });
  // Pad the end only as far as the last kernel tap reaches, so the result is exactly the kernel
  // size wherever possible; otherwise crop below.
  const pads = [...g.pads];
  let crop = false;
  for (let i = 0; i < r; i++) {
    const need = g.dilations[i] * (g.kernel[i] - 1) + g.strides[i] * (outSize[i] - 1) + 1 - inSize[i] - pads[i];
    pads[i + r] = Math.max(need, 0);
    if (need < 0) crop = true;
  }
  let dw = ctx.op('Conv', [xt, dyt], {
    strides: attr.ints(g.dilations),
    dilations: attr.ints(g.strides),
    pads: attr.ints(pads),
    group: attr.int(g.group),
  });
  if (crop) dw = ctx.op('Slice', [dw, ctx.ints(new Array<number>(r).fill(0)), ctx.ints(g.kernel), ctx.ints(range(r).map((i) => i + 2))]);
  return ctx.op('Transpose', [dw], { perm: attr.ints(swap) });
}

/** dB = Σ over batch and spatial axes of dY */
const biasGrad = (ctx: GradContext, dy: string, r: number): string =>
  ctx.op('ReduceSum', [dy, ctx.ints([0, ...range(r).map((i) => i + 2)])], { keepdims: attr.int(0) });

export const convRules: RuleTable = {
  Conv: rule((ctx) => {
    const [x, w] = [ctx.x(0), ctx.x(1)];
    const dy = ctx.dY[0] as string;
    const kernel = ctx.staticShape(w).slice(2);
    const xs = spatialOf(ctx, x);
    const ys = spatialOf(ctx, ctx.y(0));
    const g = geometry(ctx, xs.spatial, kernel);
    return [
      ctx.needs(0) ? flippedConv(ctx, dy, w, g, ys.channels, xs.channels) ?? transposedConv(ctx, dy, w, g, xs.spatial, ys.spatial) : null,
      ctx.needs(1) ? weightGrad(ctx, x, xs.channels, dy, g, xs.spatial, ys.spatial, ys.channels) : null,
      ...(ctx.node.inputs.length > 2 ? [ctx.needs(2) ? biasGrad(ctx, dy, kernel.length) : null] : []),
    ];
  }),
  // ConvTranspose is the adjoint of Conv with the same weights, so: dX = conv(dY, W), and dW is
  // Conv's weight gradient with the roles of input and output gradient exchanged.
  ConvTranspose: rule((ctx) => {
    const [x, w] = [ctx.x(0), ctx.x(1)];
    const dy = ctx.dY[0] as string;
    const node = ctx.node;
    if (getInts(node, 'output_shape') || getString(node, 'auto_pad', 'NOTSET') !== 'NOTSET') {
      throw new AppError('UNSUPPORTED_OP', `autodiff: ConvTranspose with output_shape or auto_pad (node ${node.name}); give pads and output_padding`);
    }
    const kernel = ctx.staticShape(w).slice(2);
    const xs = spatialOf(ctx, x);
    const ys = spatialOf(ctx, ctx.y(0));
    const g = geometry(ctx, ys.spatial, kernel);
    const conv = () => ctx.op('Conv', [dy, w], {
      strides: attr.ints(g.strides),
      dilations: attr.ints(g.dilations),
      pads: attr.ints(g.pads),
      group: attr.int(g.group),
    });
    return [
      ctx.needs(0) ? conv() : null,
      ctx.needs(1) ? weightGrad(ctx, dy, ys.channels, x, g, ys.spatial, xs.spatial) : null,
      ...(node.inputs.length > 2 ? [ctx.needs(2) ? biasGrad(ctx, dy, kernel.length) : null] : []),
    ];
  }),
};
