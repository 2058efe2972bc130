import { describe, expect, it } from 'vitest';
import { countParams, createModel, listModels, modelMeta, trainableSet, type ModelSpec } from '../../src/models/index.ts';
import { isAppError } from '../../src/kernel/errors.ts';
import { inferShapes } from '../../src/onnx/shape-inference.ts';
import { floats } from './helpers.ts';

// torchvision 0.14's sum(p.numel() for p in model.parameters()) (BN running stats excluded).
const TORCHVISION_PARAMS: Record<string, { 10: number; 1000: number }> = {
  resnet18: { 10: 11_181_642, 1000: 11_689_512 },
  resnet34: { 10: 21_289_802, 1000: 21_797_672 },
  resnet50: { 10: 23_528_522, 1000: 25_557_032 },
  mobilenet_v3_small: { 10: 1_528_106, 1000: 2_542_856 },
  mobilenet_v3_large: { 10: 4_214_842, 1000: 5_483_032 },
  efficientnet_b0: { 10: 4_020_358, 1000: 5_288_548 },
  // tests/fixtures/catalog/params.json (make_fixtures.py); vit_tiny_16 is torchvision's
  // VisionTransformer(224, 16, 12 layers, 3 heads, hidden 192, MLP 768)
  resnet101: { 10: 42_520_650, 1000: 44_549_160 },
  efficientnet_b1: { 10: 6_525_994, 1000: 7_794_184 },
  efficientnet_b2: { 10: 7_715_084, 1000: 9_109_994 },
  efficientnet_b3: { 10: 10_711_602, 1000: 12_233_232 },
  mobilenet_v2: { 10: 2_236_682, 1000: 3_504_872 },
  convnext_tiny: { 10: 27_827_818, 1000: 28_589_128 },
  vit_b_16: { 10: 85_806_346, 1000: 86_567_656 },
  vit_tiny_16: { 10: 5_526_346, 1000: 5_717_416 },
};
/** Families without BatchNormalization (LayerNorm only). */
const NO_BN = new Set(['convnext_tiny', 'vit_b_16', 'vit_tiny_16']);
// Our own small CNN: three conv3×3+BN stages (16, 32, 64) and a linear head.
const smallCnnParams = (k: number) => 3 * 16 * 9 + 32 + 16 * 32 * 9 + 64 + 32 * 64 * 9 + 128 + 64 * k + k;

// Built once each, when first asked for; the big ones (a second or more and over 60 MB each)
// are not kept past their own test.
const cache = new Map<string, ModelSpec>();
const spec10 = (name: string): ModelSpec => {
  const hit = cache.get(name);
  if (hit) return hit;
  const spec = createModel(name, { numClasses: 10 });
  if (countParams(spec) < 15_000_000) cache.set(name, spec);
  return spec;
};

describe('model catalog', () => {
  it('lists every family', () => {
    expect(listModels()).toEqual(expect.arrayContaining(['convnext_tiny', 'efficientnet_b0', 'efficientnet_b1', 'efficientnet_b2', 'efficientnet_b3', 'mobilenet_v2',
      'mobilenet_v3_large', 'mobilenet_v3_small', 'resnet101', 'resnet18', 'resnet34', 'resnet50', 'small_cnn', 'vit_b_16', 'vit_tiny_16']));
  });

  // One build per model (the big ones cost seconds): its graph contract and its parameter count
  // with 10 classes, and with 1000 from the head's width where building it again would be slow.
  it.each(listModels())('%s has the parameter count of its torchvision twin (10 and 1000 classes) and keeps the graph contract', (name) => {
    const spec = spec10(name);
    checkContract(name, spec);
    // A new model must state its reference count here.
    const expected = name === 'small_cnn' ? { 10: smallCnnParams(10), 1000: smallCnnParams(1000) } : TORCHVISION_PARAMS[name];
    expect(expected, `no reference parameter count for ${name}`).toBeDefined();
    expect(countParams(spec)).toBe(expected[10]);
    const features = spec.model.graph.initializers.get(spec.head.at(-2)!)!.dims[1];
    const count1000 = countParams(spec) >= 15_000_000 ? countParams(spec) + 990 * (features + 1) : countParams(createModel(name, { numClasses: 1000 }));
    expect(count1000).toBe(expected[1000]);
    expect(modelMeta(name).torchvisionParams1000).toBe(TORCHVISION_PARAMS[name]?.[1000]);
  });
});

