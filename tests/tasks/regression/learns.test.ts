import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { createModel } from '../../../src/models/index.ts';
import { f32, type TensorData } from '../../../src/onnx/ir.ts';
import { createSession } from '../../../src/runtime/session.ts';
import { HyperparametersSchema } from '../../../src/schemas/experiment.ts';
import regression from '../../../src/tasks/regression/index.ts';
import { buildInferenceModel } from '../../../src/training/step-graph.ts';
import { Trainer } from '../../../src/training/trainer.ts';

/**
 * The task learns on its own, without the run loop: images of a disc whose radius is the target,
 * the task's state, loss and collate driving the Trainer, then the task's inference graph and its
 * evaluate. Val R² ≥ 0.9 is the bar.
 */

const SIZE = 32;
const NAMES = ['radius'];

/** A PCG-ish LCG: the same images every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** A disc of radius r (3…12 px) somewhere on a noisy dark background, as a PNG decoded back to CHW floats. */
async function discImage(r: number, rand: () => number): Promise<Float32Array> {
  const cx = r + rand() * (SIZE - 2 * r);
  const cy = r + rand() * (SIZE - 2 * r);
  const grey = Math.round(40 + rand() * 40);
  const fill = `rgb(${200 + Math.round(rand() * 55)},${160 + Math.round(rand() * 60)},${120 + Math.round(rand() * 80)})`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${SIZE}" height="${SIZE}"><rect width="100%" height="100%" fill="rgb(${grey},${grey},${grey})"/><circle cx="${cx.toFixed(2)}" cy="${cy.toFixed(2)}" r="${r.toFixed(2)}" fill="${fill}"/></svg>`;
  const png = await sharp(Buffer.from(svg)).png().toBuffer();
  const px = await sharp(png).removeAlpha().raw().toBuffer();
  const out = new Float32Array(3 * SIZE * SIZE);
  for (let i = 0; i < SIZE * SIZE; i++) {
    for (let c = 0; c < 3; c++) out[c * SIZE * SIZE + i] = px[i * 3 + c] / 255 - 0.5;
  }
  return out;
}

interface Samples {
  x: Float32Array[];
  y: number[][];
}

async function dataset(n: number, seed: number): Promise<Samples> {
  const rand = rng(seed);
  const x: Float32Array[] = [];
  const y: number[][] = [];
  for (let i = 0; i < n; i++) {
    const r = 3 + rand() * 9;
    x.push(await discImage(r, rand));
    y.push([r]);
  }
  return { x, y };
}

function stack(xs: readonly Float32Array[]): TensorData {
  const per = 3 * SIZE * SIZE;
  const data = new Float32Array(xs.length * per);
  xs.forEach((x, i) => data.set(x, i * per));
  return f32([xs.length, 3, SIZE, SIZE], data);
}

describe('regression learns', () => {
  let data: Promise<{ train: Samples; val: Samples }> | null = null;
  // the images are drawn once for the three losses
  const images = () => (data ??= Promise.all([dataset(192, 1), dataset(64, 2)]).then(([train, val]) => ({ train, val })));

  it.each(['mse', 'l1', 'huber'])('a disc\'s radius from its image with %s: val R² ≥ 0.9 through the task\'s loss, collate, inference graph and evaluate', async (loss) => {
    const { train, val } = await images();
    const h = HyperparametersSchema.parse({ loss, huber_delta: 1 });
    const k = NAMES.length;
    const state = regression.stateSchema.parse(regression.fitState(train.y, NAMES, h));
    expect(state.mean[0]).toBeGreaterThan(5);

    const spec = createModel('small_cnn', { numClasses: k, inputSize: SIZE, seed: 5 });
    const trainer = await Trainer.create(spec.model, { loss: regression.loss(h, state, k), trainable: spec.params, optimizer: { kind: 'adam' }, threads: 2 });
    const batch = 16;
    const order = Array.from({ length: train.x.length }, (_, i) => i);
    const shuffle = rng(3);
    const epochs = 14;
    for (let epoch = 0; epoch < epochs; epoch++) {
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(shuffle() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      // a cosine decay from 3e-3 settles the fit in few epochs
      const lr = 3e-3 * 0.5 * (1 + Math.cos((Math.PI * epoch) / epochs));
      for (let s = 0; s < order.length; s += batch) {
        const idx = order.slice(s, s + batch);
        await trainer.step(stack(idx.map((i) => train.x[i])), regression.collate(idx.map((i) => train.y[i]), state, k), lr);
      }
    }

    // the epoch scorer on the eval graph's raw outputs …
    const raw = await trainer.evaluate(stack(val.x));
    const scorer = regression.scorer(state, k);
    scorer.add(raw.data as Float32Array, val.y);
    const epoch = scorer.result();

    // … and the task's inference graph (trained weights baked in) through onnxruntime, evaluated
    const st = trainer.getState();
    await trainer.release();
    const model = buildInferenceModel(spec.model, { ...st.params, ...st.bnStats }, (b, r) => regression.appendInference(b, r, state, k));
    const session = await createSession(model, { threads: 2 });
    const out = await session.run({ [session.inputNames[0]]: stack(val.x) });
    await session.release();
    const values = out[session.outputNames[0]].data as Float32Array;
    const items = val.y.map((t, i) => ({ image_id: `img_${i}`, file: `images/${i}.png`, subset: 'val' as const, target: t }));
    const { aggregate } = regression.evaluate(values, items, NAMES, state);

    expect(aggregate.r2, JSON.stringify({ ...aggregate, scatter: undefined })).toBeGreaterThanOrEqual(0.9);
    // radii span 3…12 px: the typical error is well under a pixel
    expect(aggregate.mae!).toBeLessThan(1);
    // the scorer (eval graph, JS de-standardisation) agrees with the exported graph's evaluation
    expect(epoch.metrics.r2!).toBeCloseTo(aggregate.r2!, 3);
    expect(epoch.metrics.mae!).toBeCloseTo(aggregate.mae!, 3);
  }, 120_000);
});
