import { describe, expect, it } from 'vitest';
import { createModel } from '../../src/models/index.ts';
import { f32, i64, type TensorData } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/models/checkpoint.ts';
import { buildEvalGraph } from '../../src/training/step-graph.ts';
import { Trainer, type TrainerState } from '../../src/training/trainer.ts';
import { expectClose, values } from './helpers.ts';

const SIZE = 16;
const CLASSES = 3;

/** Deterministic images whose class is their pattern: horizontal stripes, vertical stripes, checkerboard. */
function batchOf(labels: number[], seed: number): { x: TensorData; y: TensorData } {
  let s = seed >>> 0;
  const noise = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.2;
  const data = new Float32Array(labels.length * 3 * SIZE * SIZE);
  labels.forEach((label, n) => {
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < SIZE; i++) {
        for (let j = 0; j < SIZE; j++) {
          const on = label === 0 ? (i >> 1) % 2 : label === 1 ? (j >> 1) % 2 : ((i >> 1) + (j >> 1)) % 2;
          data[((n * 3 + c) * SIZE + i) * SIZE + j] = on - 0.5 + noise();
        }
      }
    }
  });
  return { x: f32([labels.length, 3, SIZE, SIZE], data), y: i64([labels.length], labels) };
}

const LABELS = [0, 1, 2, 0, 1, 2];
const smallCnn = () => createModel('small_cnn', { numClasses: CLASSES, inputSize: SIZE, seed: 7 });

function argmaxRows(t: TensorData): number[] {
  const [n, c] = t.dims;
  const v = values(t);
  return Array.from({ length: n }, (_, i) => {
    const row = v.slice(i * c, i * c + c);
    return row.indexOf(Math.max(...row));
  });
}

function bits(t: TensorData): number[] {
  return Array.from(new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length));
}

function expectSameState(a: TrainerState, b: TrainerState): void {
  expect(b.step).toBe(a.step);
  for (const group of ['params', 'optimizerState', 'bnStats'] as const) {
    expect(Object.keys(b[group]).sort()).toEqual(Object.keys(a[group]).sort());
    for (const k of Object.keys(a[group])) expect(bits(b[group][k]), `${group} ${k}`).toEqual(bits(a[group][k]));
  }
}

