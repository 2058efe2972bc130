import { describe, expect, it } from 'vitest';
import { createModel, listModels, trainableSet } from '../../src/models/index.ts';
import { i64 } from '../../src/onnx/ir.ts';
import { Trainer } from '../../src/training/trainer.ts';
import { buildConvNeXt } from '../../src/models/convnext.ts';
import { buildMobileNetV2 } from '../../src/models/mobilenetv2.ts';
import { buildViT } from '../../src/models/vit.ts';
import type { ModelSpec } from '../../src/models/index.ts';
import { batchOf, HEAVY_MODELS } from './helpers.ts';

const SIZE = 32;
const LOSS = { kind: 'cross_entropy' as const };

/**
 * Builds the training step (which throws "no gradient for 'p'" for a param the loss does not
 * reach), checks it updates every param and BN statistic, runs a step and checks the first param,
 * the head and the first BN statistic changed. A head that starts at zero (torchvision's ViT)
 * passes no gradient to the backbone on the first step, so such a model takes two.
 */
async function stepChangesEverything(spec: ModelSpec): Promise<void> {
  const trainer = await Trainer.create(spec.model, { loss: LOSS, trainable: spec.params, optimizer: { kind: 'sgd', momentum: 0.9 }, threads: 1 });
  try {
    expect(Object.keys(trainer.graph.params)).toEqual(spec.params);
    expect(Object.keys(trainer.graph.bnStats).sort()).toEqual([...spec.bnStats].sort());
    const before = trainer.getState();
    const headWeight = before.params[spec.head.at(-2)!].data as Float32Array;
    const steps = headWeight.every((v) => v === 0) ? 2 : 1;
    let r = await trainer.step(batchOf(2, SIZE), i64([2], [1, 3]), 0.01);
    if (steps === 2) r = await trainer.step(batchOf(2, SIZE, 1), i64([2], [0, 2]), 0.01);
    const after = trainer.getState();
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(r.logits.dims).toEqual([2, 4]);
    const changed = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).some((v, i) => v !== b[i]);
    for (const p of [spec.params[0], ...spec.head]) expect(changed(after.params[p].data as Float32Array, before.params[p].data as Float32Array), p).toBe(true);
    if (spec.bnStats.length > 0) expect(changed(after.bnStats[spec.bnStats[0]].data as Float32Array, before.bnStats[spec.bnStats[0]].data as Float32Array)).toBe(true);
  } finally {
    await trainer.release();
  }
}

describe('catalog models train', () => {
  it.each(listModels().filter((n) => !HEAVY_MODELS.has(n)))('%s: every param gets a gradient, and one training step runs and changes them', async (name) => {
    await stepChangesEverything(createModel(name, { numClasses: 4, inputSize: SIZE, seed: 1 }));
  });

  it('vit_b_16\'s widths (hidden 768, 12 heads, MLP 3072) with 2 layers: every param gets a gradient and changes', async () => {
    await stepChangesEverything(buildViT('vit_b_16_2', { patch: 16, layers: 2, heads: 12, hidden: 768, mlp: 3072 }, { numClasses: 4, inputSize: SIZE, seed: 1 }));
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

  // The new families at reduced widths (the same builders as the catalog's variants): Adam
  // overfits 4 images of 4 classes.
  it.each([
    ['mobilenet_v2 ×0.35', () => buildMobileNetV2('mnv2', { widthMult: 0.35, dropout: 0 }, { numClasses: 4, inputSize: 32, seed: 2 })],
    ['convnext (2 stages of 1 block, 16/32 channels)', () => buildConvNeXt('cnx', { stages: [[16, 32, 1], [32, null, 1]], layerScale: 1e-6 }, { numClasses: 4, inputSize: 32, seed: 2 })],
    ['vit (hidden 32, 2 heads, 2 layers, patch 8)', () => buildViT('vit', { patch: 8, layers: 2, heads: 2, hidden: 32, mlp: 64 }, { numClasses: 4, inputSize: 32, seed: 2 })],
  ] as const)('%s overfits a tiny batch', async (_, make) => {
    const spec = make();
    const trainer = await Trainer.create(spec.model, { loss: LOSS, trainable: spec.params, optimizer: { kind: 'adam' }, threads: 1 });
    const x = batchOf(4, 32);
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
