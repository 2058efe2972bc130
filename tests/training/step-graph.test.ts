import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createModel } from '../../src/models/index.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { decodeModel } from '../../src/onnx/codec.ts';
import { attr, f32, i64 } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';
import { buildEvalGraph, buildInferenceModel, buildTrainingStep } from '../../src/training/step-graph.ts';
import { fillDropoutMask, Trainer } from '../../src/training/trainer.ts';
import { expectClose, FIXTURES, values } from './helpers.ts';

const INTEROP = path.resolve(FIXTURES, '../onnx-interop');
const expectedSchema = z.object({
  input: z.object({ shape: z.array(z.number()), data: z.array(z.number()) }),
  expected_eval_output: z.object({ shape: z.array(z.number()), data: z.array(z.number()) }),
});

describe('buildTrainingStep', () => {
  it('exposes every carried value as an input with its next value as an output', () => {
    const spec = createModel('small_cnn', { numClasses: 3, inputSize: 16 });
    const before = { nodes: spec.model.graph.nodes.length, inits: spec.model.graph.initializers.size, outputs: spec.model.graph.outputs.length };
    const step = buildTrainingStep(spec.model, { loss: { kind: 'cross_entropy' }, trainable: spec.params, optimizer: { kind: 'adamw' }, clipGradNorm: 5 });
    const g = step.model.graph;
    const inputs = new Set(g.inputs.map((v) => v.name));
    const outputs = new Set(g.outputs.map((v) => v.name));
    expect(step.inputs).toEqual({ batch: 'input', target: 'target', lr: 'lr', step: 'step' });
    for (const v of [step.inputs.target, step.inputs.lr, step.inputs.step ?? '']) expect(inputs.has(v)).toBe(true);
    for (const v of [step.outputs.loss, step.outputs.logits, step.outputs.gradNorm ?? '']) expect(outputs.has(v)).toBe(true);
    expect(Object.keys(step.params)).toEqual(spec.params);
    expect(Object.keys(step.state)).toHaveLength(2 * spec.params.length);
    expect(Object.keys(step.bnStats).sort()).toEqual([...spec.bnStats].sort());
    for (const map of [step.params, step.state, step.bnStats]) {
      for (const [i, o] of Object.entries(map)) {
        expect(inputs.has(i), i).toBe(true);
        expect(outputs.has(o), o).toBe(true);
        expect(g.initializers.has(i), i).toBe(false);
      }
    }
    // the caller's model is left as it was
    expect(spec.model.graph.nodes.length).toBe(before.nodes);
    expect(spec.model.graph.initializers.size).toBe(before.inits);
    expect(spec.model.graph.outputs.length).toBe(before.outputs);
    expect(spec.model.graph.nodes.some((n) => n.attrs.training_mode)).toBe(false);
  });

  it('refuses trainable sets it cannot honour', () => {
    const spec = createModel('small_cnn', { numClasses: 3, inputSize: 16 });
    const opts = { loss: { kind: 'cross_entropy' as const }, optimizer: { kind: 'sgd' as const } };
    expect(() => buildTrainingStep(spec.model, { ...opts, trainable: [] })).toThrow(/trainable set is empty/);
    expect(() => buildTrainingStep(spec.model, { ...opts, trainable: ['nope'] })).toThrow(/'nope' is not an initializer/);
    expect(() => buildTrainingStep(spec.model, { ...opts, trainable: [spec.head[0], spec.head[0]] })).toThrow(/twice/);
    expect(() => buildTrainingStep(spec.model, { ...opts, trainable: spec.head, clipGradNorm: 0 })).toThrow(/clipGradNorm must be positive/);
  });
});

