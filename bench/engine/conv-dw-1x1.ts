/**
 * Weight gradient of a 1×1 conv, the formulations tried: the NHWC GEMM (both operands transposed),
 * batched MatMul on NCHW with dY or X transposed, and Einsum. Process CPU time, one thread,
 * spinning off, so figures hold on a loaded machine.
 *   G=N,C,O,H npx tsx bench/engine/conv-dw-1x1.ts
 */
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { attr, f32, i64 } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';
const [N, C, O, H] = (process.env.G ?? '32,16,72,56').split(',').map(Number);
const L = H * H;
const rnd = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
const feeds = { X: f32([N, C, H, H], rnd(N * C * L)), dY: f32([N, O, H, H], rnd(N * O * L)) };
const res: Record<string, Float32Array> = {};
async function bench(label: string, build: (b: GraphBuilder) => string) {
  const b = new GraphBuilder();
  b.input('X', 'float32', [N, C, H, H]); b.input('dY', 'float32', [N, O, H, H]);
  const out = build(b); b.output(out, 'float32');
  const s = await createSession(b.toModel(), { threads: 1, spinning: false });
  res[label] = (await s.run(feeds))[out].data as Float32Array;
  const cpu: number[] = [];
  for (let i = 0; i < 3; i++) { const c0 = process.cpuUsage(); await s.run(feeds); const d = process.cpuUsage(c0); cpu.push((d.user + d.system) / 1000); }
  cpu.sort((a, b) => a - b);
  console.log(JSON.stringify({ label, N, C, O, H, cpu_ms: +cpu[1].toFixed(1) }));
}
const ints = (b: GraphBuilder, v: number[]) => b.initializer(b.fresh('i'), i64([v.length], v));
await bench('nhwc gemm (current)', (b) => {
  const x = b.op('Reshape', [b.op('Transpose', ['X'], { perm: attr.ints([0, 2, 3, 1]) }), ints(b, [-1, C])]);
  const dy = b.op('Reshape', [b.op('Transpose', ['dY'], { perm: attr.ints([1, 0, 2, 3]) }), ints(b, [O, -1])]);
  return b.op('Gemm', [dy, x]);
});
await bench('batched matmul, dY transposed', (b) => {
  const dyT = b.op('Transpose', [b.op('Reshape', ['dY', ints(b, [N, O, L])])], { perm: attr.ints([0, 2, 1]) });
  const m = b.op('MatMul', [b.op('Reshape', ['X', ints(b, [N, C, L])]), dyT]);
  return b.op('Transpose', [b.op('ReduceSum', [m, ints(b, [0])], { keepdims: attr.int(0) })], { perm: attr.ints([1, 0]) });
});
await bench('batched matmul, X transposed', (b) => {
  const xT = b.op('Transpose', [b.op('Reshape', ['X', ints(b, [N, C, L])])], { perm: attr.ints([0, 2, 1]) });
  const m = b.op('MatMul', [b.op('Reshape', ['dY', ints(b, [N, O, L])]), xT]);
  return b.op('ReduceSum', [m, ints(b, [0])], { keepdims: attr.int(0) });
});
await bench('einsum', (b) => b.op('Einsum', [b.op('Reshape', ['dY', ints(b, [N, O, L])]), b.op('Reshape', ['X', ints(b, [N, C, L])])], { equation: attr.string('nol,ncl->oc') }));
const ref = res['nhwc gemm (current)'];
for (const [k, v] of Object.entries(res)) { let d = 0, m = 0; for (let i = 0; i < ref.length; i++) { d = Math.max(d, Math.abs(v[i] - ref[i])); m = Math.max(m, Math.abs(ref[i])); } console.log(k, (d / m).toExponential(1)); }
