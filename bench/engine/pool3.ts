import { GraphBuilder } from '../../src/onnx/builder.ts';
import { attr, f32, i64 } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';
const [N, C, H] = [32, 64, 112];
const rnd = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
const feeds = { X: f32([N, C, H, H], rnd(N * C * H * H)), dY: f32([N, C, 56, 56], rnd(N * C * 56 * 56)) };
const res: Record<string, Float32Array> = {};
async function time(label: string, build: (b: GraphBuilder, idx: string) => string) {
  const b = new GraphBuilder();
  b.input('X', 'float32', [N, C, H, H]);
  b.input('dY', 'float32', [N, C, 56, 56]);
  const [, idx] = b.opN('MaxPool', ['X'], { kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) }, 2);
  const out = build(b, idx);
  b.output(out, 'float32');
  const s = await createSession(b.toModel(), { threads: 1 });
  res[label] = (await s.run(feeds))[out].data as Float32Array;
  const t: number[] = [];
  for (let i = 0; i < 12; i++) { const t0 = performance.now(); await s.run(feeds); t.push(performance.now() - t0); }
  t.sort((a, b) => a - b);
  console.log(JSON.stringify({ label, min_ms: +t[0].toFixed(1), median_ms: +t[6].toFixed(1) }));
}
const ints = (b: GraphBuilder, v: number[]) => b.initializer(b.fresh('i'), i64([v.length], v));
await time('pool+scatter', (b, idx) => {
  const zeros = b.op('Expand', [b.initializer('z', f32([], [0])), b.op('Reshape', [b.op('Size', ['X']), ints(b, [1])])]);
  const sc = b.op('ScatterElements', [zeros, b.op('Reshape', [idx, ints(b, [-1])]), b.op('Reshape', ['dY', ints(b, [-1])])], { axis: attr.int(0), reduction: attr.string('add') });
  return b.op('Reshape', [sc, b.op('Shape', ['X'])]);
});
await time('pool+unpool by parity', (b, idx) => {
  const parts: string[] = [];
  for (const ph of [0, 1]) for (const pw of [0, 1]) {
    const sl = (v: string) => b.op('Slice', [v, ints(b, [ph, pw]), ints(b, [1 << 30, 1 << 30]), ints(b, [2, 3]), ints(b, [2, 2])]);
    parts.push(b.op('MaxUnpool', [sl('dY'), sl(idx), b.op('Shape', ['X'])], { kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) }));
  }
  return b.op('Sum', parts);
});
await time('pool only', () => 'dY');
const a = res['pool+scatter'], c = res['pool+unpool by parity'];
let d = 0; for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - c[i]));
console.log('max diff', d);
