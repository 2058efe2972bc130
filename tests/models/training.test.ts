import { describe, expect, it } from 'vitest';
import { createModel, listModels, trainableSet } from '../../src/models/index.ts';
import { i64 } from '../../src/onnx/ir.ts';
import { Trainer } from '../../src/training/trainer.ts';
import { batchOf } from './helpers.ts';

const SIZE = 32;
const LOSS = { kind: 'cross_entropy' as const };

describe('catalog models train', () => {
  it.each(listModels())('%s: every param gets a gradient, and one training step runs and changes them', async (name) => {
    const spec = createModel(name, { numClasses: 4, inputSize: SIZE, seed: 1 });
    const trainer = await Trainer.create(spec.model, { loss: LOSS, trainable: spec.params, optimizer: { kind: 'sgd', momentum: 0.9 }, threads: 1 });
    // The step graph has an update for every param (building it throws "no gradient for 'p'"
    // for a param the loss does not reach) and for every BN statistic.
    expect(Object.keys(trainer.graph.params)).toEqual(spec.params);
    expect(Object.keys(trainer.graph.bnStats).sort()).toEqual([...spec.bnStats].sort());
    const before = trainer.getState();
    const r = await trainer.step(batchOf(2, SIZE), i64([2], [1, 3]), 0.01);
    const after = trainer.getState();
    await trainer.release();
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(r.logits.dims).toEqual([2, 4]);
    const changed = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).some((v, i) => v !== b[i]);
    for (const p of [spec.params[0], ...spec.head]) expect(changed(after.params[p].data as Float32Array, before.params[p].data as Float32Array), p).toBe(true);
    expect(changed(after.bnStats[spec.bnStats[0]].data as Float32Array, before.bnStats[spec.bnStats[0]].data as Float32Array)).toBe(true);
  });

  it('small_cnn overfits a tiny batch', async () => {
    const spec = createModel('small_cnn', { numClasses: 4, inputSize: 16, seed: 2 });
    const trainer = await Trainer.create(spec.model, { loss: LOSS, trainable: spec.params, optimizer: { kind: 'adam' }, threads: 1 });
    const x = batchOf(4, 16);
    const y = i64([4], [0, 1, 2, 3]);
    const losses: number[] = [];
    for (let i = 0; i < 60; i++) losses.push((await trainer.step(x, y, 0.01)).loss);
    await trainer.release();
    expect(losses[0]).toBeGreaterThan(1);
    expect(losses.at(-1)).toBeLessThan(0.05);
  });

  it('trains the head only, leaving the backbone untouched', async () => {
    const spec = createModel('small_cnn', { numClasses: 3, inputSize: 16 });
    const head = trainableSet(spec, 'head');
    const trainer = await Trainer.create(spec.model, { loss: LOSS, trainable: head, optimizer: { kind: 'sgd' }, threads: 1 });
    await trainer.step(batchOf(2, 16), i64([2], [0, 2]), 0.1);
    expect(Object.keys(trainer.getState().params)).toEqual(head);
    await trainer.release();
  });
});
