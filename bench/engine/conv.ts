import { backward } from '../../src/autodiff/index.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { attr, f32 } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';

const [N, C, H] = [32, 64, 56];
const rnd = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
const threads = Number(process.env.THREADS ?? 2);

async function time(label: string, build: (b: GraphBuilder) => string[], feeds: Record<string, ReturnType<typeof f32>>, reps = 10) {
  const b = new GraphBuilder();
  const outs = build(b);
  for (const o of outs) b.output(o, 'float32');
  const s = await createSession(b.toModel(), { threads });
  for (let i = 0; i < 3; i++) await s.run(feeds);
  const t: number[] = [];
  for (let i = 0; i < reps; i++) { const t0 = performance.now(); await s.run(feeds); t.push(performance.now() - t0); }
  t.sort((a, b) => a - b);
  console.log(JSON.stringify({ label, threads, median_ms: +t[Math.floor(t.length / 2)].toFixed(1), min_ms: +t[0].toFixed(1) }));
  await s.release();
}

const feeds = { X: f32([N, C, H, H], rnd(N * C * H * H)), W: f32([C, C, 3, 3], rnd(C * C * 9).map((v) => v * 0.05)), dY: f32([N, C, H, H], rnd(N * C * H * H)) };
const conv = (b: GraphBuilder) => {
  b.input('X', 'float32', [N, C, H, H]); b.input('W', 'float32', [C, C, 3, 3]); b.input('dY', 'float32', [N, C, H, H]);
  return b.op('Conv', ['X', 'W'], { pads: attr.ints([1, 1, 1, 1]) });
};
await time('forward', (b) => [conv(b)], feeds);
await time('forward+backward (dX, dW)', (b) => { const y = conv(b); const g = backward(b, { loss: y, wrt: ['X', 'W'], lossGrad: 'dY' }); return [y, g.get('X')!, g.get('W')!]; }, feeds);
await time('forward+dX only', (b) => { const y = conv(b); const g = backward(b, { loss: y, wrt: ['X'], lossGrad: 'dY' }); return [y, g.get('X')!]; }, feeds);
await time('forward+dW only', (b) => { const y = conv(b); const g = backward(b, { loss: y, wrt: ['W'], lossGrad: 'dY' }); return [y, g.get('W')!]; }, feeds);
