import { describe, expect, it } from 'vitest';
import { createModel } from '../../src/models/index.ts';
import { HyperparametersSchema, type HyperparametersInput, type MetricsLine } from '../../src/schemas/experiment.ts';
import { decodeCheckpoint, encodeCheckpoint, type CheckpointContent } from '../../src/models/checkpoint.ts';
import type { Batch } from '../../src/training/data/loader.ts';
import { improves, resumePointOf, runTrainingLoop, scoreLogits, type EpochBatches, type RunLoopOptions, type RunSink } from '../../src/training/run-loop.ts';

const SIZE = 16;
const N = 16;

/** Two classes a CNN separates at once: dark images and bright ones; order varies with the epoch. */
function batches(count: number, batchSize: number, noise = 0): EpochBatches {
  return async function* (epoch) {
    for (let b = 0; b < count; b++) {
      const n = batchSize;
      const input = new Float32Array(n * 3 * SIZE * SIZE);
      const target = new BigInt64Array(n);
      for (let i = 0; i < n; i++) {
        const cls = (i + b + epoch) % 2;
        target[i] = BigInt(cls);
        for (let j = 0; j < 3 * SIZE * SIZE; j++) input[i * 3 * SIZE * SIZE + j] = (cls ? 1 : -1) + noise * Math.sin(j * 7 + i * 13 + b);
      }
      yield { input, target, ids: [], indices: [], skipped: [] } satisfies Batch;
    }
  };
}

interface Recorded {
  metrics: MetricsLine[];
  checkpoints: Array<{ name: string; epoch: number; content: CheckpointContent }>;
  logs: string[];
}

function recorder(): { sink: RunSink; rec: Recorded } {
  const rec: Recorded = { metrics: [], checkpoints: [], logs: [] };
  return {
    rec,
    sink: {
      async checkpoint(name, content, at) {
        rec.checkpoints.push({ name, epoch: at.epoch, content: decodeCheckpoint(encodeCheckpoint(content)) });
      },
      async metrics(line) {
        rec.metrics.push(line);
      },
      progress() {},
      log(m) {
        rec.logs.push(m);
      },
    },
  };
}

function options(h: HyperparametersInput, sink: RunSink, extra: Partial<RunLoopOptions> = {}): RunLoopOptions {
  const spec = createModel('small_cnn', { numClasses: 2, inputSize: SIZE, seed: 4 });
  return {
    model: spec.model,
    trainable: spec.params,
    hyperparameters: HyperparametersSchema.parse({ batch_size: N, seed: 4, ...h }),
    classWeights: null,
    train: batches(3, N),
    stepsPerEpoch: 3,
    val: batches(1, N),
    threads: 1,
    signal: new AbortController().signal,
    sink,
    ...extra,
  };
}

