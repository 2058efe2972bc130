/**
 * Weight gradient of a 3×3 stride-1 pad-1 conv, the formulations tried: one batched MatMul per tap
 * on NCHW (dY transposed once), one Gemm per tap on NHWC, and the nine tap windows concatenated
 * along channels (im2col) into one batched MatMul. Process CPU time, one thread, spinning off.
 *   G=N,C,O,H npx tsx bench/engine/conv-dw-3x3.ts
 */
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { attr, f32, i64 } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';

const [N, C, O, H] = (process.env.G ?? '32,64,64,56').split(',').map(Number);
const L = H * H;
const rnd = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
const feeds = { X: f32([N, C, H, H], rnd(N * C * L)), dY: f32([N, O, H, H], rnd(N * O * L)) };
const res: Record<string, Float32Array> = {};
const taps = [0, 1, 2].flatMap((i) => [0, 1, 2].map((j) => [i, j]));

async function bench(label: string, build: (b: GraphBuilder) => string) {
  const b = new GraphBuilder();
  b.input('X', 'float32', [N, C, H, H]);
  b.input('dY', 'float32', [N, O, H, H]);
  const out = build(b);
  b.output(out, 'float32');
  const s = await createSession(b.toModel(), { threads: 1, spinning: false });
  res[label] = (await s.run(feeds))[out].data as Float32Array;
  const cpu: number[] = [];
  for (let i = 0; i < 3; i++) {
    const c0 = process.cpuUsage();
    await s.run(feeds);
    const d = process.cpuUsage(c0);
    cpu.push((d.user + d.system) / 1000);
  }
  console.log(JSON.stringify({ label, N, C, O, H, cpu_ms: +cpu.sort((a, b) => a - b)[1].toFixed(1) }));
  await s.release();
}
const ints = (b: GraphBuilder, v: number[]) => b.initializer(b.fresh('i'), i64([v.length], v));
const pad = (b: GraphBuilder, x: string) => b.op('Pad', [x, ints(b, [0, 0, 1, 1, 0, 0, 1, 1])]);
const win = (b: GraphBuilder, xp: string, [i, j]: number[], axes = [2, 3]) => b.op('Slice', [xp, ints(b, [i, j]), ints(b, [i + H, j + H]), ints(b, axes)]);

await bench('batched per tap', (b) => {
  const xp = pad(b, 'X');
  const dyT = b.op('Transpose', [b.op('Reshape', ['dY', ints(b, [0, O, -1])])], { perm: attr.ints([0, 2, 1]) });
  const parts = taps.map((t) => b.op('Unsqueeze', [b.op('ReduceSum', [b.op('MatMul', [b.op('Reshape', [win(b, xp, t), ints(b, [0, C, -1])]), dyT]), ints(b, [0])], { keepdims: attr.int(0) }), ints(b, [2])]));
  return b.op('Reshape', [b.op('Transpose', [b.op('Concat', parts, { axis: attr.int(2) })], { perm: attr.ints([1, 0, 2]) }), ints(b, [O, C, 3, 3])]);
});
await bench('nhwc gemm per tap', (b) => {
  const xp = b.op('Transpose', [pad(b, 'X')], { perm: attr.ints([0, 2, 3, 1]) });
  const dy2 = b.op('Reshape', [b.op('Transpose', ['dY'], { perm: attr.ints([1, 0, 2, 3]) }), ints(b, [O, -1])]);
  const parts = taps.map((t) => b.op('Unsqueeze', [b.op('Gemm', [dy2, b.op('Reshape', [win(b, xp, t, [1, 2]), ints(b, [-1, C])])]), ints(b, [2])]));
  return b.op('Reshape', [b.op('Concat', parts, { axis: attr.int(2) }), ints(b, [O, C, 3, 3])]);
});
await bench('im2col batched', (b) => {
  const xp = pad(b, 'X');
  const dyT = b.op('Transpose', [b.op('Reshape', ['dY', ints(b, [0, O, -1])])], { perm: attr.ints([0, 2, 1]) });
  // [N, 9·C, L]: tap-major rows
  const cols = b.op('Reshape', [b.op('Concat', taps.map((t) => win(b, xp, t)), { axis: attr.int(1) }), ints(b, [0, 9 * C, -1])]);
  const prod = b.op('ReduceSum', [b.op('MatMul', [cols, dyT]), ints(b, [0])], { keepdims: attr.int(0) });
  // [9, C, O] → [O, C, 9]
  return b.op('Reshape', [b.op('Transpose', [b.op('Reshape', [prod, ints(b, [9, C, O])])], { perm: attr.ints([2, 1, 0]) }), ints(b, [O, C, 3, 3])]);
});
const ref = res['batched per tap'];
for (const [k, v] of Object.entries(res)) {
  let d = 0;
  let m = 0;
  for (let i = 0; i < ref.length; i++) { d = Math.max(d, Math.abs(v[i] - ref[i])); m = Math.max(m, Math.abs(ref[i])); }
  console.log(k, 'max rel diff', (d / m).toExponential(1));
}
