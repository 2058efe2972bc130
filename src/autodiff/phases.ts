import { attr } from '../onnx/ir.ts';
import type { GradContext } from './context.ts';

/**
 * Stride phases of a 2-D [N, C, H, W] value: phase (a, b) of stride s is X[s·i + a, s·j + b].
 * A strided window (what one kernel tap of a strided conv or pool reads) is one phase shifted by
 * whole rows and columns, so with the phases split out once, every window is a contiguous copy.
 * onnxruntime copies stride-2 Slices element by element: for ResNet-18's pool input
 * (32×64×112×112), nine stride-2 windows took 96 ms, the phase split and nine shifts 34 ms.
 */

/** Where tap `t` (dilation d) of output q reads when the input is padded by p at the start:
 *  input s·q + t·d − p, which is phase (t·d − p) mod s at grid position q + floor((t·d − p) / s). */
function tapPhase(t: number, d: number, p: number, s: number): { phase: number; shift: number } {
  const offset = t * d - p;
  return { phase: ((offset % s) + s) % s, shift: Math.floor(offset / s) };
}

/** One-hot kernels [C·s², 1, s, s]: output channel c·s² + a·s + b takes input (a, b) of its s×s block. */
function oneHotKernels(ctx: GradContext, channels: number, s: number, like: string): string {
  const count = s * s;
  const values = new Array<number>(channels * count * count).fill(0);
  for (let c = 0; c < channels; c++) for (let p = 0; p < count; p++) values[(c * count + p) * count + p] = 1;
  return ctx.constant(values, [channels * count, 1, s, s], like);
}

/**
 * The s² phases of `x` ([N, C, H, W], C static), each [N, C, ⌈H/s⌉, ⌈W/s⌉], in the order a·s + b;
 * positions past the end are 0. A strided conv with one-hot kernels per channel does the split,
 * 30 ms faster than SpaceToDepth on ResNet-18's pool input, but exact only for finite values (every
 * other tap of the block is multiplied by 0, and ∞·0 is NaN). `exact` asks for SpaceToDepth, which
 * copies (H and W then multiples of s): for a max pool, whose input may hold −∞ legitimately.
 */
export function stridePhases(ctx: GradContext, x: string, channels: number, s: number, inSize: number[], exact = false): string[] {
  const grid = inSize.map((d) => Math.ceil(d / s));
  if (exact) {
    // SpaceToDepth puts phase (a, b) in channel block a·s + b
    const blocks = ctx.op('Reshape', [ctx.op('SpaceToDepth', [x], { blocksize: attr.int(s) }), ctx.ints([0, s * s, channels, ...grid])]);
    return ctx.opN('Split', [blocks], { axis: attr.int(1) }, s * s).map((p) => ctx.op('Squeeze', [p, ctx.ints([1])]));
  }
  const endPads = inSize.map((d, i) => grid[i] * s - d);
  const split = ctx.op('Conv', [x, oneHotKernels(ctx, channels, s, x)], {
    group: attr.int(channels), strides: attr.ints([s, s]), kernel_shape: attr.ints([s, s]), pads: attr.ints([0, 0, ...endPads]),
  });
  return ctx.opN('Split', [ctx.op('Reshape', [split, ctx.ints([0, channels, s * s, ...grid])])], { axis: attr.int(2) }, s * s)
    .map((p) => ctx.op('Squeeze', [p, ctx.ints([2])]));
}

/** The s² phases ([N, C, g, g] each, order a·s + b) interleaved back into [N, C, g·s, g·s]: the
 *  one-hot kernels transposed (28 ms where DepthToSpace took 60 on ResNet-18's pool gradient). */
export function interleavePhases(ctx: GradContext, phases: string[], channels: number, s: number, grid: number[], like: string): string {
  const stacked = ctx.op('Reshape', [ctx.op('Concat', phases.map((v) => ctx.op('Unsqueeze', [v, ctx.ints([2])])), { axis: attr.int(2) }), ctx.ints([0, channels * s * s, ...grid])]);
  return ctx.op('ConvTranspose', [stacked, oneHotKernels(ctx, channels, s, like)], {
    group: attr.int(channels), strides: attr.ints([s, s]), kernel_shape: attr.ints([s, s]),
  });
}

/** Where a 2-D strided op's windows lie on the stride phases of its input. */
export interface PhaseGeometry {
  stride: number;
  dilations: number[];
  /** begin pads of the two spatial axes (the end ones follow from outSize) */
  pads: number[];
  /** phase grid, ⌈in / stride⌉ per axis */
  grid: number[];
  outSize: number[];
}

/** The PhaseGeometry of a 2-D op with equal strides `stride` over an input of `inSize`. */
export function phaseGeometry(stride: number, dilations: number[], pads: number[], inSize: number[], outSize: number[]): PhaseGeometry {
  return { stride, dilations, pads, grid: inSize.map((d) => Math.ceil(d / stride)), outSize };
}

/**
 * Kernel tap `tap`'s window ([N, C, out…]): its phase, shifted by whole rows and columns, `fill`
 * (default 0) where it reaches past the input; with the phase's index and the shift, which place a
 * value computed on the window back onto the phase (`shifted(ctx, v, shift, grid − out − shift)`).
 */
export function tapWindow(ctx: GradContext, phases: string[], tap: number[], g: PhaseGeometry, fill?: string): { window: string; phase: number; shift: number[] } {
  const where = tap.map((t, i) => tapPhase(t, g.dilations[i], g.pads[i], g.stride));
  const shift = where.map((w) => w.shift);
  const phase = where[0].phase * g.stride + where[1].phase;
  const window = shifted(ctx, phases[phase], shift.map((d) => -d), shift.map((d, i) => g.outSize[i] + d - g.grid[i]), fill);
  return { window, phase, shift };
}

/** `v` padded on its two spatial axes by `begin` and `end` (negative entries drop), with `fill`
 *  (default 0); `v` itself where nothing moves. */
export function shifted(ctx: GradContext, v: string, begin: number[], end: number[], fill?: string): string {
  if ([...begin, ...end].every((p) => p === 0)) return v;
  return ctx.op('Pad', [v, ctx.ints([0, 0, ...begin, 0, 0, ...end]), ...(fill ? [fill] : [])]);
}
