import { AppError } from '../../kernel/errors.ts';
import { attr, getInt, getInts, getString } from '../../onnx/ir.ts';
import { type GradContext, type RuleTable, kernelTaps, masked, range, rule } from '../context.ts';
import { interleavePhases, phaseGeometry, shifted, stridePhases, tapWindow } from '../phases.ts';
import { transposedConv } from './conv.ts';
import { groupSize } from './reduce.ts';

const INT64_MAX = Number.MAX_SAFE_INTEGER;

/** Spatial dims of an [N, C, …] value, which must be static (N may be symbolic). */
function staticSpatial(ctx: GradContext, v: string): number[] {
  const spatial = ctx.type(v).shape.slice(2);
  if (!spatial.every((d): d is number => typeof d === 'number')) {
    throw new AppError('UNSUPPORTED_OP', `autodiff: ${ctx.node.opType} gradient needs static spatial dims for '${v}' (node ${ctx.node.name})`);
  }
  return spatial;
}

/** The divisor onnxruntime's AveragePool used for each output position along one axis. */
function divisors(inSize: number, outSize: number, k: number, s: number, padBegin: number, padEnd: number, countPad: boolean): number[] {
  return range(outSize).map((o) => {
    const start = o * s - padBegin;
    const end = Math.min(start + k, inSize + padEnd);
    const size = end - start;
    const valid = Math.min(end, inSize) - Math.max(start, 0);
    return countPad ? size : valid;
  });
}

/**
 * MaxPool's dX without the Indices output, whose kernel is onnxruntime's slow path (32×64×112×112,
 * 3×3/2, one thread: 182 ms of CPU with Indices, 38 ms without). Each kernel tap's window of the
 * −∞-padded input is compared with Y; the first tap (row-major) holding the maximum takes dY, as
 * PyTorch's first-max rule. A tap's contribution lands on a stride-spaced lattice of dX: the
 * padded dX is assembled as one grid per stride phase (tap mod stride), each the sum of its taps'
 * contributions shifted by tap div stride, then the grids are interleaved by Reshape–Transpose.
 * Null where the geometry is outside what this covers (dilation, auto_pad, storage order).
 */