describe('run loop', () => {
  it('scores logits: mean cross-entropy and hits', () => {
    const logits = { dtype: 'float32' as const, dims: [2, 2], data: Float32Array.from([2, 0, 0, 2]) };
    const s = scoreLogits(logits, BigInt64Array.from([0n, 0n]));
    expect(s.correct).toBe(1);
    expect(s.lossSum).toBeCloseTo(Math.log(1 + Math.exp(-2)) + Math.log(1 + Math.exp(2)), 5);
  });

  it('writes one metrics line and a `last` checkpoint per epoch, `best` when the metric improves', async () => {
    const { sink, rec } = recorder();
    const r = await runTrainingLoop(options({ epochs: 3, optimizer: 'adamw', lr: 1e-2, scheduler: 'constant' }, sink), SIZE);
    expect(r).toMatchObject({ epochsDone: 3, stopReason: 'completed' });
    expect(rec.metrics.map((m) => m.epoch)).toEqual([1, 2, 3]);
    expect(rec.metrics.map((m) => m.step)).toEqual([3, 6, 9]);
    expect(rec.metrics.every((m) => m.lr === 1e-2 && m.val_accuracy !== null)).toBe(true);
    expect(rec.metrics.at(-1)!.val_accuracy).toBe(1);
    expect(rec.checkpoints.filter((c) => c.name === 'last').map((c) => c.epoch)).toEqual([1, 2, 3]);
    const best = rec.checkpoints.filter((c) => c.name === 'best');
    expect(best.length).toBeGreaterThanOrEqual(1);
    expect(r.best?.epoch).toBe(best.at(-1)!.epoch);
    // A checkpoint carries what resuming needs: the epoch, the best so far, the early-stopping count.
    const point = resumePointOf(rec.checkpoints.at(-1)!.content);
    expect(point.epoch).toBe(3);
    expect(point.state.step).toBe(9);
    expect(point.best).toEqual(r.best);
  }, 60_000);

  it('stops early when the validation loss stops improving', async () => {
    const { sink, rec } = recorder();
    // lr tiny: val loss barely moves after the first epochs, and noise-free batches give the
    // same loss every epoch, so "no improvement" comes quickly.
    const r = await runTrainingLoop(
      options({ epochs: 20, optimizer: 'sgd', lr: 1e-9, momentum: 0, scheduler: 'constant', early_stopping: { metric: 'val_loss', patience: 2 } }, sink),
      SIZE,
    );
    expect(r.stopReason).toBe('early_stopping');
    expect(r.epochsDone).toBeLessThan(20);
    expect(rec.metrics).toHaveLength(r.epochsDone);
    expect(rec.logs.at(-1)).toContain('early stopping');
  }, 60_000);

  it('resumed from a checkpoint, ends where an uninterrupted run ends', async () => {
    const h = { epochs: 3, optimizer: 'sgd' as const, lr: 0.05, scheduler: 'cosine' as const };
    const full = recorder();
    await runTrainingLoop(options(h, full.sink, { train: batches(3, N, 0.5) }), SIZE);
    const resumed = recorder();
    const at1 = full.rec.checkpoints.find((c) => c.name === 'last' && c.epoch === 1)!;
    await runTrainingLoop(options(h, resumed.sink, { train: batches(3, N, 0.5), resume: resumePointOf(at1.content) }), SIZE);
    expect(resumed.rec.metrics.map((m) => m.epoch)).toEqual([2, 3]);
    const a = full.rec.checkpoints.filter((c) => c.name === 'last').at(-1)!.content;
    const b = resumed.rec.checkpoints.filter((c) => c.name === 'last').at(-1)!.content;
    for (const name of Object.keys(a.params)) expect(Array.from(b.params[name].data as Float32Array), name).toEqual(Array.from(a.params[name].data as Float32Array));
  }, 60_000);

  it('cancelled, stops within a step and writes nothing more', async () => {
    const { sink, rec } = recorder();
    const controller = new AbortController();
    let steps = 0;
    const train: EpochBatches = async function* (epoch, signal) {
      for await (const b of batches(50, N)(epoch, signal)) {
        steps += 1;
        if (steps === 2) controller.abort();
        yield b;
      }
    };
    const r = await runTrainingLoop(options({ epochs: 2 }, sink, { train, stepsPerEpoch: 50, signal: controller.signal }), SIZE);
    expect(r).toMatchObject({ stopReason: 'cancelled', epochsDone: 0 });
    expect(steps).toBe(2);
    expect(rec.metrics).toHaveLength(0);
    expect(rec.checkpoints).toHaveLength(0);
  }, 60_000);

  it('fails with a clear message when the loss diverges', async () => {
    const { sink } = recorder();
    const bad: EpochBatches = async function* () {
      yield { input: new Float32Array(N * 3 * SIZE * SIZE).fill(Number.NaN), target: new BigInt64Array(N), ids: [], indices: [], skipped: [] };
    };
    await expect(runTrainingLoop(options({ epochs: 1 }, sink, { train: bad, stepsPerEpoch: 1 }), SIZE)).rejects.toThrow(/lower the learning rate/);
  }, 60_000);
});

describe('best epoch ties', () => {
  const best = (epoch: number, value: number, val_loss: number | null) => ({ epoch, metric: 'val_accuracy', value, val_loss });
  it('a strictly better metric wins, in its direction', () => {
    expect(improves(true, 0.6, 0.9, best(1, 0.5, 0.1))).toBe(true);
    expect(improves(true, 0.4, 0.01, best(1, 0.5, 0.9))).toBe(false);
    expect(improves(false, 0.4, null, best(1, 0.5, null))).toBe(true);
    expect(improves(false, 0.6, null, best(1, 0.5, null))).toBe(false);
  });
  it('a tie goes to the lower val loss, then to the later epoch — never stays at epoch 1 because every epoch tied', () => {
    expect(improves(true, 0.514, 0.69, best(1, 0.514, 0.693))).toBe(true);
    expect(improves(true, 0.514, 0.70, best(1, 0.514, 0.693))).toBe(false);
    expect(improves(true, 0.514, 0.693, best(1, 0.514, 0.693))).toBe(true);
    // a best written before ties were broken has no val loss: the later epoch wins
    expect(improves(true, 0.514, 0.693, { epoch: 1, metric: 'val_accuracy', value: 0.514 })).toBe(true);
  });
});
