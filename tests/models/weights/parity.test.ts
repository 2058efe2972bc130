import { describe, expect, it } from 'vitest';
import { createModel, modelMeta } from '../../../src/models/index.ts';
import { applyWeights, matchWeights, readWeightsFile, type LoadedTensor } from '../../../src/models/weights/index.ts';
import { f32 } from '../../../src/onnx/ir.ts';
import { createSession } from '../../../src/runtime/session.ts';
import { fixtureBytes, fixtureInput, fixtureLogits, fixtureNames } from './fixtures.ts';

/**
 * Random weights saved by PyTorch (tests/fixtures/weights/make_fixtures.py) load into our catalog
 * graphs and give PyTorch's eval-mode logits: torchvision's .pth names for every family, timm's
 * names in a .safetensors for the families whose names differ.
 */

async function logitsWith(model: string, numClasses: number, tensors: Map<string, LoadedTensor>) {
  const spec = createModel(model, { numClasses, inputSize: 64 });
  const m = matchWeights(spec, modelMeta(model).family, tensors);
  applyWeights(spec, m.values);
  const session = await createSession(spec.model, { threads: 1 });
  try {
    const out = await session.run({ input: f32([2, 3, 64, 64], fixtureInput()) });
    return { logits: out.logits.data as Float32Array, dims: out.logits.dims, match: m };
  } finally {
    await session.release();
  }
}

function relErr(a: Float32Array, b: number[]): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

describe('pretrained weights give PyTorch\'s logits', () => {
  it.each(['resnet18', 'resnet50', 'mobilenet_v3_small', 'mobilenet_v3_large', 'efficientnet_b0'])('%s from a torchvision .pth', async (model) => {
    const r = readWeightsFile(fixtureBytes(`${model}.pth`));
    const want = fixtureLogits(model);
    const got = await logitsWith(model, 1000, r.tensors);
    expect(got.match.skipped).toEqual([]);
    expect(got.match.missing).toEqual([]);
    expect(got.dims).toEqual(want.dims);
    // The weights are float16/bfloat16/float32 values in both; PyTorch computed in float32.
    expect(relErr(got.logits, want.logits)).toBeLessThan(1e-4);
  });

  it.each(['mobilenet_v3_small', 'efficientnet_b0'])('%s from a .safetensors with timm\'s names', async (model) => {
    const r = readWeightsFile(fixtureBytes(`${model}_timm.safetensors`));
    expect(r.format).toBe('safetensors');
    expect(r.tensors.has('conv_stem.weight')).toBe(true);
    const want = fixtureLogits(`${model}_timm`);
    const got = await logitsWith(model, 10, r.tensors);
    expect(got.match.skipped).toEqual([]);
    expect(got.match.missing).toEqual([]);
    expect(relErr(got.logits, want.logits)).toBeLessThan(1e-4);
  });

  it('a 1000-class file in a 5-class model: every tensor but the head loads, the head is reported', async () => {
    const r = readWeightsFile(fixtureBytes('resnet18.pth'));
    const spec = createModel('resnet18', { numClasses: 5, inputSize: 64 });
    const fresh = spec.model.graph.initializers.get('fc.weight')!;
    const m = matchWeights(spec, 'resnet', r.tensors);
    expect(m.skipped.map((s) => s.name)).toEqual(['fc.weight', 'fc.bias']);
    expect(m.skipped[0].reason).toBe('shape [1000, 512] does not fit the model\'s [5, 512]: the classifier head is re-initialised for 5 outputs');
    expect(m.missing).toEqual(['fc.weight', 'fc.bias']);
    expect(applyWeights(spec, m.values)).toBe(100);
    expect(spec.model.graph.initializers.get('fc.weight')).toBe(fresh);
  });

  it('a file of another family loads nothing and says why', () => {
    const r = readWeightsFile(fixtureBytes('mobilenet_v3_small.pth'));
    const m = matchWeights(createModel('resnet18', { numClasses: 10, inputSize: 64 }), 'resnet', r.tensors);
    expect(m.values.size).toBe(0);
    expect(m.skipped[0].reason).toBe('resnet18 has no parameter of this name');
  });
});

describe('name mapping, every catalog model', () => {
  const names = fixtureNames();
  it.each(Object.keys(names))('%s: torchvision\'s names and timm\'s names cover the graph with the same shapes', (model) => {
    const spec = createModel(model, { numClasses: 1000, inputSize: 64 });
    const family = modelMeta(model).family;
    for (const source of ['torchvision', 'timm'] as const) {
      const tensors = new Map(Object.entries(names[model][source]).map(([k, dims]) => [k, { dims, data: new Float32Array(dims.reduce((a, d) => a * d, 1)) }]));
      const m = matchWeights(spec, family, tensors);
      expect(m.missing, source).toEqual([]);
      // Only the integer counters are left over (the reader skips them before matching).
      expect(m.skipped.filter((s) => !s.name.includes('num_batches_tracked')), source).toEqual([]);
    }
  });
});