function maxPoolGradByMasks(ctx: GradContext): string | null {
  const node = ctx.node;
  const kernel = getInts(node, 'kernel_shape') ?? [];
  const r = kernel.length;
  if ((node.outputs[1] ?? '') !== '' || getString(node, 'auto_pad', 'NOTSET') !== 'NOTSET' || getInt(node, 'storage_order', 0) !== 0) return null;
  if ((getInts(node, 'dilations') ?? []).some((d) => d !== 1)) return null;
  const x = ctx.x(0);
  const y = ctx.y(0);
  const dy = ctx.dY[0] as string;
  const inSize = ctx.typeIfKnown(x)?.shape.slice(2);
  const outSize = ctx.typeIfKnown(y)?.shape.slice(2);
  if (!inSize?.every((d): d is number => typeof d === 'number') || !outSize?.every((d): d is number => typeof d === 'number')) return null;
  const strides = getInts(node, 'strides') ?? new Array<number>(r).fill(1);
  const pads = getInts(node, 'pads') ?? new Array<number>(2 * r).fill(0);
  const spatial = range(r).map((i) => i + 2);
  // every window fits the padded input (ceil_mode may reach past the declared end pad)
  const padEnd = range(r).map((i) => Math.max(pads[i + r], (outSize[i] - 1) * strides[i] + kernel[i] - inSize[i] - pads[i]));
  const grid = range(r).map((i) => Math.max(Math.ceil((pads[i] + inSize[i] + padEnd[i]) / strides[i]), outSize[i] + Math.floor((kernel[i] - 1) / strides[i])));
  const padded = pads.some((p) => p !== 0) || padEnd.some((p, i) => p !== pads[i + r])
    ? ctx.op('Pad', [x, ctx.ints([0, 0, ...pads.slice(0, r), 0, 0, ...padEnd]), ctx.scalar(-Infinity, x)])
    : x;
  const taps = kernelTaps(kernel);
  const axes = ctx.ints(spatial);
  const phases = new Map<string, string[]>();
  let taken = '';
  for (const tap of taps) {
    const ends = tap.map((t, i) => t + strides[i] * (outSize[i] - 1) + 1);
    const eq = ctx.op('Equal', [ctx.op('Slice', [padded, ctx.ints(tap), ctx.ints(ends), axes, ctx.ints(strides)]), y]);
    const first = taken ? ctx.op('And', [eq, ctx.op('Not', [taken])]) : eq;
    taken = taken ? ctx.op('Or', [taken, eq]) : eq;
    const shift = tap.map((t, i) => Math.floor(t / strides[i]));
    const placed = ctx.op('Pad', [masked(ctx, first, dy), ctx.ints([0, 0, ...shift, 0, 0, ...shift.map((o, i) => grid[i] - o - outSize[i])])]);
    const key = tap.map((t, i) => t % strides[i]).join(',');
    phases.set(key, [...(phases.get(key) ?? []), placed]);
  }
  let phaseList: number[][] = [[]];
  for (const s of strides) phaseList = phaseList.flatMap((t) => range(s).map((i) => [...t, i]));
  const gridShape = ctx.op('Concat', [ctx.op('Slice', [ctx.op('Shape', [dy]), ctx.ints([0]), ctx.ints([2])]), ctx.ints(grid)], { axis: attr.int(0) });
  const sums = phaseList.map((ph) => {
    const parts = phases.get(ph.join(',')) ?? [];
    if (parts.length === 0) return ctx.op('CastLike', [ctx.op('ConstantOfShape', [gridShape]), x]);
    return parts.length === 1 ? parts[0] : ctx.op('Sum', parts);
  });
  let full: string;
  if (sums.length === 1) full = sums[0];
  else if (r === 2 && strides[0] === strides[1]) {
    // [N, C·s², g, g] → [N, C, g·s, g·s]: DepthToSpace interleaves the phases in 41 ms where the
    // 6-D Transpose below took 105 (ResNet-18's 3×3/2 pool, batch 32, 2 threads).
    const stacked = ctx.op('Reshape', [ctx.op('Concat', sums.map((v) => ctx.op('Unsqueeze', [v, ctx.ints([2])])), { axis: attr.int(2) }), ctx.ints([0, -1, ...grid])]);
    full = ctx.op('DepthToSpace', [stacked], { blocksize: attr.int(strides[0]), mode: attr.string('CRD') });
  } else {
    // [N, C, s…, g…] → [N, C, g₁, s₁, g₂, s₂, …] → [N, C, g₁·s₁, …]
    const stacked = ctx.op('Reshape', [ctx.op('Concat', sums.map((v) => ctx.op('Unsqueeze', [v, ctx.ints([2])])), { axis: attr.int(2) }), ctx.ints([0, 0, ...strides, ...grid])]);
    const perm = [0, 1, ...range(r).flatMap((i) => [2 + r + i, 2 + i])];
    full = ctx.op('Reshape', [ctx.op('Transpose', [stacked], { perm: attr.ints(perm) }), ctx.ints([0, 0, ...grid.map((g, i) => g * strides[i])])]);
  }
  return ctx.op('Slice', [full, ctx.ints(pads.slice(0, r)), ctx.ints(range(r).map((i) => pads[i] + inSize[i])), axes]);
}

/**
 * MaxPool's dX for the common 2-D strided pool (ResNet's 3×3/2): the same first-max rule as
 * `maxPoolGradByMasks` above, laid out so that no copy reads with a stride (see ../phases.ts). Each
 * kernel tap's window is a shifted stride phase of X; each tap's share of dY is placed on its phase
 * the same way, and the phases are interleaved again. ResNet-18's pool (32×64×112×112, 2 threads,
 * with the forward and the copy out): the masks form, whose nine stride-2 Slices and DepthToSpace
 * dominated, took 381 ms; this one 232 ms with the exact SpaceToDepth split used here (a pool's
 * input may hold −∞) and 202 ms with the one-hot conv split. The ResNet-18 step went 2725 → 2494 ms
 * (A/B, 12 steps each, measured with the conv split). The first max is kept by handing each tap
 * what earlier taps left: g_t = rest · [window_t = Y], rest −= g_t (exact: each g_t is rest or 0).
 * Null unless the pool is 2-D, its strides equal (≥ 2), X's spatial size a multiple of them, and
 * its channel count static (the phase split is per channel).
 */
