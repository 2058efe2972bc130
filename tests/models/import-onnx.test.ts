import { describe, expect, it } from 'vitest';
import { isAppError } from '../../src/kernel/errors.ts';
import { countParams, createModel, importOnnxBackbone, importOnnxBytes, type ModelSpec } from '../../src/models/index.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { decodeModel } from '../../src/onnx/codec.ts';
import { attr, f32, type TensorData } from '../../src/onnx/ir.ts';
import { inferShapes } from '../../src/onnx/shape-inference.ts';
import { createSession } from '../../src/runtime/session.ts';
import { batchOf, floats, interop, maxAbs, maxAbsDiff } from './helpers.ts';

async function forward(spec: ModelSpec, input: TensorData): Promise<TensorData> {
  const s = await createSession(spec.model, { threads: 1 });
  try {
    return (await s.run({ input })).logits;
  } finally {
    await s.release();
  }
}

/** Puts the source model's own classifier weights into the new head: the import must then be lossless. */
function restoreClassifier(spec: ModelSpec, bytes: Uint8Array, weight: string, bias: string): void {
  const src = decodeModel(bytes).graph.initializers;
  spec.model.graph.initializers.set(spec.head[0], src.get(weight)!);
  spec.model.graph.initializers.set(spec.head[1], src.get(bias)!);
}

function checkSpec(spec: ModelSpec, numClasses: number, width: number): void {
  const g = spec.model.graph;
  expect(g.inputs.map((v) => v.name)).toEqual(['input']);
  expect(g.inputs[0].shape?.[0]).toBe('N');
  expect(g.outputs).toEqual([{ name: 'logits', dtype: 'float32', shape: ['N', numClasses] }]);
  expect(inferShapes(g).get('logits')?.shape).toEqual(['N', numClasses]);
  expect(spec.head).toEqual(['head.weight', 'head.bias']);
  expect(g.initializers.get('head.weight')!.dims).toEqual([numClasses, width]);
  expect(spec.blocks.flat()).toEqual(spec.params);
  expect(spec.blocks.at(-1)).toEqual(spec.head);
  expect(spec.blockNames.at(-1)).toBe('head');
  // Every node input is produced by a node, an initializer or the input; no Identity left on weights.
  const known = new Set<string>(['input', ...g.initializers.keys(), ...g.nodes.flatMap((n) => n.outputs)]);
  for (const n of g.nodes) for (const i of n.inputs) if (i) expect(known.has(i), `${n.name} reads ${i}`).toBe(true);
  const used = new Set(g.nodes.flatMap((n) => n.inputs));
  for (const k of g.initializers.keys()) expect(used.has(k), k).toBe(true);
  for (const p of spec.params) expect(g.initializers.get(p)?.dtype).toBe('float32');
  expect(new Set(spec.params).size).toBe(spec.params.length);
}

