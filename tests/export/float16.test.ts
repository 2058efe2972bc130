import { describe, expect, it } from 'vitest';
import { convertToFloat16 } from '../../src/onnx/convert-float16.ts';
import { fromHalfBits, toHalfBits } from '../../src/onnx/float16.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { attr, f32 } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';

describe('float16 bits', () => {
  it('matches IEEE binary16 on exact, rounded, subnormal and special values', () => {
    const cases: [number, number][] = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff],
      [65520, 0x7c00], // rounds up to Inf
      [1e6, 0x7c00], [Infinity, 0x7c00], [-Infinity, 0xfc00],
      [2 ** -24, 0x0001], [2 ** -14, 0x0400], [2 ** -26, 0x0000],
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and the next: ties to even (1)
      [1 + 3 * 2 ** -11, 0x3c02], // halfway, rounds to even upward
      [0.1, 0x2e66],
    ];
    for (const [v, bits] of cases) expect(toHalfBits(v), `${v}`).toBe(bits);
    expect(Number.isNaN(fromHalfBits(toHalfBits(NaN)))).toBe(true);
    for (const h of [0x0001, 0x03ff, 0x0400, 0x3c00, 0x7bff, 0xc000, 0x2e66]) expect(toHalfBits(fromHalfBits(h))).toBe(h);
  });
});

describe('convertToFloat16', () => {
  it('keeps the float32 interface, casts once per crossing and keeps Softmax in float32', async () => {
    const b = new GraphBuilder();
    b.input('x', 'float32', ['n', 3]);
    const w = b.initializer('w', f32([3, 3], [1, 0.5, 0, 0, 1, 0.25, 2, 0, 1]));
    const h = b.op('MatMul', ['x', w]);
    b.opN('Relu', [h], {}, ['logits']);
    b.opN('Softmax', ['logits'], { axis: attr.int(1) }, ['probabilities']);
    b.output('logits', 'float32', ['n', 3]);
    b.output('probabilities', 'float32', ['n', 3]);
    const m = convertToFloat16(b.toModel());
    const g = m.graph;
    expect(g.initializers.get('w')).toBeUndefined();
    expect([...g.initializers.values()].map((t) => t.dtype)).toEqual(['float16']);
    expect(g.nodes.find((n) => n.opType === 'Softmax')!.inputs[0]).toBe('logits');
    // x → f16 at the input, the Relu output → f32 once, shared by the output and the Softmax
    expect(g.nodes.filter((n) => n.opType === 'Cast')).toHaveLength(2);
    const s = await createSession(m, { threads: 1 });
    const out = await s.run({ x: f32([1, 3], [1, 2, 3]) });
    // x·w = [1+0+6, 0.5+2+0, 0+0.5+3] = [7, 2.5, 3.5]
    expect(Array.from(out.logits.data as Float32Array)).toEqual([7, 2.5, 3.5]);
    expect(out.probabilities.dtype).toBe('float32');
    await s.release();
  });
});