/** The graph contract: input, logits, BN stats, blocks. */
function checkContract(name: string, spec: ModelSpec): void {
  const g = spec.model.graph;
  expect(g.inputs).toEqual([{ name: 'input', dtype: 'float32', shape: ['N', 3, spec.inputSize, spec.inputSize] }]);
  expect(g.outputs).toEqual([{ name: 'logits', dtype: 'float32', shape: ['N', 10] }]);
  expect(g.nodes.at(-1)?.outputs).toEqual(['logits']);
  expect(inferShapes(g, { strict: true }).get('logits')?.shape).toEqual(['N', 10]);
  // Blocks partition the params in graph order, the head last.
  expect(spec.blocks.flat()).toEqual(spec.params);
  expect(spec.blockNames).toHaveLength(spec.blocks.length);
  expect(spec.head).toEqual(spec.blocks.at(-1));
  expect(g.nodes.at(-1)!.inputs.slice(1)).toEqual(spec.head.slice(-2));
  // BN in inference form: 5 inputs, 1 output, running stats are the bnStats initializers.
  const bns = g.nodes.filter((n) => n.opType === 'BatchNormalization');
  if (NO_BN.has(name)) expect(bns.length).toBe(0);
  else expect(bns.length).toBeGreaterThan(0);
  expect(bns.every((n) => n.outputs.length === 1 && !('training_mode' in n.attrs))).toBe(true);
  expect(bns.flatMap((n) => n.inputs.slice(3))).toEqual(spec.bnStats);
  for (const s of spec.bnStats) expect(g.initializers.has(s)).toBe(true);
  // Every initializer is a param, a BN statistic or a dropout ratio, and every param is used.
  const used = new Set(g.nodes.flatMap((n) => n.inputs));
  for (const k of g.initializers.keys()) {
    expect(spec.params.includes(k) || spec.bnStats.includes(k) || k.endsWith('.ratio'), k).toBe(true);
    expect(used.has(k), k).toBe(true);
  }
  expect(spec.mean).toEqual([0.485, 0.456, 0.406]);
  expect(spec.std).toEqual([0.229, 0.224, 0.225]);
}

