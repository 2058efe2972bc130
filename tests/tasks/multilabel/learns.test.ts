import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { createModel } from '../../../src/models/index.ts';
import { f32, type TensorData } from '../../../src/onnx/ir.ts';
import { createSession } from '../../../src/runtime/session.ts';
import { HyperparametersSchema } from '../../../src/schemas/experiment.ts';
import multilabel from '../../../src/tasks/multilabel/index.ts';
import { sigmoid } from '../../../src/tasks/multilabel/metrics.ts';
import { buildInferenceModel } from '../../../src/training/step-graph.ts';
import { Trainer } from '../../../src/training/trainer.ts';

/**
 * The multi-label task learns on its own, through its loss, collate, scorer, inference graph and
 * evaluation, without the generic run loop: 32×32 images each holding a random subset of
 * {circle, square, triangle}, all drawn in the same grey on black (shape is the only cue), each
 * present shape in its own random quadrant with jitter (so position is no cue either).
 */

const SIZE = 32;
const NAMES = ['circle', 'square', 'triangle'];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

function shapeSvg(kind: number, cx: number, cy: number, r: number): string {
  const fill = 'fill="#c8c8c8"';
  if (kind === 0) return `<circle cx="${cx}" cy="${cy}" r="${r}" ${fill}/>`;
  if (kind === 1) return `<rect x="${cx - r}" y="${cy - r}" width="${2 * r}" height="${2 * r}" ${fill}/>`;
  return `<polygon points="${cx},${cy - r} ${cx + r},${cy + r} ${cx - r},${cy + r}" ${fill}/>`;
}

/** n images (normalised CHW) and their multi-hot targets; the empty set and all three shapes occur too. */
async function makeSet(n: number, seed: number): Promise<{ x: Float32Array; targets: number[][] }> {
  const rand = rng(seed);
  const x = new Float32Array(n * 3 * SIZE * SIZE);
  const targets: number[][] = [];
  for (let i = 0; i < n; i++) {
    const target = NAMES.map(() => (rand() < 0.5 ? 1 : 0));
    const quadrants = [0, 1, 2, 3].sort(() => rand() - 0.5);
    const parts = target.flatMap((on, k) => {
      if (!on) return [];
      const q = quadrants[k];
      const r = 5 + Math.floor(rand() * 2);
      const cx = (q % 2) * 16 + 8 + Math.floor(rand() * 3) - 1;
      const cy = Math.floor(q / 2) * 16 + 8 + Math.floor(rand() * 3) - 1;
      return [shapeSvg(k, cx, cy, r)];
    });
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${SIZE}" height="${SIZE}"><rect width="${SIZE}" height="${SIZE}" fill="#000"/>${parts.join('')}</svg>`;
    const png = await sharp(Buffer.from(svg)).png().toBuffer();
    const { data } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < SIZE * SIZE; p++) x[(i * 3 + c) * SIZE * SIZE + p] = data[p * 3 + c] / 255 - 0.3;
    }
    targets.push(target);
  }
  return { x, targets };
}

const batchOf = (x: Float32Array, from: number, to: number): TensorData => f32([to - from, 3, SIZE, SIZE], x.slice(from * 3 * SIZE * SIZE, to * 3 * SIZE * SIZE));

describe('multilabel task learns', () => {
  it('reaches val mAP ≥ 0.9 on shapes of several kinds per image', { timeout: 120_000 }, async () => {
    const train = await makeSet(256, 1);
    const val = await makeSet(96, 2);
    const h = HyperparametersSchema.parse({ pos_weight: 'balanced', label_smoothing: 0.05, loss: 'bce' });
    const state = multilabel.stateSchema.parse(multilabel.fitState(train.targets, NAMES, h));
    const k = NAMES.length;
    const spec = createModel('small_cnn', { numClasses: k, inputSize: SIZE, seed: 3 });
    const trainer = await Trainer.create(spec.model, { loss: multilabel.loss(h, state, k), trainable: spec.params, optimizer: { kind: 'adamw', weightDecay: 1e-4 }, threads: 2, seed: 0 });
    const batch = 32;
    const epochs = 12;
    let firstTrainLoss: number | null = null;
    let lastTrainLoss: number | null = null;
    try {
      for (let e = 0; e < epochs; e++) {
        const lr = 0.003 * 0.5 * (1 + Math.cos((Math.PI * e) / epochs));
        const scorer = multilabel.scorer(state, k);
        for (let from = 0; from < train.targets.length; from += batch) {
          const to = Math.min(from + batch, train.targets.length);
          const rows = train.targets.slice(from, to);
          const r = await trainer.step(batchOf(train.x, from, to), multilabel.collate(rows, state, k), lr);
          scorer.add(r.logits.data as Float32Array, rows);
        }
        const loss = scorer.result().loss;
        if (firstTrainLoss === null) firstTrainLoss = loss;
        lastTrainLoss = loss;
      }

      // the epoch scorer on the val logits (batch-norm in inference mode)
      const valScorer = multilabel.scorer(state, k);
      const logits = await trainer.evaluate(batchOf(val.x, 0, val.targets.length));
      valScorer.add(logits.data as Float32Array, val.targets);
      const epoch = valScorer.result();
      expect(epoch.metrics.map).toBeGreaterThanOrEqual(0.9);
      expect(epoch.metrics.micro_f1).toBeGreaterThan(0.8);
      expect(lastTrainLoss).toBeLessThan(firstTrainLoss ?? 0);

      // the exported graph's sigmoid outputs through evaluate(): the same figures
      const s = trainer.getState();
      const inference = buildInferenceModel(spec.model, { ...s.params, ...s.bnStats }, (b, raw) => multilabel.appendInference(b, raw, state, k));
      const session = await createSession(inference, { threads: 2 });
      const out = await session.run({ input: batchOf(val.x, 0, val.targets.length) });
      await session.release();
      const probs = out[inference.graph.outputs[0].name].data as Float32Array;
      const ref = Float32Array.from(logits.data as Float32Array, sigmoid);
      for (let i = 0; i < probs.length; i++) expect(Math.abs(probs[i] - ref[i])).toBeLessThan(1e-4);
      const items = val.targets.map((target, i) => ({ image_id: `img_${i}`, file: `images/${i}.png`, subset: 'val' as const, target }));
      const { aggregate } = multilabel.evaluate(probs, items, NAMES, state);
      expect(aggregate.map).toBeGreaterThanOrEqual(0.9);
      expect(Math.abs((aggregate.map ?? 0) - (epoch.metrics.map ?? 0))).toBeLessThan(1e-3);
      for (const name of NAMES) expect(aggregate.per_class[name].ap).toBeGreaterThan(0.8);
    } finally {
      await trainer.release();
    }
  });
});
