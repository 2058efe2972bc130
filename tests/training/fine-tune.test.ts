import { describe, expect, it } from 'vitest';
import { createModel } from '../../src/models/index.ts';
import { f32, type TensorData } from '../../src/onnx/ir.ts';
import { HyperparametersSchema, type MetricsLine } from '../../src/schemas/experiment.ts';
import { decodeCheckpoint, encodeCheckpoint, type CheckpointContent } from '../../src/models/checkpoint.ts';
import type { Batch } from '../../src/training/data/loader.ts';
import { resumePointOf, runTrainingLoop, type EpochBatches, type RunSink } from '../../src/training/run-loop.ts';
import { Trainer } from '../../src/training/trainer.ts';

const SIZE = 16;
const N = 8;
const spec = () => createModel('small_cnn', { numClasses: 2, inputSize: SIZE, seed: 7 });

function batch(seed: number): { x: TensorData; y: TensorData } {
  const data = Float32Array.from({ length: N * 3 * SIZE * SIZE }, (_, j) => Math.sin(j * 0.37 + seed) + (j % 5) * 0.1);
  return { x: f32([N, 3, SIZE, SIZE], data), y: { dtype: 'int64', dims: [N], data: BigInt64Array.from({ length: N }, (_, i) => BigInt((i + seed) % 2)) } };
}

const same = (a: TensorData, b: TensorData) => Array.from(a.data as Float32Array).every((v, i) => v === (b.data as Float32Array)[i]);

describe('param groups: a learning-rate multiple per parameter', () => {
  for (const optimizer of [{ kind: 'adamw' as const, weightDecay: 0.05 }, { kind: 'sgd' as const, momentum: 0.9, weightDecay: 1e-3 }]) {
    it(`${optimizer.kind}: lr × 0.1 on every parameter is exactly a run at a tenth of the rate (decay follows the group's rate)`, async () => {
      const s = spec();
      const scaled = await Trainer.create(s.model, { loss: { kind: 'cross_entropy' }, trainable: s.params, optimizer, threads: 1, lrScale: Object.fromEntries(s.params.map((p) => [p, 0.1])) });
      const plain = await Trainer.create(s.model, { loss: { kind: 'cross_entropy' }, trainable: s.params, optimizer, threads: 1 });
      try {
        for (let k = 0; k < 3; k++) {
          const { x, y } = batch(k);
          await scaled.step(x, y, 0.02);
          await plain.step(x, y, 0.002);
        }
        const a = scaled.getState().params;
        const b = plain.getState().params;
        for (const p of s.params) {
          const da = a[p].data as Float32Array;
          const db = b[p].data as Float32Array;
          let max = 0;
          for (let i = 0; i < da.length; i++) max = Math.max(max, Math.abs(da[i] - db[i]));
          expect(max, p).toBeLessThan(1e-6);
        }
      } finally {
        await Promise.all([scaled.release(), plain.release()]);
      }
    });
  }

  it('only the named parameters move at the multiple; the others at the rate itself', async () => {
    const s = spec();
    const backbone = s.params.filter((p) => !s.head.includes(p));
    const groups = await Trainer.create(s.model, { loss: { kind: 'cross_entropy' }, trainable: s.params, optimizer: { kind: 'sgd' }, threads: 1, lrScale: Object.fromEntries(backbone.map((p) => [p, 0.5])) });
    try {
      const before = groups.getState().params;
      const { x, y } = batch(1);
      await groups.step(x, y, 0.1);
      const after = groups.getState().params;
      // Plain SGD: Δp = −lr·g, so the ratio of a step to the gradient tells the rate it used.
      const grads = await Trainer.create(s.model, { loss: { kind: 'cross_entropy' }, trainable: s.params, optimizer: { kind: 'sgd' }, threads: 1, exposeGradients: true });
      try {
        const { x: x2, y: y2 } = batch(1);
        await grads.step(x2, y2, 1);
        const unit = grads.getState().params;
        for (const p of [s.head[0], backbone[0]]) {
          const d = (after[p].data as Float32Array)[0] - (before[p].data as Float32Array)[0];
          const g = (unit[p].data as Float32Array)[0] - (before[p].data as Float32Array)[0];
          expect(d / g, p).toBeCloseTo(s.head.includes(p) ? 0.1 : 0.05, 4);
        }
      } finally {
        await grads.release();
      }
    } finally {
      await groups.release();
    }
  });
});

