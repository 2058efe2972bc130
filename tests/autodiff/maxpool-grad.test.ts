import { describe, expect, it } from 'vitest';
import { backward } from '../../src/autodiff/index.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { attr, f32 } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';

interface Geometry { kernel: number; stride: number; pad: number; dilation?: number; ceil?: boolean }

/** PyTorch's rule in plain loops: each output's gradient goes to the first (row-major) in-bounds tap holding the window's max. */
function referenceGrad(x: Float32Array, [n, c, h, w]: number[], g: Geometry, dy: Float32Array, [oh, ow]: number[]): Float32Array {
  const d = g.dilation ?? 1;
  const dx = new Float32Array(x.length);
  for (let plane = 0; plane < n * c; plane++) {
    for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) {
      let best = -Infinity;
      let at = -1;
      for (let a = 0; a < g.kernel; a++) for (let b = 0; b < g.kernel; b++) {
        const r = i * g.stride + a * d - g.pad;
        const s = j * g.stride + b * d - g.pad;
        if (r < 0 || s < 0 || r >= h || s >= w) continue;
        const v = x[plane * h * w + r * w + s];
        if (v > best) { best = v; at = r * w + s; }
      }
      dx[plane * h * w + at] += dy[plane * oh * ow + i * ow + j];
    }
  }
  return dx;
}

async function maxPoolGrad(x: Float32Array, dims: number[], g: Geometry, seed: number) {
  const b = new GraphBuilder();
  b.input('x', 'float32', dims);
  const y = b.op('MaxPool', ['x'], {
    kernel_shape: attr.ints([g.kernel, g.kernel]), strides: attr.ints([g.stride, g.stride]), pads: attr.ints([g.pad, g.pad, g.pad, g.pad]),
    ...(g.dilation ? { dilations: attr.ints([g.dilation, g.dilation]) } : {}), ...(g.ceil ? { ceil_mode: attr.int(1) } : {}),
  });
  b.input('dy', 'float32', []);
  const dx = backward(b, { loss: y, wrt: ['x'], lossGrad: 'dy' }).get('x') as string;
  b.output(y, 'float32');
  b.output(dx, 'float32');
  const s = await createSession(b.toModel(), { threads: 2 });
  // dY's shape is the output's: run once for Y's shape, then feed a matching dY
  const probe = await s.run({ x: f32(dims, x), dy: f32([], [1]) }, [y]);
  const outDims = probe[y].dims;
  const count = outDims.reduce((p, v) => p * v, 1);
  const dy = Float32Array.from({ length: count }, (_, i) => ((i * 7919 + seed) % 13) - 6);
  const r = await s.run({ x: f32(dims, x), dy: f32(outDims, dy) }, [dx]);
  await s.release();
  return { dx: r[dx].data as Float32Array, dy, outDims, opTypes: new Set(b.graph.nodes.map((n) => n.opType)) };
}

describe('MaxPool gradient, first maximum on ties', () => {
  // ReLU-like values on a coarse grid: many windows tie, most often at 0
  const tieHeavy = (count: number, seed: number) => Float32Array.from({ length: count }, (_, i) => Math.max(0, ((i * 2654435761 + seed) >>> 0) % 7 - 3) / 2);
  const cases: [string, number[], Geometry, 'phases' | 'masks'][] = [
    ['3×3/2 pad 1, even input (ResNet stem pool)', [2, 3, 8, 8], { kernel: 3, stride: 2, pad: 1 }, 'phases'],
    ['3×3/2 pad 1, odd input', [2, 3, 7, 7], { kernel: 3, stride: 2, pad: 1 }, 'masks'],
    ['2×2/2', [1, 4, 6, 6], { kernel: 2, stride: 2, pad: 0 }, 'phases'],
    ['3×3/2 ceil mode', [1, 2, 6, 6], { kernel: 3, stride: 2, pad: 0, ceil: true }, 'phases'],
    ['3×3/2 dilation 2, pad 2', [1, 2, 10, 10], { kernel: 3, stride: 2, pad: 2, dilation: 2 }, 'phases'],
    ['3×3/3 pad 1', [1, 2, 9, 9], { kernel: 3, stride: 3, pad: 1 }, 'phases'],
    ['1×1/2 (phases no tap reads)', [1, 2, 6, 6], { kernel: 1, stride: 2, pad: 0 }, 'phases'],
    ['3×3/1 pad 1', [1, 2, 5, 5], { kernel: 3, stride: 1, pad: 1 }, 'masks'],
  ];
  it('3×3/2 pad 1 over an input holding −∞ (a masked region): no NaN, equal to the reference', async () => {
    const dims = [1, 2, 8, 8];
    // the first column and row of each map are −∞ (every window still reaches a finite value)
    const x = Float32Array.from(tieHeavy(128, 3), (v, i) => (i % 8 === 0 || i % 64 < 8 ? -Infinity : v));
    const r = await maxPoolGrad(x, dims, { kernel: 3, stride: 2, pad: 1 }, 5);
    expect(r.opTypes.has('ConvTranspose')).toBe(true);
    expect(Array.from(r.dx, (v) => v + 0)).toEqual(Array.from(referenceGrad(x, dims, { kernel: 3, stride: 2, pad: 1 }, r.dy, r.outDims.slice(2))));
  });
  for (const [name, dims, g, form] of cases) {
    it(`${name}: ${form} form, equal to the reference`, async () => {
      const x = tieHeavy(dims.reduce((p, v) => p * v, 1), dims[2]);
      const r = await maxPoolGrad(x, dims, g, 5);
      // the phase form interleaves with a one-hot ConvTranspose; the masks form does not
      expect(r.opTypes.has('ConvTranspose')).toBe(form === 'phases');
      // exact, up to the sign of zero (a share of 0 is rest · 0, which is −0 where rest < 0)
      expect(Array.from(r.dx, (v) => v + 0)).toEqual(Array.from(referenceGrad(x, dims, g, r.dy, r.outDims.slice(2))));
    });
  }
});
