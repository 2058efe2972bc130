/**
 * A 3×3 conv with its weights fed at run time (as in a training step): plain NCHW Conv against
 * onnxruntime's NCHWc kernel called directly (com.microsoft.nchwc Conv between ReorderInput and
 * ReorderOutput, the weights reordered to OIhw{B}i{B}o by Reshape–Transpose each run). The NCHWc
 * transformer does this only for constant weights. Process CPU time, one thread, spinning off.
 *   G=N,C,O,H,BLOCK npx tsx bench/engine/conv-nchwc.ts    (BLOCK: 16 with AVX-512, 8 with AVX2)
 */
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { attr, f32, i64 } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';

const [N, C, O, H, B] = (process.env.G ?? '32,64,64,56,16').split(',').map(Number);
const NCHWC = 'com.microsoft.nchwc';
const rnd = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
const feeds = { X: f32([N, C, H, H], rnd(N * C * H * H)), W: f32([O, C, 3, 3], rnd(O * C * 9)) };

async function bench(label: string, build: (b: GraphBuilder) => string): Promise<Float32Array> {
  const b = new GraphBuilder();
  b.input('X', 'float32', [N, C, H, H]);
  b.input('W', 'float32', [O, C, 3, 3]);
  const out = build(b);
  b.output(out, 'float32');
  const model = b.toModel();
  if (b.graph.nodes.some((n) => n.domain === NCHWC)) model.opsetImports.push({ domain: NCHWC, version: 1 });
  const s = await createSession(model, { threads: 1, spinning: false, graphOptimization: 'basic' });
  const result = (await s.run(feeds))[out].data as Float32Array;
  const cpu: number[] = [];
  for (let i = 0; i < 3; i++) {
    const c0 = process.cpuUsage();
    await s.run(feeds);
    const d = process.cpuUsage(c0);
    cpu.push((d.user + d.system) / 1000);
  }
  console.log(JSON.stringify({ label, N, C, O, H, cpu_ms: +cpu.sort((a, b) => a - b)[1].toFixed(1) }));
  await s.release();
  return result;
}
const ints = (b: GraphBuilder, v: number[]) => b.initializer(b.fresh('i'), i64([v.length], v));
const nchwc = (b: GraphBuilder, op: string, inputs: string[], attrs = {}) => {
  const y = b.op(op, inputs, attrs);
  const node = b.graph.nodes[b.graph.nodes.length - 1];
  node.domain = NCHWC;
  return y;
};

const ref = await bench('Conv NCHW', (b) => b.op('Conv', ['X', 'W'], { pads: attr.ints([1, 1, 1, 1]) }));
const got = await bench('NCHWc Conv + reorders', (b) => {
  // W [O, I, kh, kw] → [O/B, Bo, I/B, Bi, kh, kw] → [O/B, I/B, kh, kw, Bi, Bo]
  const w6 = b.op('Reshape', ['W', ints(b, [O / B, B, C / B, B, 3, 3])]);
  const w = b.op('Reshape', [b.op('Transpose', [w6], { perm: attr.ints([0, 2, 4, 5, 3, 1]) }), ints(b, [O, C, 3, 3])]);
  const y = nchwc(b, 'Conv', [nchwc(b, 'ReorderInput', ['X']), w], {
    pads: attr.ints([1, 1, 1, 1]), kernel_shape: attr.ints([3, 3]), strides: attr.ints([1, 1]), dilations: attr.ints([1, 1]), group: attr.int(1),
  });
  return nchwc(b, 'ReorderOutput', [y], { channels: attr.int(O) });
});
let d = 0;
let m = 0;
for (let i = 0; i < ref.length; i++) { d = Math.max(d, Math.abs(ref[i] - got[i])); m = Math.max(m, Math.abs(ref[i])); }
console.log('max rel diff', (d / m).toExponential(1));
