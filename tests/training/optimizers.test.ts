import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { f32, type TensorData } from '../../src/onnx/ir.ts';
import { inferShapes } from '../../src/onnx/shape-inference.ts';
import { createSession } from '../../src/runtime/session.ts';
import { appendGradClip, appendOptimizer, type OptimizerSpec } from '../../src/training/optimizers.ts';
import { expectClose, values } from './helpers.ts';

/** Runs one update of `spec` on params/grads/state fed as inputs; returns new params and state. */
async function runUpdate(spec: OptimizerSpec, params: Record<string, number[]>, grads: Record<string, number[]>, state: Record<string, number[]>, lr: number, step = 1, decay = true) {
  const b = new GraphBuilder();
  const feeds: Record<string, TensorData> = { lr: f32([], [lr]), step: f32([], [step]) };
  b.input('lr', 'float32', []);
  b.input('step', 'float32', []);
  const entries = Object.keys(params).map((p) => {
    const dims = [params[p].length];
    b.input(p, 'float32', dims);
    b.input(`${p}_grad`, 'float32', dims);
    feeds[p] = f32(dims, params[p]);
    feeds[`${p}_grad`] = f32(dims, grads[p]);
    return { param: p, grad: `${p}_grad`, dims, decay };
  });
  const upd = appendOptimizer(b, spec, entries, 'lr', 'step');
  for (const out of Object.values(upd.params)) b.output(out, 'float32');
  for (const s of upd.state) {
    b.output(s.out, 'float32');
    feeds[s.name] = f32(s.dims, state[s.name] ?? new Array(s.dims[0]).fill(0));
  }
  const session = await createSession(b.toModel(), { threads: 1 });
  const res = await session.run(feeds);
  await session.release();
  const newParams = Object.fromEntries(Object.entries(upd.params).map(([p, o]) => [p, values(res[o])]));
  const newState = Object.fromEntries(upd.state.map((s) => [s.name, values(res[s.out])]));
  return { params: newParams, state: newState, stateNames: upd.state.map((s) => s.name) };
}

describe('SGD', () => {
  it('plain step: p − lr·g, no state', async () => {
    const r = await runUpdate({ kind: 'sgd' }, { w: [1, -2] }, { w: [0.5, 0.25] }, {}, 0.1);
    expectClose(r.params.w, [0.95, -2.025], 1e-6, 'w');
    expect(r.stateNames).toEqual([]);
  });

  it('momentum: buf = 0.9·0.2 + 0.5 = 0.68, p = 1 − 0.1·0.68', async () => {
    const r = await runUpdate({ kind: 'sgd', momentum: 0.9 }, { w: [1] }, { w: [0.5] }, { 'w.momentum_buffer': [0.2] }, 0.1);
    expectClose(r.state['w.momentum_buffer'], [0.68], 1e-6, 'buf');
    expectClose(r.params.w, [0.932], 1e-6, 'w');
  });

  it('the first step from a zero buffer copies the gradient, as PyTorch', async () => {
    const r = await runUpdate({ kind: 'sgd', momentum: 0.9 }, { w: [1, 2] }, { w: [0.5, -1] }, {}, 0.1);
    expectClose(r.state['w.momentum_buffer'], [0.5, -1], 1e-7, 'buf');
  });

  it('Nesterov: d = g + 0.9·buf = 1.112, p = 1 − 0.1112', async () => {
    const r = await runUpdate({ kind: 'sgd', momentum: 0.9, nesterov: true }, { w: [1] }, { w: [0.5] }, { 'w.momentum_buffer': [0.2] }, 0.1);
    expectClose(r.params.w, [0.8888], 1e-6, 'w');
  });

  it('weight decay enters the gradient before momentum, and can be switched off per param', async () => {
    // g' = 0.5 + 0.1·2 = 0.7; buf = 0.9·0.2 + 0.7 = 0.88; p = 2 − 0.1·0.88 = 1.912
    const r = await runUpdate({ kind: 'sgd', momentum: 0.9, weightDecay: 0.1 }, { w: [2] }, { w: [0.5] }, { 'w.momentum_buffer': [0.2] }, 0.1);
    expectClose(r.params.w, [1.912], 1e-6, 'w');
    const off = await runUpdate({ kind: 'sgd', momentum: 0.9, weightDecay: 0.1 }, { w: [2] }, { w: [0.5] }, { 'w.momentum_buffer': [0.2] }, 0.1, 1, false);
    expectClose(off.params.w, [2 - 0.1 * 0.68], 1e-6, 'w without decay');
  });
});

