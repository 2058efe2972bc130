import { describe, expect, it } from 'vitest';
import { isAppError } from '../../src/kernel/errors.ts';
import { importOnnxBackbone, type ModelSpec } from '../../src/models/index.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { attr, f32, i64, type Attr, type Model, type TensorData } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';
import { Trainer } from '../../src/training/trainer.ts';
import { batchOf, maxAbsDiff } from './helpers.ts';

/**
 * Old op forms torch 1.13 does not write (opsets 7–8, Softmax over a non-last axis, Upsample that
 * downsamples, MXNet's 1×1-conv classifier, …), built by hand. Each upgraded graph must compute
 * what onnxruntime computes for the original file at its own opset, and train; what cannot be
 * trained is refused at import with the op, its node and the opset.
 */

/** ONNX's IR version for each opset's release. */
const IR_FOR_OPSET: Record<number, number> = { 6: 3, 7: 3, 8: 3, 9: 4, 10: 5, 11: 6, 12: 7, 18: 8, 19: 9, 20: 9 };

function seeded(n: number, seed: number, scale = 0.3): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sin(i * 1.7 + seed * 3.1) * scale;
  return out;
}

/** A graph builder whose model is stamped with an old opset. */
class Old {
  readonly b = new GraphBuilder();
  private seed = 0;
  constructor(readonly opset: number, readonly size = 8) {
    this.b.input('data', 'float32', [null, 3, size, size]);
  }
  weight(name: string, dims: number[]): string {
    return this.b.initializer(name, f32(dims, seeded(dims.reduce((a, c) => a * c, 1), ++this.seed)));
  }
  conv(x: string, cin: number, cout: number, name: string, k = 3, attrs: Record<string, Attr> = {}): string {
    const pad = (k - 1) / 2;
    return this.b.op('Conv', [x, this.weight(`${name}.w`, [cout, cin, k, k]), this.weight(`${name}.b`, [cout])],
      { kernel_shape: attr.ints([k, k]), pads: attr.ints([pad, pad, pad, pad]), ...attrs }, name);
  }
  /** GlobalAveragePool → Flatten → Gemm(classes) as the output. */
  head(x: string, width: number, classes = 3): Model {
    const f = this.b.op('Flatten', [this.b.op('GlobalAveragePool', [x])], { axis: attr.int(1) });
    const y = this.b.op('Gemm', [f, this.weight('fc.w', [classes, width]), this.weight('fc.b', [classes])], { transB: attr.int(1) }, 'fc');
    return this.model(y, classes);
  }
  model(output: string, classes: number): Model {
    this.b.output(output, 'float32', [null, classes]);
    return { ...this.b.toModel(), irVersion: IR_FOR_OPSET[this.opset] ?? 8, opsetImports: [{ domain: '', version: this.opset }] };
  }
}

async function run(model: Model, input: TensorData, inputName: string): Promise<Float32Array> {
  const s = await createSession(model, { threads: 1 });
  try {
    const out = await s.run({ [inputName]: input });
    return out[model.graph.outputs[0].name].data as Float32Array;
  } finally {
    await s.release();
  }
}

/**
 * Imports `m`, puts its own classifier back into the head and checks the result against
 * onnxruntime running `m` itself; then one training step. Returns the spec.
 */
async function checkUpgrade(m: Model, weight = 'fc.w', bias: string | null = 'fc.b'): Promise<ModelSpec> {
  const spec = importOnnxBackbone(m, { numClasses: 3 });
  expect(spec.model.opsetImports).toEqual([{ domain: '', version: 17 }]);
  const w = m.graph.initializers.get(weight)!;
  spec.model.graph.initializers.set(spec.head[0], { ...w, dims: [w.dims[0], w.data.length / w.dims[0]] });
  spec.model.graph.initializers.set(spec.head[1], bias ? m.graph.initializers.get(bias)! : f32([w.dims[0]], new Float32Array(w.dims[0])));
  const x = batchOf(2, spec.inputSize, 0.3);
  const want = await run(m, x, m.graph.inputs[0].name);
  const got = await run(spec.model, x, 'input');
  expect(maxAbsDiff(got, want), `${Array.from(got).slice(0, 6)} vs ${Array.from(want).slice(0, 6)}`).toBeLessThan(1e-5);
  const trainer = await Trainer.create(spec.model, { loss: { kind: 'cross_entropy' }, trainable: spec.params, optimizer: { kind: 'sgd' }, threads: 1 });
  try {
    expect(Number.isFinite((await trainer.step(x, i64([2], [0, 2]), 0.01)).loss)).toBe(true);
  } finally {
    await trainer.release();
  }
  return spec;
}

