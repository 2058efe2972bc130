import { describe, expect, it } from 'vitest';
import { createModel } from '../../../src/models/index.ts';
import { f32 } from '../../../src/onnx/ir.ts';
import { createSession } from '../../../src/runtime/session.ts';
import regression, { type RegressionState } from '../../../src/tasks/regression/index.ts';
import { buildInferenceModel } from '../../../src/training/step-graph.ts';

const SIZE = 16;
const K = 3;

describe('regression inference graph', () => {
  it('de-standardises exactly: value = raw · std + mean, in float32', async () => {
    const spec = createModel('small_cnn', { numClasses: K, inputSize: SIZE, seed: 3 });
    // scales far apart (a tiny floored std, a large mean) so a swapped or missing term shows
    const state: RegressionState = { mean: [100, -3.5, 0.25], std: [25, 0.01, 1e-6] };
    let raw = '';
    const model = buildInferenceModel(spec.model, {}, (b, r) => {
      raw = r;
      const made = regression.appendInference(b, r, state, K);
      // the raw outputs as a second graph output, so both come from the same run
      return { primary: made.primary, outputs: [...made.outputs, { name: r, description: 'raw' }] };
    });
    expect(model.graph.outputs.map((o) => o.name)).toEqual(['value', raw]);

    const n = 5;
    let s = 11;
    const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
    const x = f32([n, 3, SIZE, SIZE], Float32Array.from({ length: n * 3 * SIZE * SIZE }, rand));
    const session = await createSession(model, { threads: 1 });
    const out = await session.run({ [session.inputNames[0]]: x });
    await session.release();

    const value = out.value.data as Float32Array;
    const r = out[raw].data as Float32Array;
    expect(out.value.dims).toEqual([n, K]);
    expect(Array.from(r).every(Number.isFinite)).toBe(true);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < K; j++) {
        // the graph's Mul then Add, each rounded to float32
        const want = Math.fround(Math.fround(r[i * K + j] * Math.fround(state.std[j])) + Math.fround(state.mean[j]));
        const got = value[i * K + j];
        expect(Math.abs(got - want), `[${i}, ${j}] got ${got}, want ${want}`).toBeLessThanOrEqual(Math.abs(want) * 2 ** -23);
      }
    }
  });

  it('names its output `value`, or a fresh name when taken', async () => {
    const spec = createModel('small_cnn', { numClasses: 1, inputSize: SIZE, seed: 1 });
    const state: RegressionState = { mean: [1], std: [2] };
    let primary = '';
    buildInferenceModel(spec.model, {}, (b, r) => {
      b.fresh('value');
      const made = regression.appendInference(b, r, state, 1);
      primary = made.primary;
      return made;
    });
    expect(primary).not.toBe('value');
    expect(primary.startsWith('value')).toBe(true);
  });
});