describe('dropout in the training step', () => {
  const [fin, hidden] = [8, 64];
  function mlp(readMask = false) {
    const b = new GraphBuilder();
    b.input('input', 'float32', ['batch', fin]);
    b.initializer('w1', f32([hidden, fin], Array.from({ length: hidden * fin }, (_, i) => 0.1 + (i % 7) * 0.05)));
    b.initializer('w2', f32([3, hidden], Array.from({ length: 3 * hidden }, (_, i) => ((i % 5) - 2) * 0.1)));
    b.initializer('ratio', f32([], [0.5]));
    const h = b.op('Gemm', ['input', 'w1'], { transB: attr.int(1) });
    const [y, keep] = b.opN('Dropout', [h, 'ratio'], {}, readMask ? 2 : 1);
    // y·keep = y: a reader of the mask output that changes nothing
    const z = keep ? b.op('Mul', [y, b.op('Cast', [keep], { to: attr.int(1) })]) : y;
    b.opN('Gemm', [z, 'w2'], { transB: attr.int(1) }, ['logits']);
    b.output('logits', 'float32', ['batch', 3]);
    return { b, model: b.toModel() };
  }

  it('multiplies by a fed mask, which gates the gradients', async () => {
    const { b, model } = mlp();
    const step = buildTrainingStep(model, { loss: { kind: 'cross_entropy' }, trainable: ['w1', 'w2'], optimizer: { kind: 'sgd' }, exposeGradients: true });
    const g = step.model.graph;
    expect(g.nodes.some((n) => n.opType === 'Dropout')).toBe(false);
    expect(step.dropout).toHaveLength(1);
    const [m] = step.dropout;
    expect(m.ratio).toBe(0.5);
    expect(m.dims).toEqual([{ batchAxis: 0 }, hidden]);
    expect(g.inputs.find((v) => v.name === m.input)?.shape).toEqual([null, hidden]);
    const mask = new Float32Array(hidden);
    fillDropoutMask(mask, m.ratio, 1, 1, 0);
    const session = await createSession(step.model, { threads: 1 });
    const run = (maskData: Float32Array) => session.run({
      input: f32([1, fin], new Array(fin).fill(1)), [step.inputs.target]: i64([1], [1]), [step.inputs.lr]: f32([], [0.1]),
      w1: b.graph.initializers.get('w1')!, w2: b.graph.initializers.get('w2')!, [m.input]: f32([1, hidden], maskData),
    });
    const out = await run(mask);
    const all = await run(new Float32Array(hidden).fill(2));
    await session.release();
    const grads = step.outputs.grads!;
    const dw1 = values(out[grads.w1]);
    const dw2 = values(out[grads.w2]);
    const dw1All = values(all[grads.w1]);
    const dropped = Array.from(mask, (v) => v === 0);
    const n = dropped.filter(Boolean).length;
    expect(n).toBeGreaterThan(hidden * 0.2);
    expect(n).toBeLessThan(hidden * 0.8);
    // a dropped hidden unit passes no gradient: its row of dW1 and its column of dW2 are zero
    for (let j = 0; j < hidden; j++) {
      const row = dw1.slice(j * fin, (j + 1) * fin);
      expect(row.every((v) => v === 0), `unit ${j}`).toBe(dropped[j]);
      expect([0, 1, 2].map((o) => dw2[o * hidden + j]).every((v) => v === 0), `unit ${j}`).toBe(dropped[j]);
      if (!dropped[j]) expect(row.some((v) => v !== 0)).toBe(true);
    }
    // with nothing dropped every unit passes gradient
    expect(dw1All.every((v) => v !== 0)).toBe(true);
  });

  it('rebuilds a mask output the model reads, and leaves evaluation without dropout', async () => {
    const { b, model } = mlp(true);
    const opts = { loss: { kind: 'cross_entropy' as const }, trainable: ['w2'], optimizer: { kind: 'sgd' as const } };
    const step = buildTrainingStep(model, opts);
    const plainStep = buildTrainingStep(mlp().model, opts);
    expect(step.model.graph.nodes.filter((n) => n.opType === 'Cast').map((n) => n.inputs[0])).toContain(step.dropout[0].input);
    const mask = new Float32Array(2 * hidden);
    fillDropoutMask(mask, 0.5, 2, 1, 0);
    const losses = await Promise.all([step, plainStep].map(async (st) => {
      const session = await createSession(st.model, { threads: 1 });
      const out = await session.run({
        input: f32([2, fin], Array.from({ length: 2 * fin }, (_, i) => Math.sin(i))), [st.inputs.target]: i64([2], [1, 2]),
        [st.inputs.lr]: f32([], [0.1]), w2: b.graph.initializers.get('w2')!, [st.dropout[0].input]: f32([2, hidden], mask),
      });
      await session.release();
      return values(out[st.outputs.loss])[0];
    }));
    expect(losses[0]).toBe(losses[1]);

    const plain = mlp().model;
    const evalGraph = buildEvalGraph(plain, {});
    expect(evalGraph.graph.nodes.map((n) => n.opType)).toEqual(['Gemm', 'Gemm']);
    const x = f32([2, fin], Array.from({ length: 2 * fin }, (_, i) => Math.cos(i)));
    const [withDrop, without] = await Promise.all([createSession(plain, { threads: 1 }), createSession(evalGraph, { threads: 1 })]);
    expect(values((await without.run({ input: x })).logits)).toEqual(values((await withDrop.run({ input: x })).logits));
    await Promise.all([withDrop.release(), without.release()]);
  });
});