describe('model catalog details', () => {
  it('names params after torchvision state_dict keys', () => {
    const r = spec10('resnet18');
    expect(r.params.slice(0, 3)).toEqual(['conv1.weight', 'bn1.weight', 'bn1.bias']);
    expect(r.params).toContain('layer2.0.downsample.0.weight');
    expect(r.head).toEqual(['fc.weight', 'fc.bias']);
    const m = spec10('mobilenet_v3_small');
    expect(m.params).toContain('features.1.block.1.fc1.bias');
    expect(m.head).toEqual(['classifier.0.weight', 'classifier.0.bias', 'classifier.3.weight', 'classifier.3.bias']);
    expect(spec10('efficientnet_b0').head).toEqual(['classifier.1.weight', 'classifier.1.bias']);
  });

  it('uses torchvision ops: hardswish, SE with hardsigmoid(1/6, 0.5), dropout 0.2 in the classifier', () => {
    const g = spec10('mobilenet_v3_small').model.graph;
    const ops = new Set(g.nodes.map((n) => n.opType));
    expect(ops).toContain('HardSwish');
    const hs = g.nodes.find((n) => n.opType === 'HardSigmoid')!;
    expect(hs.attrs.alpha).toEqual({ kind: 'float', value: 1 / 6 });
    expect(hs.attrs.beta).toEqual({ kind: 'float', value: 0.5 });
    const drop = g.nodes.find((n) => n.opType === 'Dropout')!;
    expect(floats(g.initializers.get(drop.inputs[1])!)).toEqual([Math.fround(0.2)]);
    const bn = g.nodes.find((n) => n.opType === 'BatchNormalization')!;
    expect(bn.attrs.epsilon).toEqual({ kind: 'float', value: 0.001 });
    expect(bn.attrs.momentum).toEqual({ kind: 'float', value: 0.99 });
  });

  it('builds the new families as torchvision: ReLU6, GELU, LayerNorm, layer scale, attention, heads', () => {
    const m = spec10('mobilenet_v2');
    expect(m.head).toEqual(['classifier.1.weight', 'classifier.1.bias']);
    expect(m.params).toContain('features.1.conv.0.0.weight');
    expect(m.params).toContain('features.2.conv.3.bias');
    const clip = m.model.graph.nodes.find((n) => n.opType === 'Clip')!;
    expect(clip.inputs).toHaveLength(3);
    const drop = m.model.graph.nodes.find((n) => n.opType === 'Dropout')!;
    expect(floats(m.model.graph.initializers.get(drop.inputs[1])!)).toEqual([Math.fround(0.2)]);
    const b2 = createModel('efficientnet_b2', { numClasses: 3, inputSize: 32 }).model.graph;
    expect(floats(b2.initializers.get(b2.nodes.find((n) => n.opType === 'Dropout')!.inputs[1])!)).toEqual([Math.fround(0.3)]);
    const v = spec10('vit_tiny_16');
    expect(v.head).toEqual(['heads.head.weight', 'heads.head.bias']);
    expect(v.params.slice(0, 4)).toEqual(['conv_proj.weight', 'conv_proj.bias', 'class_token', 'encoder.pos_embedding']);
    expect(v.params).toContain('encoder.layers.encoder_layer_11.self_attention.in_proj_weight');
    expect(v.model.graph.initializers.get('encoder.layers.encoder_layer_0.self_attention.in_proj_weight')!.dims).toEqual([576, 192]);
    expect(v.model.graph.initializers.get('encoder.pos_embedding')!.dims).toEqual([1, 197, 192]);
    // torchvision zeroes the head
    expect(floats(v.model.graph.initializers.get('heads.head.weight')!).every((x) => x === 0)).toBe(true);
    const ops = new Set(v.model.graph.nodes.map((n) => n.opType));
    for (const op of ['LayerNormalization', 'Softmax', 'MatMul', 'Erf']) expect(ops).toContain(op);
    const ln = v.model.graph.nodes.find((n) => n.opType === 'LayerNormalization')!;
    expect(ln.attrs.epsilon).toEqual({ kind: 'float', value: 1e-6 });
    // another input size: a position embedding for its patches (no interpolation)
    expect(createModel('vit_tiny_16', { numClasses: 2, inputSize: 32 }).model.graph.initializers.get('encoder.pos_embedding')!.dims).toEqual([1, 5, 192]);
    expect(() => createModel('vit_tiny_16', { numClasses: 2, inputSize: 40 })).toThrow(/multiple of the patch size/);
  });

  it('initialises as torchvision: kaiming normal fan_out convs, BN 1/0, per-model linears', () => {
    const init = (model: string, name: string) => floats(spec10(model).model.graph.initializers.get(name)!);
    const rms = (a: number[]) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    const maxAbsOf = (a: number[]) => Math.max(...a.map(Math.abs));
    expect(rms(init('resnet18', 'layer3.0.conv1.weight'))).toBeCloseTo(Math.sqrt(2 / (256 * 9)), 3);
    expect(init('resnet18', 'bn1.weight').every((v) => v === 1)).toBe(true);
    expect(init('resnet18', 'bn1.bias').every((v) => v === 0)).toBe(true);
    expect(init('resnet18', 'bn1.running_var').every((v) => v === 1)).toBe(true);
    // nn.Linear's default: uniform in ±1/√fan_in.
    expect(maxAbsOf(init('resnet18', 'fc.weight'))).toBeLessThanOrEqual(1 / Math.sqrt(512));
    expect(maxAbsOf(init('resnet18', 'fc.weight'))).toBeGreaterThan(0.9 / Math.sqrt(512));
    // MobileNetV3: normal(0, 0.01), zero bias.
    expect(rms(init('mobilenet_v3_small', 'classifier.0.weight'))).toBeCloseTo(0.01, 3);
    expect(init('mobilenet_v3_small', 'classifier.0.bias').every((v) => v === 0)).toBe(true);
    // EfficientNet: uniform in ±1/√out_features.
    expect(maxAbsOf(init('efficientnet_b0', 'classifier.1.weight'))).toBeLessThanOrEqual(1 / Math.sqrt(10));
    expect(maxAbsOf(init('efficientnet_b0', 'classifier.1.weight'))).toBeGreaterThan(0.9 / Math.sqrt(10));
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const w = (seed: number) => floats(createModel('small_cnn', { numClasses: 3, seed }).model.graph.initializers.get('stages.1.0.weight')!);
    expect(w(7)).toEqual(w(7));
    expect(w(7)).not.toEqual(w(8));
  });

  it('honours inputSize and rejects unknown models and bad options', () => {
    expect(createModel('mobilenet_v3_small', { numClasses: 2, inputSize: 96 }).model.graph.inputs[0].shape).toEqual(['N', 3, 96, 96]);
    const err = (f: () => unknown) => { try { f(); } catch (e) { return isAppError(e) ? e.code : 'other'; } return 'none'; };
    expect(err(() => createModel('vgg11', { numClasses: 2 }))).toBe('NOT_FOUND');
    expect(err(() => createModel('resnet18', { numClasses: 0 }))).toBe('VALIDATION_ERROR');
    expect(err(() => createModel('resnet18', { numClasses: 2, inputSize: 8 }))).toBe('VALIDATION_ERROR');
  });

  it('chooses trainable sets: all, head, last K blocks', () => {
    const r = spec10('resnet18');
    expect(trainableSet(r, 'all')).toEqual(r.params);
    expect(trainableSet(r, 'head')).toEqual(['fc.weight', 'fc.bias']);
    const last2 = trainableSet(r, { lastBlocks: 2 });
    expect(last2[0]).toBe('layer4.1.conv1.weight');
    expect(last2.at(-1)).toBe('fc.bias');
    expect(last2).toEqual(r.params.slice(r.params.indexOf('layer4.1.conv1.weight')));
    expect(trainableSet(r, { lastBlocks: 100 })).toEqual(r.params);
    expect(r.blockNames).toEqual(['stem', 'layer1.0', 'layer1.1', 'layer2.0', 'layer2.1', 'layer3.0', 'layer3.1', 'layer4.0', 'layer4.1', 'fc']);
    expect(() => trainableSet(r, { lastBlocks: 0 })).toThrow();
  });
});