function refusal(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    return isAppError(e) ? { code: e.code, message: e.message } : { code: 'not an AppError', message: String(e) };
  }
  return { code: 'none', message: '' };
}

const ops = (spec: ModelSpec) => spec.model.graph.nodes.map((n) => n.opType);

describe('old op forms, built by hand', () => {
  it('opset 7, as MXNet wrote the model zoo: BN with spatial, Clip and Upsample attributes, Pad-2, Slice-1, Dropout-7, a 1×1-conv classifier', async () => {
    const o = new Old(7, 16);
    const { b } = o;
    let x = o.conv('data', 3, 8, 'conv0');
    x = b.op('BatchNormalization', [x, o.weight('bn.s', [8]), o.weight('bn.b', [8]), o.weight('bn.m', [8]), b.initializer('bn.v', f32([8], new Float32Array(8).fill(1.3)))],
      { epsilon: attr.float(1e-5), momentum: attr.float(0.9), spatial: attr.int(1) }, 'bn');
    x = b.op('Clip', [x], { min: attr.float(0), max: attr.float(0.4) }, 'relu6');
    x = b.op('Upsample', [x], { mode: attr.string('nearest'), scales: attr.floats([1, 1, 2, 2]) }, 'up');
    x = b.op('Pad', [x], { pads: attr.ints([0, 0, 1, 2, 0, 0, 2, 1]), value: attr.float(0.5) }, 'pad');
    x = b.op('Slice', [x], { starts: attr.ints([1, 3]), ends: attr.ints([-1, 1000]), axes: attr.ints([2, 3]) }, 'slice');
    x = b.op('Dropout', [x], { ratio: attr.float(0.3) }, 'drop');
    x = b.op('GlobalAveragePool', [x], {}, 'pool');
    const w = b.initializer('pred.w', f32([3, 8, 1, 1], seeded(24, 9)));
    const y = b.op('Flatten', [b.op('Conv', [x, w], { kernel_shape: attr.ints([1, 1]) }, 'pred')], { axis: attr.int(1) }, 'flatten');
    const spec = await checkUpgrade(o.model(y, 3), 'pred.w', null);
    expect(ops(spec)).toEqual(['Conv', 'BatchNormalization', 'Clip', 'Resize', 'Pad', 'Slice', 'Dropout', 'GlobalAveragePool', 'Flatten', 'Gemm']);
    const resize = spec.model.graph.nodes.find((n) => n.opType === 'Resize')!;
    expect([resize.attrs['coordinate_transformation_mode'], resize.attrs['nearest_mode']]).toEqual([attr.string('asymmetric'), attr.string('floor')]);
    expect(spec.model.graph.nodes.find((n) => n.opType === 'Dropout')!.inputs).toHaveLength(2);
  });

  it('opset 8: nearest Upsample by 3 and bilinear Upsample, Clip with only a min, MaxPool-8', async () => {
    const o = new Old(8, 8);
    const { b } = o;
    let x = o.conv('data', 3, 4, 'conv0');
    x = b.op('Upsample', [x], { mode: attr.string('nearest'), scales: attr.floats([1, 1, 3, 3]) }, 'up3');
    x = b.op('Clip', [x], { min: attr.float(-0.1) }, 'floor');
    x = b.op('Upsample', [x], { mode: attr.string('linear'), scales: attr.floats([1, 1, 2, 2]) }, 'up');
    x = b.op('MaxPool', [x], { kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) }, 'pool');
    const spec = await checkUpgrade(o.head(x, 4));
    expect(spec.model.graph.nodes.filter((n) => n.opType === 'Resize').map((n) => n.attrs['nearest_mode']?.value ?? n.attrs['mode'].value)).toEqual(['floor', 'linear']);
    expect(spec.model.graph.nodes.find((n) => n.opType === 'Clip')!.inputs.length).toBe(2);
  });

  it('opset 10: Resize-10 nearest, downsampling, and linear; ReduceSum over all axes; Split in equal parts; Squeeze/Unsqueeze with axes', async () => {
    const o = new Old(10, 16);
    const { b } = o;
    let x = o.conv('data', 3, 4, 'conv0');
    x = b.op('Resize', [x, b.initializer('s.down', f32([4], [1, 1, 0.5, 0.5]))], { mode: attr.string('nearest') }, 'down');
    x = b.op('Resize', [x, b.initializer('s.up', f32([4], [1, 1, 2, 2]))], { mode: attr.string('linear') }, 'up');
    const total = b.op('ReduceSum', [x], { keepdims: attr.int(1) }, 'sum_all');
    x = b.op('Add', [x, b.op('Mul', [total, b.initializer('eps', f32([], [1e-3]))])]);
    const [p, q] = b.opN('Split', [x], { axis: attr.int(1) }, 2, 'split');
    x = b.op('Concat', [q, b.op('Sigmoid', [p])], { axis: attr.int(1) });
    const m = b.op('ReduceMean', [x], { axes: attr.ints([2, 3]), keepdims: attr.int(0) }, 'se_mean');
    const g = b.op('Unsqueeze', [b.op('Unsqueeze', [b.op('Sigmoid', [m])], { axes: attr.ints([2]) }, 'u2')], { axes: attr.ints([3]) }, 'u3');
    x = b.op('Mul', [x, b.op('Squeeze', [b.op('Unsqueeze', [g], { axes: attr.ints([0]) }, 'u0')], { axes: attr.ints([0]) }, 'sq0')]);
    const spec = await checkUpgrade(o.head(x, 4));
    expect(spec.model.graph.nodes.filter((n) => n.opType === 'Resize').map((n) => n.attrs['nearest_mode']?.value ?? 'linear')).toEqual(['ceil', 'linear']);
    expect(spec.model.graph.nodes.find((n) => n.opType === 'ReduceSum')!.inputs).toHaveLength(1);
    expect(spec.model.graph.nodes.find((n) => n.opType === 'Split')!.inputs).toHaveLength(1);
  });

  it('opset 11: Softmax over a non-last axis is the old 2-D coercion (Flatten → Softmax → Reshape); on the last axis it stays one node', async () => {
    const o = new Old(11, 6);
    const { b } = o;
    let x = o.conv('data', 3, 4, 'conv0');
    x = b.op('Softmax', [x], { axis: attr.int(1) }, 'softmax_c');                 // over C·H·W before 13
    x = b.op('Mul', [x, b.initializer('k', f32([], [50]))]);
    x = b.op('LogSoftmax', [x], { axis: attr.int(2) }, 'logsoftmax_hw');         // over H·W
    x = b.op('Softmax', [x], { axis: attr.int(3) }, 'softmax_w');                 // the last axis: the same at 13
    x = b.op('Softmax', [x], {}, 'softmax_default');                              // axis 1 by default before 13
    const spec = await checkUpgrade(o.head(x, 4));
    expect(ops(spec).slice(0, 14)).toEqual(['Conv', 'Flatten', 'Softmax', 'Shape', 'Reshape', 'Mul', 'Flatten', 'LogSoftmax', 'Shape', 'Reshape', 'Softmax', 'Flatten', 'Softmax', 'Shape']);
    const w = spec.model.graph.nodes.find((n) => n.name === 'softmax_w')!;
    expect(w.attrs['axis']).toEqual(attr.int(-1));
  });

  it('opset 12: Dropout with ratio and training_mode inputs, Clip with min/max inputs, Pad-11 with a constant value', async () => {
    const o = new Old(12);
    const { b } = o;
    let x = o.conv('data', 3, 4, 'conv0');
    x = b.op('Clip', [x, b.initializer('lo', f32([], [-0.2])), b.initializer('hi', f32([], [0.3]))], {}, 'clip');
    x = b.op('Pad', [x, b.initializer('pads', i64([8], [0, 0, 1, 1, 0, 0, 1, 1])), b.initializer('pv', f32([], [0.7]))], { mode: attr.string('constant') }, 'pad');
    x = b.op('Dropout', [x, b.initializer('ratio', f32([], [0.2]))], {}, 'drop');
    await checkUpgrade(o.head(x, 4));
  });
});

