import { describe, expect, it } from 'vitest';
import { createModel, listModels } from '../../src/models/index.ts';
import { f32 } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';
import { batchOf, HEAVY_MODELS } from './helpers.ts';

// Small inputs keep the big models fast; global pooling makes every model size-agnostic.
const SIZE = (name: string) => (name === 'small_cnn' ? 32 : 64);

describe('catalog models through the runtime', () => {
  it.each(listModels().filter((n) => !HEAVY_MODELS.has(n)))('%s: forward gives [N, numClasses] finite logits', async (name) => {
    const spec = createModel(name, { numClasses: 5, inputSize: SIZE(name), seed: 3 });
    // torchvision's ViT starts its head at zero (all logits 0): give it weights to see through
    const w = spec.model.graph.initializers.get(spec.head.at(-2)!)!;
    if ((w.data as Float32Array).every((v) => v === 0)) spec.model.graph.initializers.set(spec.head.at(-2)!, f32(w.dims, Float32Array.from(w.data as Float32Array, (_, i) => Math.sin(i))));
    const session = await createSession(spec.model, { threads: 1 });
    const out = await session.run({ input: batchOf(3, SIZE(name)) });
    await session.release();
    expect(out.logits.dims).toEqual([3, 5]);
    const v = Array.from(out.logits.data as Float32Array);
    expect(v.every(Number.isFinite)).toBe(true);
    // Different images give different logits (nothing collapsed to a constant).
    expect(v.slice(0, 5)).not.toEqual(v.slice(5, 10));
  });
});
