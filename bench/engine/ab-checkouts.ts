/**
 * Step time of another checkout's Trainer against this one's, in one process, stepping in
 * alternating blocks: on a machine whose speed drifts by tens of percent within minutes, the
 * steadiest way to say what a series of commits changed (224 px, batch 32, 2 threads).
 *   git worktree add /tmp/base <commit> && ln -s "$PWD/node_modules" /tmp/base/node_modules
 *   BASE=/tmp/base npx tsx bench/engine/ab-checkouts.ts resnet18 [BLOCKS 4] [STEPS_PER_BLOCK 3]
 * Prints one JSON line: the median step of each and the gain of this checkout.
 */
import { createModel } from '../../src/models/index.ts';
import { Rng } from '../../src/models/init.ts';
import { f32, i64 } from '../../src/onnx/ir.ts';
import { Trainer } from '../../src/training/trainer.ts';
const base = process.env.BASE;
if (!base) throw new Error('BASE: the other checkout\'s directory (see the header)');
const { Trainer: BaseTrainer } = await import(`${base}/src/training/trainer.ts`) as { Trainer: typeof Trainer };
const { createModel: baseCreate } = await import(`${base}/src/models/index.ts`) as { createModel: typeof createModel };
const model = process.argv[2] ?? 'resnet18';
const blocks = Number(process.argv[3] ?? 4), per = Number(process.argv[4] ?? 3);
const size = 224, batch = 32;
const opts = (spec: ReturnType<typeof createModel>) => ({ loss: { kind: 'cross_entropy' as const }, trainable: spec.params, optimizer: { kind: 'sgd' as const, momentum: 0.9 }, threads: 2 });
const sa = baseCreate(model, { numClasses: 10, inputSize: size, seed: 1 });
const sb = createModel(model, { numClasses: 10, inputSize: size, seed: 1 });
const A = await BaseTrainer.create(sa.model, opts(sa));
const B = await Trainer.create(sb.model, opts(sb));
const rng = new Rng(2);
const x = f32([batch, 3, size, size], Float32Array.from({ length: batch * 3 * size * size }, () => rng.normal()));
const y = i64([batch], Array.from({ length: batch }, (_, i) => i % 10));
for (const t of [A, B]) for (let i = 0; i < 2; i++) await t.step(x, y, 1e-3);
const res: Record<string, number[]> = { A: [], B: [] };
for (let k = 0; k < blocks; k++) for (const [name, t] of (k % 2 ? [['B', B], ['A', A]] : [['A', A], ['B', B]]) as [string, Trainer][]) {
  for (let i = 0; i < per; i++) { const t0 = performance.now(); await t.step(x, y, 1e-3); res[name].push(performance.now() - t0); }
}
const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
console.log(JSON.stringify({ model, base_ms: +med(res.A).toFixed(0), head_ms: +med(res.B).toFixed(0), gain: +(1 - med(res.B) / med(res.A)).toFixed(3), A: res.A.map(Math.round), B: res.B.map(Math.round) }));