describe('newer op forms (opsets 18–20) brought back to 17', () => {
  it('opset 18: reductions with an axes input, Split with num_outputs, Pad with axes, Resize-18, batch norm', async () => {
    const o = new Old(18, 8);
    const { b } = o;
    let x = o.conv('data', 3, 5, 'conv0');
    x = b.op('BatchNormalization', [x, o.weight('bn.s', [5]), o.weight('bn.b', [5]), o.weight('bn.m', [5]), b.initializer('bn.v', f32([5], new Float32Array(5).fill(1.2)))], {}, 'bn');
    const m = b.op('ReduceMean', [x, b.initializer('axes_hw', i64([2], [2, 3]))], { keepdims: attr.int(1) }, 'mean_hw');
    x = b.op('Mul', [x, b.op('Sigmoid', [m])]);
    x = b.op('Add', [x, b.op('ReduceMax', [x], { noop_with_empty_axes: attr.int(1) }, 'noop_max')]);
    const [p, q] = b.opN('Split', [x], { axis: attr.int(1), num_outputs: attr.int(2) }, 2, 'split_3_2');
    x = b.op('Concat', [b.op('Relu', [p]), q], { axis: attr.int(1) });
    x = b.op('Pad', [x, b.initializer('pads_hw', i64([4], [1, 0, 2, 1])), b.initializer('pv', f32([], [0.1])), b.initializer('which_axes', i64([2], [2, 3]))], {}, 'pad_axes');
    x = b.op('Resize', [x, '', b.initializer('sc', f32([4], [1, 1, 2, 2]))], { mode: attr.string('nearest'), antialias: attr.int(0), keep_aspect_ratio_policy: attr.string('stretch') }, 'resize18');
    const spec = await checkUpgrade(o.head(x, 5));
    const byName = new Map(spec.model.graph.nodes.map((n) => [n.name, n]));
    expect(byName.get('mean_hw')!.attrs['axes']).toEqual(attr.ints([2, 3]));
    expect(byName.get('noop_max')!.opType).toBe('Identity');
    expect(spec.model.graph.initializers.get(byName.get('split_3_2')!.inputs[1])!.data).toEqual(BigInt64Array.from([3n, 2n]));
    expect(byName.get('pad_axes')!.inputs).toHaveLength(3);
  });

  it('opsets 19 and 20: AveragePool with unit dilations; Gelu written out (exact and tanh)', async () => {
    const o19 = new Old(19);
    const pooled = o19.b.op('AveragePool', [o19.conv('data', 3, 4, 'conv0')], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]), dilations: attr.ints([1, 1]) }, 'avg');
    await checkUpgrade(o19.head(pooled, 4));
    const o = new Old(20);
    const { b } = o;
    let x = b.op('Gelu', [o.conv('data', 3, 4, 'conv0')], {}, 'gelu');
    x = b.op('Gelu', [o.conv(x, 4, 4, 'conv1')], { approximate: attr.string('tanh') }, 'gelu_tanh');
    const spec = await checkUpgrade(o.head(x, 4));
    expect(ops(spec)).not.toContain('Gelu');
    expect(ops(spec)).toContain('Erf');
    expect(ops(spec)).toContain('Tanh');
  });

  it('refuses what has no opset-17 form: antialiased Resize, GroupNormalization', () => {
    const o = new Old(18);
    const x = o.b.op('Resize', [o.conv('data', 3, 4, 'conv0'), '', o.b.initializer('sc', f32([4], [1, 1, 0.5, 0.5]))], { mode: attr.string('linear'), antialias: attr.int(1) }, 'aa');
    const r = refusal(() => importOnnxBackbone(o.head(x, 4), { numClasses: 2 }));
    expect([r.code, r.message]).toEqual(['UNSUPPORTED_OP', "op Resize (node 'aa') at opset 18: antialias=1 has no form at opset 17"]);
    const g = new Old(18);
    const y = g.b.op('GroupNormalization', [g.conv('data', 3, 4, 'conv0'), g.weight('gs', [2]), g.weight('gb', [2])], { num_groups: attr.int(2) }, 'gn');
    expect(refusal(() => importOnnxBackbone(g.head(y, 4), { numClasses: 2 })).message).toBe("op GroupNormalization (node 'gn') at opset 18: the op has no form at opset 17");
  });
});