function maxPoolGradByPhases(ctx: GradContext): string | null {
  const node = ctx.node;
  const kernel = getInts(node, 'kernel_shape') ?? [];
  if (kernel.length !== 2 || (node.outputs[1] ?? '') !== '' || getString(node, 'auto_pad', 'NOTSET') !== 'NOTSET' || getInt(node, 'storage_order', 0) !== 0) return null;
  const strides = getInts(node, 'strides') ?? [1, 1];
  const s = strides[0];
  if (s < 2 || strides[1] !== s) return null;
  const x = ctx.x(0);
  const y = ctx.y(0);
  const dy = ctx.dY[0] as string;
  const [, channels, ...inSize] = ctx.typeIfKnown(x)?.shape ?? [];
  const outSize = ctx.typeIfKnown(y)?.shape.slice(2);
  if (typeof channels !== 'number' || inSize.length !== 2 || !inSize.every((d): d is number => typeof d === 'number' && d % s === 0)) return null;
  if (!outSize?.every((d): d is number => typeof d === 'number')) return null;
  const dilations = getInts(node, 'dilations') ?? [1, 1];
  const pads = getInts(node, 'pads') ?? [0, 0, 0, 0];
  const phases = stridePhases(ctx, x, channels, s, inSize, true);
  const geometry = phaseGeometry(s, dilations, pads, inSize, outSize);
  const { grid } = geometry;
  const minusInf = ctx.scalar(-Infinity, x);
  const placed = new Map<number, string[]>();
  let rest = dy;
  const taps = kernelTaps(kernel);
  taps.forEach((tap, k) => {
    const { window, phase: index, shift } = tapWindow(ctx, phases, tap, geometry, minusInf);
    const share = ctx.op('Mul', [rest, ctx.op('CastLike', [ctx.op('Equal', [window, y]), dy])]);
    if (k < taps.length - 1) rest = ctx.op('Sub', [rest, share]);
    placed.set(index, [...(placed.get(index) ?? []), shifted(ctx, share, shift, shift.map((d, i) => grid[i] - outSize[i] - d))]);
  });
  const sums = phases.map((phase, index) => {
    const parts = placed.get(index) ?? [];
    if (parts.length === 0) return ctx.op('CastLike', [ctx.op('ConstantOfShape', [ctx.op('Shape', [phase])]), x]);
    return parts.length === 1 ? parts[0] : ctx.op('Sum', parts);
  });
  return interleavePhases(ctx, sums, channels, s, grid, x);
}