describe('Trainer', () => {
  it('overfits a tiny batch: loss → ~0 and evaluation (running BN statistics) classifies it', async () => {
    const spec = smallCnn();
    const trainer = await Trainer.create(spec.model, { loss: { kind: 'cross_entropy' }, trainable: spec.params, optimizer: { kind: 'adam' }, threads: 1 });
    const { x, y } = batchOf(LABELS, 1);
    const first = await trainer.step(x, y, 0.01);
    let last = first;
    for (let i = 0; i < 59; i++) last = await trainer.step(x, y, 0.01);
    expect(first.loss).toBeGreaterThan(0.8);
    expect(last.loss).toBeLessThan(0.02);
    expect(argmaxRows(last.logits)).toEqual(LABELS);
    expect(argmaxRows(await trainer.evaluate(x))).toEqual(LABELS);
    await trainer.release();
  });

  it('resumes from a checkpoint and continues bit-for-bit', async () => {
    const spec = smallCnn();
    const opts = { loss: { kind: 'cross_entropy' as const, labelSmoothing: 0.1 }, trainable: spec.params, optimizer: { kind: 'adamw' as const, weightDecay: 0.05 }, clipGradNorm: 1, threads: 1 };
    const batches = [1, 2, 3, 4, 5].map((seed) => batchOf(LABELS, seed));
    const a = await Trainer.create(spec.model, opts);
    for (const bt of batches.slice(0, 3)) await a.step(bt.x, bt.y, 0.005);

    const saved = a.getState();
    const file = encodeCheckpoint({ ...saved, rng: [1, 2, 3, 4], metadata: { run: 'test' } });
    const restored = decodeCheckpoint(file);
    const b = await Trainer.create(spec.model, opts);
    b.setState(restored);
    expectSameState(saved, b.getState());

    for (const bt of batches.slice(3)) {
      const ra = await a.step(bt.x, bt.y, 0.005);
      const rb = await b.step(bt.x, bt.y, 0.005);
      expect(rb.loss).toBe(ra.loss);
      expect(rb.gradNorm).toBe(ra.gradNorm);
      expect(bits(rb.logits)).toEqual(bits(ra.logits));
    }
    expectSameState(a.getState(), b.getState());
    expect(a.getState().step).toBe(5);
    await Promise.all([a.release(), b.release()]);
  });

  it('trains only the trainable set: frozen weights stay constants of the step graph', async () => {
    const spec = smallCnn();
    const trainer = await Trainer.create(spec.model, { loss: { kind: 'cross_entropy' }, trainable: spec.head, optimizer: { kind: 'sgd', momentum: 0.9 }, threads: 1 });
    const g = trainer.graph.model.graph;
    const frozen = spec.params.filter((p) => !spec.head.includes(p));
    for (const p of frozen) {
      expect(g.initializers.has(p)).toBe(true);
      expect(g.inputs.some((v) => v.name === p)).toBe(false);
    }
    expect(Object.keys(trainer.graph.params).sort()).toEqual([...spec.head].sort());
    const before = trainer.getState();
    const { x, y } = batchOf(LABELS, 9);
    await trainer.step(x, y, 0.1);
    const after = trainer.getState();
    for (const p of spec.head) expect(bits(after.params[p])).not.toEqual(bits(before.params[p]));
    // running statistics still follow the batches (the backbone runs in training mode)
    const stat = spec.bnStats[0];
    expect(bits(after.bnStats[stat])).not.toEqual(bits(before.bnStats[stat]));
    await trainer.release();
  });

  it('clips the global gradient norm before the update', async () => {
    const spec = smallCnn();
    const maxNorm = 0.01;
    const lr = 0.5;
    const trainer = await Trainer.create(spec.model, { loss: { kind: 'cross_entropy' }, trainable: spec.params, optimizer: { kind: 'sgd' }, clipGradNorm: maxNorm, threads: 1 });
    const before = trainer.getState();
    const { x, y } = batchOf(LABELS, 4);
    const r = await trainer.step(x, y, lr);
    expect(r.gradNorm).toBeGreaterThan(maxNorm * 10);
    // plain SGD moved every parameter by lr·clipped grad, so the moved distance is lr·max_norm
    const after = trainer.getState();
    let sq = 0;
    for (const p of spec.params) {
      const a = values(after.params[p]);
      values(before.params[p]).forEach((v, i) => (sq += ((v - a[i]) / lr) ** 2));
    }
    expect(Math.sqrt(sq)).toBeCloseTo(maxNorm, 4);
    await trainer.release();
  });

  it('evaluates as the standalone evaluation graph with the same weights', async () => {
    const spec = smallCnn();
    const trainer = await Trainer.create(spec.model, { loss: { kind: 'cross_entropy' }, trainable: spec.params, optimizer: { kind: 'sgd', momentum: 0.9 }, threads: 1 });
    const { x, y } = batchOf(LABELS, 3);
    await trainer.step(x, y, 0.05);
    const s = trainer.getState();
    const session = await createSession(buildEvalGraph(spec.model, { ...s.params, ...s.bnStats }), { threads: 1 });
    const out = await session.run({ input: x });
    await session.release();
    // not bit-equal: with the weights as constants onnxruntime folds batch-norm into the convs
    expectClose(values(await trainer.evaluate(x)), values(out.logits), 1e-5, 'logits');
    await trainer.release();
  });

  it('refuses a state that does not fit its graph', async () => {
    const spec = smallCnn();
    const trainer = await Trainer.create(spec.model, { loss: { kind: 'cross_entropy' }, trainable: spec.head, optimizer: { kind: 'adam' }, threads: 1 });
    const s = trainer.getState();
    const [one] = Object.keys(s.params);
    expect(() => trainer.setState({ ...s, params: { ...s.params, extra: s.params[one] } })).toThrow(/unexpected: extra/);
    const wrong = { ...s, optimizerState: { ...s.optimizerState } };
    const k = Object.keys(wrong.optimizerState)[0];
    wrong.optimizerState[k] = f32([1], [0]);
    expect(() => trainer.setState(wrong)).toThrow(/expected float32/);
    await trainer.release();
  });
});