describe('refused at import, naming the op, its node and the opset', () => {
  it('an opset older than 7', () => {
    const o = new Old(6);
    const r = refusal(() => importOnnxBackbone(o.head(o.conv('data', 3, 4, 'conv0'), 4), { numClasses: 2 }));
    expect(r.code).toBe('UNSUPPORTED_OP');
    expect(r.message).toContain('opset 6');
    expect(r.message).toContain('opset 7 or later');
  });

  it('an op without a gradient rule (LRN in an AlexNet-style opset-7 file)', () => {
    const o = new Old(7);
    const x = o.b.op('LRN', [o.conv('data', 3, 4, 'conv1')], { size: attr.int(3) }, 'norm1');
    const r = refusal(() => importOnnxBackbone(o.head(x, 4), { numClasses: 2 }));
    expect(r.code).toBe('UNSUPPORTED_OP');
    expect(r.message).toBe("op LRN (node 'norm1') at opset 7 cannot be trained: the engine has no gradient rule for it");
  });

  it('BatchNormalization with spatial=0 (per-activation statistics, gone from opset 9)', () => {
    const o = new Old(8);
    const { b } = o;
    const x = b.op('BatchNormalization', [o.conv('data', 3, 4, 'conv0'), o.weight('s', [4, 8, 8]), o.weight('b', [4, 8, 8]), o.weight('m', [4, 8, 8]), b.initializer('v', f32([4, 8, 8], new Float32Array(256).fill(1)))],
      { spatial: attr.int(0) }, 'bn_per_activation');
    const r = refusal(() => importOnnxBackbone(o.head(x, 4), { numClasses: 2 }));
    expect(r.code).toBe('UNSUPPORTED_OP');
    expect(r.message).toContain("op BatchNormalization (node 'bn_per_activation') at opset 8: spatial=0");
  });

  it('an op outside the default domain, and Hardmax (no gradient)', () => {
    const o = new Old(11);
    const x = o.b.op('Hardmax', [o.conv('data', 3, 4, 'conv0')], { axis: attr.int(3) }, 'hard');
    expect(refusal(() => importOnnxBackbone(o.head(x, 4), { numClasses: 2 })).message).toContain("op Hardmax (node 'hard') at opset 11 cannot be trained");
    const c = new Old(12);
    const y = c.b.op('FusedConv', [c.conv('data', 3, 4, 'conv0')], {}, 'fused');
    c.b.graph.nodes.at(-1)!.domain = 'com.microsoft';
    const m = c.head(y, 4);
    m.opsetImports.push({ domain: 'com.microsoft', version: 1 });
    const r = refusal(() => importOnnxBackbone(m, { numClasses: 2 }));
    expect(r.code).toBe('UNSUPPORTED_OP');
    expect(r.message).toContain("op com.microsoft.FusedConv (node 'fused') at opset 12 cannot be trained");
  });

  it('an op after the classifier is cut away with it, whatever it is', () => {
    const o = new Old(7);
    const { b } = o;
    const f = b.op('Flatten', [b.op('GlobalAveragePool', [o.conv('data', 3, 4, 'conv0')])], { axis: attr.int(1) });
    const y = b.op('Gemm', [f, o.weight('fc.w', [3, 4]), o.weight('fc.b', [3])], { transB: attr.int(1) }, 'fc');
    const top = b.op('Hardmax', [b.op('LRN', [b.op('Unsqueeze', [y], { axes: attr.ints([2, 3]) })], { size: attr.int(3) })], {}, 'argmaxish');
    const spec = importOnnxBackbone(o.model(top, 3), { numClasses: 2 });
    expect(ops(spec)).toEqual(['Conv', 'GlobalAveragePool', 'Flatten', 'Gemm']);
  });
});
