import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/datasets/prng.ts';
import { createModel, featuresOf, importOnnxBackbone, listModels, replaceHead, type HeadBuilder } from '../../src/models/index.ts';
import { torchDefaultLinear } from '../../src/models/init.ts';
import { attr, f32, type TensorData } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';
import { Trainer } from '../../src/training/trainer.ts';
import { HEAVY_MODELS } from './helpers.ts';

/**
 * A model is a backbone and a head (timm's split): every catalog model and an imported backbone
 * name their features, and a task's own head replaces the linear one, trains and runs.
 */

/** Linear → ReLU → Linear, 16 hidden: a head of the kind a task might want. */
const mlpHead: HeadBuilder = (b, features, outputs, rng) => {
  const l1 = torchDefaultLinear(rng)(16, features.channels);
  const l2 = torchDefaultLinear(rng)(outputs, 16);
  const w1 = b.initializer('mlp.0.weight', l1.weight);
  const b1 = b.initializer('mlp.0.bias', l1.bias);
  const w2 = b.initializer('mlp.2.weight', l2.weight);
  const b2 = b.initializer('mlp.2.bias', l2.bias);
  const hidden = b.op('Relu', [b.op('Gemm', [features.value, w1, b1], { transB: attr.int(1) })]);
  return { output: b.op('Gemm', [hidden, w2, b2], { transB: attr.int(1) }), params: [w1, b1, w2, b2] };
};

describe('backbone features', () => {
  // resnet101 and vit_b_16 build in seconds and are their smaller twins' features (helpers.ts)
  it.each(listModels().filter((n) => !HEAVY_MODELS.has(n)))('%s names its features and their width (the head’s input)', (name) => {
    const spec = createModel(name, { numClasses: 3, inputSize: 64 });
    const f = featuresOf(spec);
    // the head's first linear (its parameters are in graph order) reads them: [out, channels]
    const weight = spec.model.graph.initializers.get(spec.head.find((p) => p.endsWith('weight'))!)!;
    expect(f.channels).toBe(weight.dims[1]);
    expect(spec.model.graph.nodes.some((n) => n.outputs.includes(f.value))).toBe(true);
    expect(f.channels).toBeGreaterThan(0);
  });

  it('an imported backbone too', () => {
    const src = createModel('resnet18', { numClasses: 1000, inputSize: 64 });
    const spec = importOnnxBackbone(src.model, { numClasses: 4 });
    expect(featuresOf(spec).channels).toBe(512);
  });
});

describe('a task’s own head', () => {
  it('replaces the linear head: same features, new parameters, [N, K] logits, and it trains', async () => {
    const base = createModel('small_cnn', { numClasses: 3, inputSize: 32, seed: 1 });
    const spec = replaceHead(base, mlpHead, 5, 1);
    expect(spec.head).toEqual(['mlp.0.weight', 'mlp.0.bias', 'mlp.2.weight', 'mlp.2.bias']);
    expect(spec.blocks.at(-1)).toEqual(spec.head);
    for (const p of base.head) {
      expect(spec.params).not.toContain(p);
      expect(spec.model.graph.initializers.has(p)).toBe(false);
    }
    expect(spec.params.slice(0, -4)).toEqual(base.params.filter((p) => !base.head.includes(p)));
    expect(spec.numClasses).toBe(5);
    // the same build twice gives the same weights (evaluation and export rebuild it from the seed)
    const again = replaceHead(base, mlpHead, 5, 1);
    expect(Array.from(again.model.graph.initializers.get('mlp.0.weight')!.data as Float32Array)).toEqual(Array.from(spec.model.graph.initializers.get('mlp.0.weight')!.data as Float32Array));

    const rnd = mulberry32(3);
    const x = f32([4, 3, 32, 32], Float32Array.from({ length: 4 * 3 * 32 * 32 }, () => rnd() - 0.5));
    const session = await createSession(spec.model, { threads: 1 });
    const out = await session.run({ input: x });
    await session.release();
    expect(out.logits.dims).toEqual([4, 5]);

    const trainer = await Trainer.create(spec.model, { loss: { kind: 'cross_entropy' }, trainable: spec.params, optimizer: { kind: 'sgd', momentum: 0, weightDecay: 0 }, threads: 1 });
    try {
      const target: TensorData = { dtype: 'int64', dims: [4], data: BigInt64Array.from([0n, 1n, 2n, 4n]) };
      const before = Array.from(trainer.getState().params['mlp.2.weight'].data as Float32Array);
      const r = await trainer.step(x, target, 0.1);
      expect(Number.isFinite(r.loss)).toBe(true);
      const after = Array.from(trainer.getState().params['mlp.2.weight'].data as Float32Array);
      expect(after).not.toEqual(before);
    } finally {
      await trainer.release();
    }
  });
});