describe('import an external ONNX backbone', () => {
  it('imports torchvision MobileNetV3-Small (inference export, BN folded) with a new head', async () => {
    const fx = interop('mobilenet_v3_small_eval_opset13');
    const spec = importOnnxBytes(fx.bytes, { numClasses: 4, name: 'mnv3s' });
    checkSpec(spec, 4, 1024);
    expect(spec.name).toBe('mnv3s');
    expect(spec.inputSize).toBe(224);
    expect(spec.mean).toEqual([0.485, 0.456, 0.406]);
    expect(spec.bnStats).toEqual([]);
    const g = spec.model.graph;
    expect(g.nodes.filter((n) => n.opType === 'Identity')).toEqual([]);
    // 52 convs (weight + folded bias each), classifier.0, and the new head.
    expect(spec.params.length).toBe(52 * 2 + 2 + 2);
    expect(spec.params).toContain('classifier.0.weight');
    expect(spec.blockNames).toEqual([...Array.from({ length: 13 }, (_, i) => `features.${i}`), 'classifier.0', 'head']);
    // The old classifier (1024→10) is gone, the new one is 1024→4.
    expect(g.initializers.has('classifier.3.weight')).toBe(false);
    expect(countParams(spec, spec.head)).toBe(1024 * 4 + 4);
    expect(spec.model.opsetImports.find((o) => o.domain === '')?.version).toBe(17);

    const out = await forward(spec, batchOf(3, 224));
    expect(out.dims).toEqual([3, 4]);
    expect(Array.from(out.data as Float32Array).every(Number.isFinite)).toBe(true);
  });

  it('keeps the backbone exact: with the old classifier put back it gives PyTorch\'s output', async () => {
    const fx = interop('mobilenet_v3_small_eval_opset13');
    const spec = importOnnxBytes(fx.bytes, { numClasses: 10 });
    restoreClassifier(spec, fx.bytes, 'classifier.3.weight', 'classifier.3.bias');
    const out = await forward(spec, fx.input);
    const scale = maxAbs(fx.expected.data as Float32Array);
    expect(maxAbsDiff(out.data as Float32Array, fx.expected.data as Float32Array) / scale).toBeLessThan(1e-4);
  });

  it('imports a training export (BN kept, static batch 2): BN in inference form, any batch size', async () => {
    const fx = interop('tiny_cnn_train_opset13');
    const spec = importOnnxBytes(fx.bytes, { numClasses: 7 });
    checkSpec(spec, 7, 32);
    expect(spec.inputSize).toBe(32);
    const bns = spec.model.graph.nodes.filter((n) => n.opType === 'BatchNormalization');
    expect(bns.map((n) => n.outputs.length)).toEqual([1, 1, 1]);
    expect(spec.bnStats).toEqual(['features.1.running_mean', 'features.1.running_var', 'features.4.running_mean', 'features.4.running_var', 'features.7.running_mean', 'features.7.running_var']);
    expect(spec.blocks).toEqual([
      ['features.0.weight', 'features.1.weight', 'features.1.bias'],
      ['features.3.weight', 'features.4.weight', 'features.4.bias'],
      ['features.6.weight', 'features.7.weight', 'features.7.bias'],
      ['head.weight', 'head.bias'],
    ]);
    expect((await forward(spec, batchOf(5, 32))).dims).toEqual([5, 7]);

    const exact = importOnnxBytes(fx.bytes, { numClasses: 3 });
    restoreClassifier(exact, fx.bytes, 'classifier.weight', 'classifier.bias');
    const out = await forward(exact, fx.input);
    expect(maxAbsDiff(out.data as Float32Array, fx.expected.data as Float32Array)).toBeLessThan(1e-5);
  });

  it('gives the head a fresh, seeded initialisation', () => {
    const fx = interop('tiny_cnn_eval_opset17');
    const w = (seed: number) => floats(importOnnxBytes(fx.bytes, { numClasses: 2, seed }).model.graph.initializers.get('head.weight')!);
    const a = w(1);
    expect(a).toEqual(w(1));
    expect(a).not.toEqual(w(2));
    expect(maxAbs(a)).toBeLessThanOrEqual(1 / Math.sqrt(32));
  });

  it('re-imports a catalog model and reads its normalisation from metadata_props', () => {
    const src = createModel('small_cnn', { numClasses: 10, inputSize: 48 });
    src.model.metadata['studio.mean'] = '[0.5, 0.5, 0.5]';
    src.model.metadata['studio.std'] = '127.5 127.5 127.5';
    const spec = importOnnxBackbone(src.model, { numClasses: 3 });
    expect(spec.mean).toEqual([0.5, 0.5, 0.5]);
    expect(spec.std).toEqual([0.5, 0.5, 0.5]);
    expect(spec.inputSize).toBe(48);
    expect(spec.params).toEqual([...src.params.slice(0, -2), 'head.weight', 'head.bias']);
    expect(spec.bnStats).toEqual(src.bnStats);
    expect(spec.blocks.slice(0, -1)).toEqual(src.blocks.slice(0, -1));
    // The source model is left untouched.
    expect(src.model.graph.outputs[0].shape).toEqual(['N', 10]);
    expect(src.model.graph.initializers.has('head.weight')).toBe(true);
  });

  it('cuts a MatMul+Add classifier and whatever follows it (softmax); Constant weights train', () => {
    const b = new GraphBuilder();
    b.input('images', 'float32', [null, 3, 8, 8]);
    const w = b.op('Constant', [], { value: attr.tensor(f32([6, 3, 1, 1], new Float32Array(18).fill(0.1))) });
    const feats = b.op('Flatten', [b.op('GlobalAveragePool', [b.op('Conv', ['images', w], { kernel_shape: attr.ints([1, 1]) })])], { axis: attr.int(1) });
    const fcw = b.initializer('fc.w', f32([6, 5], new Float32Array(30)));
    const fcb = b.initializer('fc.b', f32([5], new Float32Array(5)));
    const probs = b.op('Softmax', [b.op('Add', [b.op('MatMul', [feats, fcw]), fcb])]);
    b.output(probs, 'float32', [null, 5]);
    const spec = importOnnxBackbone(b.toModel({ mean: '123.675,116.28,103.53' }), { numClasses: 2 });
    checkSpec(spec, 2, 6);
    expect(spec.params).toEqual([w, 'head.weight', 'head.bias']);
    expect(spec.model.graph.nodes.map((n) => n.opType)).toEqual(['Conv', 'GlobalAveragePool', 'Flatten', 'Gemm']);
    expect(spec.inputSize).toBe(8);
    expect(spec.mean.map((v) => Math.round(v * 1000) / 1000)).toEqual([0.485, 0.456, 0.406]);
  });

  it('fixes spatial dims the file leaves free to its input size, so the gradient rules see static shapes', async () => {
    const b = new GraphBuilder();
    b.input('x', 'float32', ['batch', 3, 'height', 'width']);
    const w = b.initializer('conv.w', f32([4, 3, 3, 3], new Float32Array(108).fill(0.05)));
    const feats = b.op('Flatten', [b.op('GlobalAveragePool', [b.op('Conv', ['x', w], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) })])], { axis: attr.int(1) });
    b.output(b.op('Gemm', [feats, b.initializer('fc.w', f32([2, 4], new Float32Array(8))), b.initializer('fc.b', f32([2], new Float32Array(2)))], { transB: attr.int(1) }), 'float32', ['batch', 2]);
    const spec = importOnnxBackbone(b.toModel({ 'studio.input_size': '40' }), { numClasses: 3 });
    expect(spec.inputSize).toBe(40);
    expect(spec.model.graph.inputs[0].shape).toEqual(['N', 3, 40, 40]);
    expect((await forward(spec, batchOf(2, 40))).dims).toEqual([2, 3]);
  });

  it('refuses models it cannot use, with BAD_INPUT', () => {
    const code = (f: () => unknown) => { try { f(); } catch (e) { return isAppError(e) ? e.code : String(e); } return 'none'; };
    const noHead = new GraphBuilder();
    noHead.input('x', 'float32', ['N', 3, 8, 8]);
    noHead.output(noHead.op('Flatten', [noHead.op('GlobalAveragePool', ['x'])]), 'float32');
    expect(code(() => importOnnxBackbone(noHead.toModel(), { numClasses: 2 }))).toBe('BAD_INPUT');
    const gray = new GraphBuilder();
    gray.input('x', 'float32', ['N', 1, 8, 8]);
    gray.output(gray.op('Flatten', [gray.op('GlobalAveragePool', ['x'])]), 'float32');
    expect(code(() => importOnnxBackbone(gray.toModel(), { numClasses: 2 }))).toBe('BAD_INPUT');
    expect(code(() => importOnnxBytes(new Uint8Array([1, 2, 3, 4]), { numClasses: 2 }))).toBe('BAD_INPUT');
    expect(code(() => importOnnxBytes(interop('tiny_cnn_eval_opset17').bytes, { numClasses: 0 }))).toBe('BAD_INPUT');
  });
});
