import { GraphBuilder } from '../../src/onnx/builder.ts';
import { attr, f32, i64 } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';

const [N, C, H] = [32, 64, 56];
const rnd = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
const threads = Number(process.env.THREADS ?? 2);
const feeds = { X: f32([N, C, H, H], rnd(N * C * H * H)), dY: f32([N, C, H, H], rnd(N * C * H * H)) };
const results: Record<string, Float32Array> = {};

async function time(label: string, build: (b: GraphBuilder) => string, reps = 6) {
  const b = new GraphBuilder();
  b.input('X', 'float32', [N, C, H, H]); b.input('dY', 'float32', [N, C, H, H]);
  const out = build(b);
  b.output(out, 'float32');
  const s = await createSession(b.toModel(), { threads });
  const r = await s.run(feeds); results[label] = r[out].data as Float32Array;
  const t: number[] = [];
  for (let i = 0; i < reps; i++) { const t0 = performance.now(); await s.run(feeds); t.push(performance.now() - t0); }
  t.sort((a, b) => a - b);
  console.log(JSON.stringify({ label, threads, median_ms: +t[Math.floor(t.length / 2)].toFixed(1), min_ms: +t[0].toFixed(1) }));
  await s.release();
}
const ints = (b: GraphBuilder, v: number[]) => b.initializer(b.fresh('i'), i64([v.length], v));

await time('conv-based', (b) => {
  const xt = b.op('Transpose', ['X'], { perm: attr.ints([1, 0, 2, 3]) });
  const dyt = b.op('Transpose', ['dY'], { perm: attr.ints([1, 0, 2, 3]) });
  const dw = b.op('Conv', [xt, dyt], { pads: attr.ints([1, 1, 1, 1]) });
  return b.op('Transpose', [dw], { perm: attr.ints([1, 0, 2, 3]) });
});
await time('einsum per shift', (b) => {
  const xp = b.op('Pad', ['X', ints(b, [0, 0, 1, 1, 0, 0, 1, 1])]);
  const parts: string[] = [];
  for (let kh = 0; kh < 3; kh++) for (let kw = 0; kw < 3; kw++) {
    const s = b.op('Slice', [xp, ints(b, [kh, kw]), ints(b, [kh + H, kw + H]), ints(b, [2, 3])]);
    parts.push(b.op('Unsqueeze', [b.op('Einsum', ['dY', s], { equation: attr.string('nohw,nchw->oc') }), ints(b, [2])]));
  }
  return b.op('Reshape', [b.op('Concat', parts, { axis: attr.int(2) }), ints(b, [C, C, 3, 3])]);
});
await time('nhwc gemm per shift', (b) => {
  const xp = b.op('Transpose', [b.op('Pad', ['X', ints(b, [0, 0, 1, 1, 0, 0, 1, 1])])], { perm: attr.ints([0, 2, 3, 1]) });
  const dy2 = b.op('Reshape', [b.op('Transpose', ['dY'], { perm: attr.ints([1, 0, 2, 3]) }), ints(b, [C, -1])]);
  const parts: string[] = [];
  for (let kh = 0; kh < 3; kh++) for (let kw = 0; kw < 3; kw++) {
    const s = b.op('Reshape', [b.op('Slice', [xp, ints(b, [kh, kw]), ints(b, [kh + H, kw + H]), ints(b, [1, 2])]), ints(b, [-1, C])]);
    parts.push(b.op('Unsqueeze', [b.op('Gemm', [dy2, s]), ints(b, [2])]));
  }
  return b.op('Reshape', [b.op('Concat', parts, { axis: attr.int(2) }), ints(b, [C, C, 3, 3])]);
});
await time('nchw matmul per shift', (b) => {
  // dW_k = Σ_n dY[n] (O×HW) · X_k[n]ᵀ (HW×C): batched MatMul then ReduceSum over n
  const xp = b.op('Pad', ['X', ints(b, [0, 0, 1, 1, 0, 0, 1, 1])]);
  const dyr = b.op('Reshape', ['dY', ints(b, [N, C, -1])]);
  const parts: string[] = [];
  for (let kh = 0; kh < 3; kh++) for (let kw = 0; kw < 3; kw++) {
    const s = b.op('Slice', [xp, ints(b, [kh, kw]), ints(b, [kh + H, kw + H]), ints(b, [2, 3])]);
    const st = b.op('Transpose', [b.op('Reshape', [s, ints(b, [N, C, -1])])], { perm: attr.ints([0, 2, 1]) });
    parts.push(b.op('Unsqueeze', [b.op('ReduceSum', [b.op('MatMul', [dyr, st]), ints(b, [0])], { keepdims: attr.int(0) }), ints(b, [2])]));
  }
  return b.op('Reshape', [b.op('Concat', parts, { axis: attr.int(2) }), ints(b, [C, C, 3, 3])]);
});
const ref = results['conv-based'];
for (const [k, v] of Object.entries(results)) {
  let d = 0, m = 0; for (let i = 0; i < ref.length; i++) { d = Math.max(d, Math.abs(v[i] - ref[i])); m = Math.max(m, Math.abs(ref[i])); }
  console.log(k, 'max rel diff vs conv-based', d / m);
}
