import { describe, expect, it } from 'vitest';
import { calibrateActivations } from '../../src/export/calibrate.ts';
import { buildFp16Export } from '../../src/export/fp16.ts';
import { buildFp32Export } from '../../src/export/fp32.ts';
import { buildInt8Export } from '../../src/export/int8.ts';
import { preprocessingFromEval } from '../../src/export/manifest.ts';
import { compareOutputs } from '../../src/export/validate.ts';
import { buildConvNeXt } from '../../src/models/convnext.ts';
import { createModel, type ModelSpec } from '../../src/models/index.ts';
import { buildViT } from '../../src/models/vit.ts';
import { encodeModel } from '../../src/onnx/codec.ts';
import { i64 } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';
import { evalPreprocessing } from '../../src/training/data/eval-transform.ts';
import { Trainer } from '../../src/training/trainer.ts';
import { batchOf, maxAbsDiff } from './helpers.ts';

/**
 * The new families export as the older ones do: a trained step's weights through the fp32
 * export (eval graph, BN folded where there is BN, softmax), fp16 and static int8, each loading
 * and running, the fp32 export's logits those of the training engine's own forward.
 */

const SIZE = 32;
const K = 4;

const CASES: [string, () => ModelSpec][] = [
  ['mobilenet_v2', () => createModel('mobilenet_v2', { numClasses: K, inputSize: SIZE, seed: 1 })],
  ['convnext (reduced: 2 stages of 1 block)', () => buildConvNeXt('convnext_small_test', { stages: [[32, 64, 1], [64, null, 1]], layerScale: 1e-6 }, { numClasses: K, inputSize: SIZE, seed: 1 })],
  ['vit (reduced: hidden 64, 4 heads, 2 layers, patch 8)', () => buildViT('vit_small_test', { patch: 8, layers: 2, heads: 4, hidden: 64, mlp: 128 }, { numClasses: K, inputSize: SIZE, seed: 1 })],
];

describe('new catalog families export', () => {
  it.each(CASES)('%s: fp32, fp16 and int8 exports run; fp32 gives the engine\'s logits', async (_, make) => {
    const spec = make();
    const trainer = await Trainer.create(spec.model, { loss: { kind: 'cross_entropy' }, trainable: spec.params, optimizer: { kind: 'adam' }, threads: 1 });
    for (let i = 0; i < 2; i++) await trainer.step(batchOf(4, SIZE, i), i64([4], [0, 1, 2, 3]), 0.01);
    const state = trainer.getState();
    await trainer.release();
    const params = { ...state.params, ...state.bnStats };

    const x = batchOf(2, SIZE, 7);
    // the engine's own eval forward: the model with the trained values as its initializers
    for (const [name, t] of Object.entries(params)) spec.model.graph.initializers.set(name, t);
    const engine = await createSession(spec.model, { threads: 1 });
    const reference = (await engine.run({ input: x })).logits.data as Float32Array;
    await engine.release();

    const fp32 = buildFp32Export(spec.model, params, {
      labels: Array.from({ length: K }, (_, i) => `c${i}`),
      preprocessing: preprocessingFromEval(evalPreprocessing(SIZE, spec)),
    });
    const ranges = await calibrateActivations(fp32, [{ input: x }], 1);
    const variants = { fp32, fp16: buildFp16Export(fp32), int8: buildInt8Export(fp32, { mode: 'static', ranges }) };
    const outs: Record<string, Float32Array> = {};
    for (const [k, m] of Object.entries(variants)) {
      const s = await createSession(encodeModel(m), { threads: 1 });
      outs[k] = (await s.run({ input: x }, ['logits'])).logits.data as Float32Array;
      await s.release();
    }
    expect(maxAbsDiff(outs.fp32, reference)).toBeLessThan(1e-4);
    expect(compareOutputs(outs.fp32, outs.fp16, K).cosine).toBeGreaterThan(0.99);
    // random-ish weights: only check the variants compute the same function (measured ≥ 0.9999)
    expect(compareOutputs(outs.fp32, outs.int8, K).cosine).toBeGreaterThan(0.9);
  }, 120_000);
});
