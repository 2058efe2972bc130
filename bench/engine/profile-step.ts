/**
 * Where a training step's time goes: graph build, encode and session-creation time, then
 * onnxruntime's per-node profile of the step summed by op type (slowest first) and the slowest nodes.
 *   npx tsx bench/engine/profile-step.ts MODEL SIZE BATCH [RUNS]
 * NODES=n lists the n slowest nodes. SLOW=1 lists the memory-bound nodes (no GEMM or conv) that
 * moved under SLOW_GBS (default 3) GB/s: onnxruntime's element-by-element paths (a rank-0 scalar
 * broadcast against [O, C, 1, 1], reductions over (N, H, W) at once, 6-D Transposes) show up
 * there at 0.5–2 GB/s, where its vectorised kernels move 20–80.
 */
import os from 'node:os';
import { createModel } from '../../src/models/index.ts';
import { Rng } from '../../src/models/init.ts';
import { encodeModel } from '../../src/onnx/codec.ts';
import { f32, i64, type TensorData } from '../../src/onnx/ir.ts';
import { profileModel } from '../../src/runtime/profile.ts';
import { lowerConvsToNchwc, nchwcBlockSize } from '../../src/runtime/nchwc.ts';
import { createSession } from '../../src/runtime/session.ts';
import { buildTrainingStep } from '../../src/training/step-graph.ts';
import { DropoutMasks } from '../../src/training/trainer.ts';

const [name = 'mobilenet_v3_small', sizeArg = '112', batchArg = '8', runsArg = '3'] = process.argv.slice(2);
const [size, batch, runs] = [Number(sizeArg), Number(batchArg), Number(runsArg)];
const spec = createModel(name, { numClasses: 10, inputSize: size });
const rng = new Rng(1);

let t = performance.now();
const step = buildTrainingStep(spec.model, { loss: { kind: 'cross_entropy' }, trainable: spec.params, optimizer: { kind: 'sgd', momentum: 0.9 } });
// as the Trainer runs it (src/training/trainer.ts): convs on the NCHWc kernels (NCHWC=0: none; NCHWC=depthwise: those only)
const block = process.env.NCHWC === '0' ? null : await nchwcBlockSize();
const rewritten = block === null ? { depthwise: 0, dense: 0 } : lowerConvsToNchwc(step.model, block, { dense: process.env.NCHWC !== 'depthwise' });
const buildMs = performance.now() - t;
t = performance.now();
const bytes = encodeModel(step.model);
const encodeMs = performance.now() - t;
t = performance.now();
const s = await createSession(bytes, { threads: 2 });
const sessionMs = performance.now() - t;
await s.release();

const feeds: Record<string, TensorData> = {
  [step.inputs.batch]: f32([batch, 3, size, size], Float32Array.from({ length: batch * 3 * size * size }, () => rng.normal())),
  [step.inputs.target]: i64([batch], Array.from({ length: batch }, () => Math.floor(rng.uniform() * 10))),
  [step.inputs.lr]: f32([], [0.01]),
};
Object.assign(feeds, new DropoutMasks(step.dropout, 0).feeds([batch, 3, size, size], 1));
for (const v of step.model.graph.inputs) {
  if (feeds[v.name]) continue;
  const init = spec.model.graph.initializers.get(v.name);
  const dims = init?.dims ?? step.stateDims[v.name];
  if (!dims) throw new Error(`no value for ${v.name}`);
  feeds[v.name] = init ?? f32(dims, new Float32Array(dims.reduce((a, b) => a * b, 1)));
}
const rows = await profileModel(bytes, feeds, { runs, threads: Number(process.env.THREADS ?? 2) });
const byType = new Map<string, { us: number; n: number }>();
for (const r of rows) {
  const e = byType.get(r.opType) ?? { us: 0, n: 0 };
  e.us += r.meanUs;
  e.n += 1;
  byType.set(r.opType, e);
}
const total = rows.reduce((a, r) => a + r.meanUs, 0);
console.log(JSON.stringify({
  model: name, size, batch, nodes: step.model.graph.nodes.length, nchwc: rewritten, mb: +(bytes.length / 1e6).toFixed(1),
  build_ms: Math.round(buildMs), encode_ms: Math.round(encodeMs), session_ms: Math.round(sessionMs),
  kernel_ms_per_step: +(total / 1000).toFixed(1), load: os.loadavg()[0].toFixed(1),
}));
for (const [op, e] of [...byType.entries()].sort((a, b) => b[1].us - a[1].us).slice(0, 18)) {
  console.log(`${op.padEnd(24)} ${(e.us / 1000).toFixed(1).padStart(8)} ms ${((100 * e.us) / total).toFixed(1).padStart(5)}%  nodes ${e.n}`);
}
if (process.env.NODES) for (const r of rows.slice(0, Number(process.env.NODES))) console.log(`  ${(r.meanUs / 1000).toFixed(1).padStart(7)} ms ${r.opType.padEnd(18)} ${r.node}`);
if (process.env.SLOW) {
  const compute = new Set(['Conv', 'FusedConv', 'ConvTranspose', 'MatMul', 'FusedMatMul', 'Gemm', 'FusedGemm']);
  const limit = Number(process.env.SLOW_GBS ?? 3);
  const slow = rows.filter((r) => !compute.has(r.opType) && r.meanUs > 20 && r.bytesPerRun / r.meanUs / 1000 < limit);
  console.log(`memory-bound nodes under ${limit} GB/s: ${slow.length}, ${(slow.reduce((a, r) => a + r.meanUs, 0) / 1000).toFixed(1)} ms per step`);
  for (const r of slow.slice(0, 30)) console.log(`  ${(r.meanUs / 1000).toFixed(2).padStart(7)} ms ${(r.bytesPerRun / r.meanUs / 1000).toFixed(2).padStart(6)} GB/s ${r.opType.padEnd(18)} ${r.node}`);
}