export const poolingRules: RuleTable = {
  // MaxPool: the forward node is asked for its Indices output (flat positions in X) and dY is
  // put back there with MaxUnpool. MaxUnpool writes rather than adds, so the outputs are split
  // into groups (by output index mod m) whose windows cannot overlap, one MaxUnpool per group,
  // and the groups summed: 4 for a 3×3/2 pool, 1 for 2×2/2. (Measured on 32×64×112×112, one
  // thread: 334 ms against 448 ms for a ScatterElements-add into zeros.)
  MaxPool: rule((ctx) => {
    const node = ctx.node;
    if (getInt(node, 'storage_order', 0) !== 0) {
      throw new AppError('UNSUPPORTED_OP', `autodiff: MaxPool with storage_order=1 (node ${node.name})`);
    }
    const byPhases = maxPoolGradByPhases(ctx);
    if (byPhases) return [byPhases];
    const byMasks = maxPoolGradByMasks(ctx);
    if (byMasks) return [byMasks];
    const indices = ctx.requireOutput(1);
    const dy = ctx.dY[0] as string;
    const kernel = getInts(node, 'kernel_shape') ?? [];
    const r = kernel.length;
    const strides = getInts(node, 'strides') ?? new Array<number>(r).fill(1);
    const dilations = getInts(node, 'dilations') ?? new Array<number>(r).fill(1);
    const outShape = ctx.type(ctx.y(0)).shape.slice(2);
    const period = kernel.map((k, i) => Math.ceil(((k - 1) * dilations[i] + 1) / strides[i]));
    let groups: number[][] = [[]];
    period.forEach((m, i) => {
      const size = outShape[i];
      const offsets = range(m).filter((o) => typeof size !== 'number' || o < size);
      groups = groups.flatMap((g) => offsets.map((o) => [...g, o]));
    });
    const shapeX = ctx.op('Shape', [ctx.x(0)]);
    const unpoolAttrs = { kernel_shape: attr.ints(kernel), strides: attr.ints(strides), ...(getInts(node, 'pads') ? { pads: attr.ints(getInts(node, 'pads') as number[]) } : {}) };
    const axes = ctx.ints(range(r).map((i) => i + 2));
    const parts = groups.map((offsets) => {
      const pick = (v: string) => (period.every((m) => m === 1) ? v
        : ctx.op('Slice', [v, ctx.ints(offsets), ctx.ints(offsets.map(() => INT64_MAX)), axes, ctx.ints(period)]));
      return ctx.op('MaxUnpool', [pick(dy), pick(indices), shapeX], unpoolAttrs);
    });
    return [parts.length === 1 ? parts[0] : ctx.op('Sum', parts)];
  }),
  // AveragePool: dX = ConvTranspose(dY / divisor, ones) per channel (group = C).
  AveragePool: rule((ctx) => {
    const node = ctx.node;
    const x = ctx.x(0);
    const xShape = ctx.type(x).shape;
    const channels = xShape[1];
    if (typeof channels !== 'number') throw new AppError('UNSUPPORTED_OP', `autodiff: AveragePool needs static channels (node ${node.name})`);
    if (getString(node, 'auto_pad', 'NOTSET') !== 'NOTSET') throw new AppError('UNSUPPORTED_OP', `autodiff: AveragePool with auto_pad (node ${node.name})`);
    const inSize = staticSpatial(ctx, x);
    const outSize = staticSpatial(ctx, ctx.y(0));
    const kernel = getInts(node, 'kernel_shape') ?? [];
    const r = kernel.length;
    const strides = getInts(node, 'strides') ?? new Array<number>(r).fill(1);
    const pads = getInts(node, 'pads') ?? new Array<number>(2 * r).fill(0);
    const countPad = getInt(node, 'count_include_pad', 0) !== 0;
    const perAxis = range(r).map((i) => divisors(inSize[i], outSize[i], kernel[i], strides[i], pads[i], pads[i + r], countPad));
    // 1/divisor over the output grid: the outer product of the per-axis divisors.
    const inv: number[] = [];
    const walk = (axis: number, acc: number) => {
      if (axis === r) { inv.push(1 / acc); return; }
      for (const d of perAxis[axis]) walk(axis + 1, acc * d);
    };
    walk(0, 1);
    const scaled = ctx.op('Mul', [ctx.dY[0] as string, ctx.constant(inv, [1, 1, ...outSize], x)]);
    const ones = ctx.constant(new Array<number>(channels * kernel.reduce((a, b) => a * b, 1)).fill(1), [channels, 1, ...kernel], x);
    const geometry = { strides, dilations: new Array<number>(r).fill(1), pads, group: channels, kernel };
    return [transposedConv(ctx, scaled, ones, geometry, inSize, outSize)];
  }),
  // dX = broadcast(dY) / (H·W)
  GlobalAveragePool: rule((ctx) => {
    const x = ctx.x(0);
    // divided before it is spread: one pass over X's size, not two; the divisor at dY's rank
    // ([N, C, 1, 1], see scalarAtRank)
    const y = ctx.y(0);
    const size = groupSize(ctx, x, y);
    const rank = ctx.typeIfKnown(y)?.shape.length ?? 0;
    const divisor = rank > 0 ? ctx.op('Reshape', [size, ctx.ints(new Array<number>(rank).fill(1))]) : size;
    return [ctx.op('Expand', [ctx.op('Div', [ctx.dY[0] as string, divisor]), ctx.op('Shape', [x])])];
  }),
  // dX = dY at the maxima of each map (ties share evenly)
  GlobalMaxPool: rule((ctx) => {
    const x = ctx.x(0);
    const shape = ctx.op('Shape', [x]);
    const mask = ctx.op('CastLike', [ctx.op('Equal', [x, ctx.op('Expand', [ctx.y(0), shape])]), x]);
    const axes = ctx.ints(range(ctx.rank(x) - 2).map((i) => i + 2));
    const count = ctx.op('ReduceSum', [mask, axes], { keepdims: attr.int(1) });
    return [ctx.op('Div', [ctx.op('Mul', [mask, ctx.op('Expand', [ctx.dY[0] as string, shape])]), count])];
  }),
};
