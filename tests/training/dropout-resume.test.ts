import { describe, expect, it } from 'vitest';
import { createModel } from '../../src/models/index.ts';
import { f32, i64, type TensorData } from '../../src/onnx/ir.ts';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/models/checkpoint.ts';
import { DropoutMasks, fillDropoutMask, Trainer, type TrainerOptions, type TrainerState } from '../../src/training/trainer.ts';

const SIZE = 32;
const BATCH = 4;

function batch(seed: number): { x: TensorData; y: TensorData } {
  const x = Float32Array.from({ length: BATCH * 3 * SIZE * SIZE }, (_, i) => Math.sin(i * 0.013 * seed + seed));
  return { x: f32([BATCH, 3, SIZE, SIZE], x), y: i64([BATCH], [seed % 3, (seed + 1) % 3, (seed + 2) % 3, seed % 3]) };
}

function bits(t: TensorData): number[] {
  return Array.from(new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length));
}

function expectSameState(a: TrainerState, b: TrainerState): void {
  expect(b.step).toBe(a.step);
  for (const group of ['params', 'optimizerState', 'bnStats'] as const) {
    expect(Object.keys(b[group]).sort()).toEqual(Object.keys(a[group]).sort());
    for (const k of Object.keys(a[group])) expect(bits(b[group][k]), `${group} ${k}`).toEqual(bits(a[group][k]));
  }
}

describe('dropout under a resumed run (mobilenet_v3_small, classifier dropout 0.2)', () => {
  const spec = createModel('mobilenet_v3_small', { numClasses: 3, inputSize: SIZE, seed: 2 });
  const opts: TrainerOptions = { loss: { kind: 'cross_entropy' }, trainable: spec.params, optimizer: { kind: 'adamw', weightDecay: 0.01 }, threads: 1, seed: 11 };
  const batches = [1, 2, 3, 4].map(batch);

  it('continues bit-for-bit from a checkpoint in a new trainer, and the masks follow the seed', async () => {
    const straight = await Trainer.create(spec.model, opts);
    expect(straight.graph.dropout).toHaveLength(1);
    expect(straight.graph.model.graph.nodes.some((n) => n.opType === 'Dropout')).toBe(false);
    const straightLosses: number[] = [];
    let file: Uint8Array = new Uint8Array();
    for (const [i, b] of batches.entries()) {
      straightLosses.push((await straight.step(b.x, b.y, 0.01)).loss);
      if (i === 1) file = encodeCheckpoint({ ...straight.getState(), rng: [11, 1], metadata: {} });
    }

    const resumed = await Trainer.create(spec.model, opts);
    resumed.setState(decodeCheckpoint(file));
    expect(resumed.stepCount).toBe(2);
    const resumedLosses: number[] = [];
    for (const b of batches.slice(2)) resumedLosses.push((await resumed.step(b.x, b.y, 0.01)).loss);
    expect(resumedLosses).toEqual(straightLosses.slice(2));
    expectSameState(straight.getState(), resumed.getState());

    // the masks matter: another seed draws others and ends elsewhere
    const other = await Trainer.create(spec.model, { ...opts, seed: 12 });
    for (const b of batches.slice(0, 2)) await other.step(b.x, b.y, 0.01);
    const head = 'classifier.3.weight';
    expect(bits(other.getState().params[head])).not.toEqual(bits(decodeCheckpoint(file).params[head]));
    await Promise.all([straight.release(), resumed.release(), other.release()]);
  });
});

describe('dropout masks', () => {
  const scale = Math.fround(1 / 0.8);

  it('drop about `ratio` of the entries and scale the rest by 1/(1 − ratio)', () => {
    const n = 200_000;
    const m = new Float32Array(n);
    fillDropoutMask(m, 0.2, 7, 1, 0);
    let zeros = 0;
    let sum = 0;
    for (const v of m) {
      if (v === 0) zeros += 1;
      else expect(v).toBe(scale);
      sum += v;
    }
    // binomial sd of the fraction is 0.0009 here
    expect(zeros / n).toBeGreaterThan(0.195);
    expect(zeros / n).toBeLessThan(0.205);
    expect(sum / n).toBeCloseTo(1, 1);
    const half = new Float32Array(n);
    fillDropoutMask(half, 0.5, 7, 1, 0);
    expect(half.filter((v) => v === 0).length / n).toBeCloseTo(0.5, 2);
  });

  it('are a function of (seed, step, mask) alone, independent across steps', () => {
    const n = 100_000;
    const draw = (seed: number, step: number, index: number) => {
      const m = new Float32Array(n);
      fillDropoutMask(m, 0.2, seed, step, index);
      return m;
    };
    const a = draw(3, 5, 0);
    expect(draw(3, 5, 0)).toEqual(a);
    for (const [b, what] of [[draw(3, 6, 0), 'next step'], [draw(4, 5, 0), 'other seed'], [draw(3, 5, 1), 'other mask']] as const) {
      let both = 0;
      for (let i = 0; i < n; i++) if (a[i] === 0 && b[i] === 0) both += 1;
      // independent masks drop the same entry with probability 0.2² = 0.04
      expect(both / n, what).toBeGreaterThan(0.036);
      expect(both / n, what).toBeLessThan(0.044);
    }
    const none = draw(3, 5, 0).fill(9);
    fillDropoutMask(none, 0, 3, 5, 0);
    expect(none.every((v) => v === 1)).toBe(true);
    expect(() => fillDropoutMask(new Float32Array(1), 1, 0, 1, 0)).toThrow(/outside \[0, 1\)/);
  });

  it('take their batch axes from the batch and reuse one buffer', () => {
    const masks = new DropoutMasks([{ input: 'm', ratio: 0.3, dims: [{ batchAxis: 0 }, 16] }], 1);
    const full = masks.feeds([8, 3, 4, 4], 2).m;
    expect(full.dims).toEqual([8, 16]);
    const firstBuffer = full.data.buffer;
    const copy = Float32Array.from(full.data as Float32Array);
    const small = masks.feeds([2, 3, 4, 4], 2).m;
    expect(small.dims).toEqual([2, 16]);
    expect(small.data.buffer).toBe(firstBuffer);
    // a smaller batch draws the first entries of the same stream
    expect(Array.from(small.data as Float32Array)).toEqual(Array.from(copy.subarray(0, 32)));
    expect(() => masks.feeds([], 1)).toThrow(/needs axis 0/);
  });
});
