/**
 * A depthwise conv with its weights fed at run time (as in a training step): plain NCHW Conv
 * against onnxruntime's NCHWc depthwise kernel between ReorderInput and ReorderOutput, the weights
 * reordered by Reshape–Transpose each run (what src/runtime/nchwc.ts emits). Median wall time of 9
 * runs at 2 threads; "identity" is the cost of a fresh output of the same size alone.
 *   G=N,C,H,K,S npx tsx bench/engine/depthwise-nchwc.ts     (C a multiple of the block here)
 */
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { attr, f32, i64 } from '../../src/onnx/ir.ts';
import { nchwcBlockSize } from '../../src/runtime/nchwc.ts';
import { createSession } from '../../src/runtime/session.ts';
const [N, C, H, K, S] = (process.env.G ?? '32,240,14,5,1').split(',').map(Number);
const B = (await nchwcBlockSize()) ?? 0;
if (B === 0 || C % B !== 0) throw new Error(`needs NCHWc kernels and C a multiple of the block (${B})`);
const P = (K - 1) >> 1;
const NCHWC = 'com.microsoft.nchwc';
const rnd = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
const feeds = { X: f32([N, C, H, H], rnd(N * C * H * H)), W: f32([C, 1, K, K], rnd(C * K * K)) };
async function bench(label: string, build: (b: GraphBuilder) => string): Promise<Float32Array> {
  const b = new GraphBuilder();
  b.input('X', 'float32', [N, C, H, H]); b.input('W', 'float32', [C, 1, K, K]);
  const out = build(b); const red = b.op('ReduceSum', [out], { keepdims: attr.int(0) }); b.output(red, 'float32'); b.output(out, 'float32');
  const model = b.toModel();
  if (b.graph.nodes.some((n) => n.domain === NCHWC)) model.opsetImports.push({ domain: NCHWC, version: 1 });
  const s = await createSession(model, { threads: 2, spinning: false, graphOptimization: 'basic' });
  const result = (await s.run(feeds))[out].data as Float32Array;
  const ms: number[] = [];
  for (let i = 0; i < 9; i++) { const t = performance.now(); await s.run(feeds); ms.push(performance.now() - t); }
  console.log(label.padEnd(28), ms.sort((a, b) => a - b)[4].toFixed(2), 'ms');
  return result;
}
const ints = (b: GraphBuilder, v: number[]) => b.initializer(b.fresh('i'), i64([v.length], v));
const nchwc = (b: GraphBuilder, op: string, inputs: string[], attrs = {}) => { const y = b.op(op, inputs, attrs); b.graph.nodes[b.graph.nodes.length - 1].domain = NCHWC; return y; };
const conv = { pads: attr.ints([P, P, P, P]), strides: attr.ints([S, S]), group: attr.int(C) };
await bench('identity (output alloc)', (b) => b.op('Slice', ['X', ints(b, [0]), ints(b, [Math.floor((H + 2 * P - K) / S) + 1]), ints(b, [2])]));
const ref = await bench('Conv NCHW depthwise', (b) => b.op('Conv', ['X', 'W'], conv));
const got = await bench('NCHWc depthwise + reorders', (b) => {
  const w = b.op('Reshape', [b.op('Transpose', [b.op('Reshape', ['W', ints(b, [C / B, B, K, K])])], { perm: attr.ints([0, 2, 3, 1]) }), ints(b, [C, 1, K, K])]);
  const y = nchwc(b, 'Conv', [nchwc(b, 'ReorderInput', ['X']), w], { ...conv, kernel_shape: attr.ints([K, K]), dilations: attr.ints([1, 1]) });
  return nchwc(b, 'ReorderOutput', [y], { channels: attr.int(C) });
});
await bench('reorders only', (b) => nchwc(b, 'ReorderOutput', [nchwc(b, 'ReorderInput', ['X'])], { channels: attr.int(C) }));
let d = 0, m = 0; for (let i = 0; i < ref.length; i++) { d = Math.max(d, Math.abs(ref[i] - got[i])); m = Math.max(m, Math.abs(ref[i])); }
console.log('max rel diff', (d / m).toExponential(1));
