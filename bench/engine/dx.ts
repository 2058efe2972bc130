import { GraphBuilder } from '../../src/onnx/builder.ts';
import { attr, f32, i64 } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';
const [N, C, H] = [32, 64, 56];
const threads = Number(process.env.THREADS ?? 2);
const rnd = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
const feeds = { W: f32([C, C, 3, 3], rnd(C * C * 9)), dY: f32([N, C, H, H], rnd(N * C * H * H)) };
const res: Record<string, Float32Array> = {};
async function time(label: string, build: (b: GraphBuilder) => string, reps = 10) {
  const b = new GraphBuilder();
  b.input('W', 'float32', [C, C, 3, 3]); b.input('dY', 'float32', [N, C, H, H]);
  const out = build(b); b.output(out, 'float32');
  const s = await createSession(b.toModel(), { threads });
  res[label] = (await s.run(feeds))[out].data as Float32Array;
  const t: number[] = [];
  for (let i = 0; i < reps; i++) { const t0 = performance.now(); await s.run(feeds); t.push(performance.now() - t0); }
  t.sort((a, b) => a - b);
  console.log(JSON.stringify({ label, threads, median_ms: +t[reps >> 1].toFixed(1), min_ms: +t[0].toFixed(1) }));
}
const ints = (b: GraphBuilder, v: number[]) => b.initializer(b.fresh('i'), i64([v.length], v));
for (let round = 0; round < 2; round++) {
  await time('ConvTranspose', (b) => b.op('ConvTranspose', ['dY', 'W'], { pads: attr.ints([1, 1, 1, 1]) }));
  await time('Conv flipped W', (b) => {
    const wt = b.op('Transpose', ['W'], { perm: attr.ints([1, 0, 2, 3]) });
    const flipped = b.op('Slice', [wt, ints(b, [-1, -1]), ints(b, [-(2 ** 53) + 1, -(2 ** 53) + 1]), ints(b, [2, 3]), ints(b, [-1, -1])]);
    return b.op('Conv', ['dY', flipped], { pads: attr.ints([1, 1, 1, 1]) });
  });
}
const a = res['ConvTranspose'], c = res['Conv flipped W'];
let d = 0, m = 0; for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i] - c[i])); m = Math.max(m, Math.abs(a[i])); }
console.log('max rel diff', d / m);