describe('Adam and AdamW', () => {
  it('Adam step 1 moves every weight by lr·sign(g) after bias correction', async () => {
    const r = await runUpdate({ kind: 'adam' }, { w: [1, -1, 0.5] }, { w: [0.5, 3, -0.01] }, {}, 0.1);
    expectClose(r.params.w, [0.9, -1.1, 0.6], 5e-6, 'w');
    expectClose(r.state['w.exp_avg'], [0.05, 0.3, -0.001], 1e-6, 'm');
    expectClose(r.state['w.exp_avg_sq'], [0.00025, 0.009, 1e-7], 1e-5, 'v');
  });

  it('Adam step 3 from given moments matches the hand-computed update', async () => {
    // m = 0.9·0.1 + 0.1·0.2 = 0.11; v = 0.999·0.01 + 0.001·0.04 = 0.01003
    // p = 1 − (0.01/(1−0.9³)) · 0.11 / (sqrt(0.01003)/sqrt(1−0.999³) + 1e-8)
    const expected = 1 - (0.01 / (1 - 0.9 ** 3)) * 0.11 / (Math.sqrt(0.01003) / Math.sqrt(1 - 0.999 ** 3) + 1e-8);
    const r = await runUpdate({ kind: 'adam' }, { w: [1] }, { w: [0.2] }, { 'w.exp_avg': [0.1], 'w.exp_avg_sq': [0.01] }, 0.01, 3);
    expectClose(r.state['w.exp_avg'], [0.11], 1e-6, 'm');
    expectClose(r.state['w.exp_avg_sq'], [0.01003], 1e-6, 'v');
    expectClose(r.params.w, [expected], 1e-6, 'w');
  });

  it('Adam puts weight decay in the gradient (L2); AdamW decays the weight itself', async () => {
    const adam = await runUpdate({ kind: 'adam', weightDecay: 0.1 }, { w: [1] }, { w: [0.5] }, {}, 0.1);
    expectClose(adam.state['w.exp_avg'], [0.06], 1e-6, 'adam m uses g + wd·p');
    expectClose(adam.params.w, [0.9], 1e-6, 'adam w');
    const adamw = await runUpdate({ kind: 'adamw', weightDecay: 0.1 }, { w: [1] }, { w: [0.5] }, {}, 0.1);
    expectClose(adamw.state['w.exp_avg'], [0.05], 1e-6, 'adamw m uses g');
    // p = 1·(1 − 0.1·0.1) − 0.1 = 0.89
    expectClose(adamw.params.w, [0.89], 1e-6, 'adamw w');
  });
});

describe('gradient clipping by global norm', () => {
  async function clip(grads: number[][], maxNorm: number) {
    const b = new GraphBuilder();
    const names = grads.map((g, i) => b.input(`g${i}`, 'float32', [g.length]));
    const r = appendGradClip(b, names, maxNorm);
    r.grads.forEach((g) => b.output(g, 'float32'));
    b.output(r.totalNorm, 'float32');
    const s = await createSession(b.toModel(), { threads: 1 });
    const out = await s.run(Object.fromEntries(grads.map((g, i) => [`g${i}`, f32([g.length], g)])));
    await s.release();
    return { grads: r.grads.map((g) => values(out[g])), norm: values(out[r.totalNorm])[0] };
  }

  it('scales every gradient by max_norm / (‖g‖ + 1e-6) when the norm is larger', async () => {
    // global norm of (3, 4) and (12) = 13
    const r = await clip([[3, 4], [12]], 1);
    expectClose([r.norm], [13], 1e-6, 'norm');
    const c = 1 / (13 + 1e-6);
    expectClose(r.grads[0], [3 * c, 4 * c], 1e-6, 'g0');
    expectClose(r.grads[1], [12 * c], 1e-6, 'g1');
  });

  it('leaves gradients alone when the norm is below max_norm', async () => {
    const r = await clip([[0.3, 0.4]], 1);
    expectClose(r.grads[0], [0.3, 0.4], 1e-7, 'g0');
  });
});

describe('scalars meet each parameter at its rank', () => {
  // onnxruntime broadcasts a rank-0 scalar against [O, C, 1, 1] (1×1 conv weights) one element at
  // a time, ~70× slower than against [1, 1, 1, 1]; a scale of lower rank in the update is that case.
  const specs: OptimizerSpec[] = [
    { kind: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 1e-4 },
    { kind: 'adam', weightDecay: 1e-4 },
    { kind: 'adamw', weightDecay: 1e-2 },
  ];
  for (const spec of specs) {
    it(`${spec.kind}: every elementwise op on a [8, 4, 1, 1] weight has operands of rank 4, and the update is unchanged`, async () => {
      const dims = [8, 4, 1, 1];
      const b = new GraphBuilder();
      b.input('lr', 'float32', []);
      b.input('step', 'float32', []);
      b.input('w', 'float32', dims);
      b.input('g', 'float32', dims);
      const clipped = appendGradClip(b, ['g'], 0.5, [dims.length]);
      const upd = appendOptimizer(b, spec, [{ param: 'w', grad: clipped.grads[0], dims, decay: true }], 'lr', 'step');
      b.output(upd.params.w, 'float32');
      for (const st of upd.state) b.output(st.out, 'float32');
      const shapes = inferShapes(b.graph);
      const elementwise = b.graph.nodes.filter((n) => ['Mul', 'Add', 'Sub', 'Div'].includes(n.opType) && shapes.get(n.outputs[0])?.shape.length === 4);
      expect(elementwise.length).toBeGreaterThan(2);
      for (const n of elementwise) {
        expect(n.inputs.map((i) => shapes.get(i)?.shape.length), `${n.opType} ${n.name}`).toEqual([4, 4]);
      }
      // the same numbers as the flat parameter through the rank-0 path
      const w = Array.from({ length: 32 }, (_, i) => Math.sin(i));
      const g = Array.from({ length: 32 }, (_, i) => Math.cos(3 * i) * 0.1);
      const session = await createSession(b.toModel(), { threads: 1 });
      const feeds: Record<string, TensorData> = { lr: f32([], [0.1]), step: f32([], [1]), w: f32(dims, w), g: f32(dims, g) };
      for (const st of upd.state) feeds[st.name] = f32(dims, new Array<number>(32).fill(0.01));
      const out = values((await session.run(feeds))[upd.params.w]);
      await session.release();
      const norm = Math.hypot(...g);
      const scale = Math.min(0.5 / (norm + 1e-6), 1);
      const state = Object.fromEntries(upd.state.map((st) => [st.name.replace(/^w/, 'f'), new Array<number>(32).fill(0.01)]));
      const flat = await runUpdate(spec, { f: w }, { f: g.map((v) => v * scale) }, state, 0.1);
      expectClose(out, flat.params.f, 1e-6, 'w');
    });
  }
});