describe('frozen batch norm', () => {
  it('with the backbone frozen, its batch norms normalize by their running statistics and keep them', async () => {
    const s = spec();
    expect(s.bnStats.length).toBeGreaterThan(0);
    const frozen = await Trainer.create(s.model, { loss: { kind: 'cross_entropy' }, trainable: s.head, optimizer: { kind: 'sgd' }, threads: 1, frozenBatchNorm: true });
    const trainMode = await Trainer.create(s.model, { loss: { kind: 'cross_entropy' }, trainable: s.head, optimizer: { kind: 'sgd' }, threads: 1 });
    try {
      expect(Object.keys(frozen.graph.bnStats)).toEqual([]);
      expect(Object.keys(trainMode.graph.bnStats).length).toBe(s.bnStats.length);
      const { x, y } = batch(2);
      // The step's logits (before its update) are the eval-mode forward's.
      const evalLogits = await frozen.evaluate(x);
      const stepped = await frozen.step(x, y, 0.1);
      const a = evalLogits.data as Float32Array;
      const b = stepped.logits.data as Float32Array;
      for (let i = 0; i < a.length; i++) expect(b[i]).toBeCloseTo(a[i], 5);
      // In training mode they are not: batch statistics differ from the running ones.
      const trained = await trainMode.step(x, y, 0.1);
      expect(Array.from(trained.logits.data as Float32Array).some((v, i) => Math.abs(v - a[i]) > 1e-3)).toBe(true);
    } finally {
      await Promise.all([frozen.release(), trainMode.release()]);
    }
  });
});

/** Two classes: dark and bright images. */
function epochs(count: number): EpochBatches {
  return async function* (epoch) {
    for (let k = 0; k < count; k++) {
      const input = new Float32Array(N * 3 * SIZE * SIZE);
      const target = new BigInt64Array(N);
      for (let i = 0; i < N; i++) {
        const cls = (i + k + epoch) % 2;
        target[i] = BigInt(cls);
        for (let j = 0; j < 3 * SIZE * SIZE; j++) input[i * 3 * SIZE * SIZE + j] = (cls ? 0.8 : -0.8) + 0.3 * Math.sin(j * 7 + i * 13 + k);
      }
      yield { input, target, ids: [], indices: [], skipped: [] } satisfies Batch;
    }
  };
}

function recorder(): { sink: RunSink; checkpoints: { name: string; epoch: number; content: CheckpointContent }[]; logs: string[]; metrics: MetricsLine[] } {
  const out = { checkpoints: [] as { name: string; epoch: number; content: CheckpointContent }[], logs: [] as string[], metrics: [] as MetricsLine[] };
  return {
    ...out,
    sink: {
      async checkpoint(name, content, at) {
        out.checkpoints.push({ name, epoch: at.epoch, content: decodeCheckpoint(encodeCheckpoint(content)) });
      },
      async metrics(line) {
        out.metrics.push(line);
      },
      progress() {},
      log(m) {
        out.logs.push(m);
      },
    },
  };
}

describe('fine-tuning in the run loop', () => {
  const run = (sink: RunSink, resume?: ReturnType<typeof resumePointOf>) => {
    const s = spec();
    return runTrainingLoop(
      {
        model: s.model,
        trainable: s.params,
        hyperparameters: HyperparametersSchema.parse({ epochs: 3, batch_size: N, optimizer: 'adamw', lr: 5e-3, scheduler: 'constant', seed: 3 }),
        classWeights: null,
        train: epochs(3),
        stepsPerEpoch: 3,
        val: epochs(1),
        threads: 1,
        signal: new AbortController().signal,
        sink,
        fineTune: { head: s.head, freezeEpochs: 1, backboneLrMultiplier: 0.1 },
        ...(resume ? { resume } : {}),
      },
      SIZE,
    );
  };

  it('trains the head alone while the backbone is frozen, then everything; a resume across the switch ends where the run ends', async () => {
    const s = spec();
    const full = recorder();
    await run(full.sink);
    const last = (e: number) => full.checkpoints.find((c) => c.name === 'last' && c.epoch === e)!.content;
    // Epoch 1: only the head's parameters (and their optimizer state) are in the checkpoint.
    expect(Object.keys(last(1).params).sort()).toEqual([...s.head].sort());
    expect(Object.keys(last(1).bnStats)).toEqual([]);
    // Epoch 2 on: everything, the backbone moved.
    expect(Object.keys(last(2).params).sort()).toEqual([...s.params].sort());
    const backbone = s.params.filter((p) => !s.head.includes(p));
    const init = s.model.graph.initializers;
    expect(backbone.some((p) => !same(last(2).params[p], init.get(p)!))).toBe(true);
    expect(full.logs.some((l) => l.includes('frozen for 1 epoch'))).toBe(true);
    expect(full.logs.some((l) => l.includes('epoch 2: the backbone is unfrozen and learns at 0.1 × the learning rate'))).toBe(true);
    expect(full.metrics.map((m) => m.epoch)).toEqual([1, 2, 3]);

    const resumed = recorder();
    await run(resumed.sink, resumePointOf(last(1)));
    const a = last(3);
    const b = resumed.checkpoints.filter((c) => c.name === 'last').at(-1)!.content;
    for (const p of s.params) expect(same(b.params[p], a.params[p]), p).toBe(true);
  }, 60_000);
});
