import { describe, expect, it } from 'vitest';
import { modelStats } from '../../src/export/stats.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { attr, f32, i64 } from '../../src/onnx/ir.ts';

/** input [N,3,10,12] → Conv 3→8, 3×3, stride 2, pad 1 → Relu → Flatten → Gemm (8·5·6 → 4). */
function tiny() {
  const b = new GraphBuilder();
  b.input('input', 'float32', ['batch', 3, 10, 12]);
  const w = b.initializer('w', f32([8, 3, 3, 3], new Float32Array(216)));
  const bias = b.initializer('b', f32([8], new Float32Array(8)));
  const y = b.op('Conv', ['input', w, bias], { kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) }, 'conv');
  const r = b.op('Relu', [y], {}, 'relu');
  const flat = b.op('Flatten', [r], { axis: attr.int(1) }, 'flatten');
  const gw = b.initializer('gw', f32([4, 240], new Float32Array(960)));
  const gb = b.initializer('gb', f32([4], new Float32Array(4)));
  b.opN('Gemm', [flat, gw, gb], { transB: attr.int(1) }, ['logits'], 'fc');
  b.initializer('shape_const', i64([2], [1, -1]));
  b.output('logits', 'float32', ['batch', 4]);
  return b.toModel();
}

describe('modelStats', () => {
  it('counts FLOPs of a conv and a gemm by hand, at batch 1', () => {
    const s = modelStats(tiny());
    const conv = s.nodes.find((n) => n.node === 'conv')!;
    // output 8×5×6, each a dot product of 3·3·3 = 27 → 6480 MACs
    expect(conv.outputShape).toEqual([1, 8, 5, 6]);
    expect(conv.flops).toBe(2 * 8 * 5 * 6 * 27);
    expect(conv.params).toBe(216 + 8);
    const fc = s.nodes.find((n) => n.node === 'fc')!;
    expect(fc.flops).toBe(2 * 4 * 240);
    expect(fc.params).toBe(964);
    expect(s.nodes.find((n) => n.node === 'relu')!.flops).toBe(0);
    expect(s.flops).toBe(2 * 6480 + 2 * 960);
    // the int64 constant is not a parameter
    expect(s.params).toBe(216 + 8 + 960 + 4);
  });
});
