/**
 * Depthwise conv backward, weight gradient: the grouped-Conv form autodiff emits (X and dY with
 * batch and channel swapped, dY as an N·H·W kernel) against one Mul + ReduceSum per kernel tap.
 * Process CPU time per run (spinning off), so figures hold on a loaded machine.
 *   G=N,C,H,K,S npx tsx bench/engine/depthwise.ts
 */
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { attr, f32, i64 } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';

const [N, C, H, K, S] = (process.env.G ?? '32,96,28,5,1').split(',').map(Number);
const P = (K - 1) >> 1;
const O = Math.floor((H + 2 * P - K) / S) + 1;
const rnd = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
const feeds = { X: f32([N, C, H, H], rnd(N * C * H * H)), dY: f32([N, C, O, O], rnd(N * C * O * O)) };
const results: Record<string, Float32Array> = {};

async function bench(label: string, build: (b: GraphBuilder) => string) {
  const b = new GraphBuilder();
  b.input('X', 'float32', [N, C, H, H]);
  b.input('dY', 'float32', [N, C, O, O]);
  const out = build(b);
  b.output(out, 'float32');
  const s = await createSession(b.toModel(), { threads: 1, spinning: false });
  results[label] = (await s.run(feeds))[out].data as Float32Array;
  const cpu: number[] = [];
  for (let i = 0; i < 3; i++) {
    const c0 = process.cpuUsage();
    await s.run(feeds);
    const d = process.cpuUsage(c0);
    cpu.push((d.user + d.system) / 1000);
  }
  cpu.sort((a, b) => a - b);
  console.log(JSON.stringify({ label, geometry: { N, C, H, K, S }, cpu_ms: +cpu[1].toFixed(1) }));
  await s.release();
}
const ints = (b: GraphBuilder, v: number[]) => b.initializer(b.fresh('i'), i64([v.length], v));

await bench('grouped conv (current)', (b) => {
  const xt = b.op('Reshape', [b.op('Transpose', [b.op('Reshape', ['X', ints(b, [-1, C, 1, H, H])])], { perm: attr.ints([2, 1, 0, 3, 4]) }), ints(b, [1, -1, H, H])]);
  const dyt = b.op('Transpose', ['dY'], { perm: attr.ints([1, 0, 2, 3]) });
  const need = K - 1 + S * (O - 1) + 1 - H - P;
  const dw = b.op('Conv', [xt, dyt], { dilations: attr.ints([S, S]), pads: attr.ints([P, P, Math.max(need, 0), Math.max(need, 0)]), group: attr.int(C) });
  const cropped = need < 0 ? b.op('Slice', [dw, ints(b, [0, 0]), ints(b, [K, K]), ints(b, [2, 3])]) : dw;
  return b.op('Transpose', [cropped], { perm: attr.ints([1, 0, 2, 3]) });
});
await bench('mul+reducesum per tap', (b) => {
  const xp = b.op('Pad', ['X', ints(b, [0, 0, P, P, 0, 0, P, P])]);
  const axes = ints(b, [0, 2, 3]);
  const parts: string[] = [];
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) {
    const win = b.op('Slice', [xp, ints(b, [i, j]), ints(b, [i + S * (O - 1) + 1, j + S * (O - 1) + 1]), ints(b, [2, 3]), ints(b, [S, S])]);
    parts.push(b.op('ReduceSum', [b.op('Mul', ['dY', win]), axes], { keepdims: attr.int(0) }));
  }
  return b.op('Reshape', [b.op('Concat', parts.map((p) => b.op('Unsqueeze', [p, ints(b, [1])])), { axis: attr.int(1) }), ints(b, [C, 1, K, K])]);
});
await bench('einsum per tap', (b) => {
  const xp = b.op('Pad', ['X', ints(b, [0, 0, P, P, 0, 0, P, P])]);
  const parts: string[] = [];
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) {
    const win = b.op('Slice', [xp, ints(b, [i, j]), ints(b, [i + S * (O - 1) + 1, j + S * (O - 1) + 1]), ints(b, [2, 3]), ints(b, [S, S])]);
    parts.push(b.op('Einsum', ['dY', win], { equation: attr.string('nchw,nchw->c') }));
  }
  return b.op('Reshape', [b.op('Concat', parts.map((p) => b.op('Unsqueeze', [p, ints(b, [1])])), { axis: attr.int(1) }), ints(b, [C, 1, K, K])]);
});
const ref = results['grouped conv (current)'];
for (const [k, v] of Object.entries(results)) {
  let d = 0;
  let m = 0;
  for (let i = 0; i < ref.length; i++) { d = Math.max(d, Math.abs(v[i] - ref[i])); m = Math.max(m, Math.abs(ref[i])); }
  console.log(k, 'max rel diff vs grouped conv', (d / m).toExponential(1));
}