describe('a model exported by torch.onnx.export in training mode (opset 13)', () => {
  const bytes = readFileSync(path.join(INTEROP, 'tiny_cnn_train_opset13.onnx'));
  const fx = expectedSchema.parse(JSON.parse(readFileSync(path.join(INTEROP, 'tiny_cnn_train_opset13.expected.json'), 'utf8')));
  const input = f32(fx.input.shape, fx.input.data);

  it('evaluates as PyTorch in eval mode', async () => {
    const session = await createSession(buildEvalGraph(decodeModel(bytes), {}), { threads: 1 });
    const out = await session.run({ input });
    await session.release();
    expectClose(values(out.logits), fx.expected_eval_output.data, 1e-4, 'logits');
  });

  it('trains: the loss falls over a few SGD steps', async () => {
    const model = decodeModel(bytes);
    const trainable = [...model.graph.initializers.keys()].filter((k) => !/running_(mean|var)$/.test(k));
    const trainer = await Trainer.create(model, { loss: { kind: 'cross_entropy' }, trainable, optimizer: { kind: 'sgd', momentum: 0.9 }, threads: 1 });
    expect(Object.keys(trainer.graph.bnStats)).toHaveLength(6);
    const target = i64([2], [0, 2]);
    const losses: number[] = [];
    for (let i = 0; i < 8; i++) losses.push((await trainer.step(input, target, 0.05)).loss);
    expect(losses[7]).toBeLessThan(losses[0] * 0.5);
    await trainer.release();
  });
});

describe('buildInferenceModel', () => {
  it('bakes the weights, folds batch-norm and outputs the softmax of the evaluation logits', async () => {
    const spec = createModel('small_cnn', { numClasses: 4, inputSize: 16, seed: 3 });
    const trainer = await Trainer.create(spec.model, { loss: { kind: 'cross_entropy' }, trainable: spec.params, optimizer: { kind: 'sgd', momentum: 0.9 }, threads: 1 });
    const x = f32([2, 3, 16, 16], Array.from({ length: 2 * 3 * 16 * 16 }, (_, i) => Math.sin(i * 0.37)));
    for (let i = 0; i < 3; i++) await trainer.step(x, i64([2], [1, 3]), 0.1);
    const s = trainer.getState();
    const logits = values(await trainer.evaluate(x));
    await trainer.release();

    const inference = buildInferenceModel(spec.model, { ...s.params, ...s.bnStats });
    const g = inference.graph;
    expect(g.inputs.map((v) => v.name)).toEqual(['input']);
    expect(g.outputs.map((v) => v.name)).toEqual(['probabilities']);
    expect(g.nodes.some((n) => n.opType === 'BatchNormalization')).toBe(false);
    const session = await createSession(inference, { threads: 1 });
    const out = await session.run({ input: x });
    await session.release();
    const probs = values(out.probabilities);
    const expected = [0, 1].flatMap((n) => {
      const row = logits.slice(n * 4, n * 4 + 4);
      const m = Math.max(...row);
      const e = row.map((v) => Math.exp(v - m));
      const z = e.reduce((a, v) => a + v, 0);
      return e.map((v) => v / z);
    });
    expectClose(probs, expected, 1e-5, 'probabilities');
  });
});
