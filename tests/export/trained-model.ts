import { renderShapeImage, type Shape } from '../../src/datasets/synthetic.ts';
import { createModel, type ModelSpec } from '../../src/models/index.ts';
import { i64, type TensorData } from '../../src/onnx/ir.ts';
import type { Preprocessing } from '../../src/export/manifest.ts';
import { preprocessingFromEval } from '../../src/export/manifest.ts';
import { evalImage, evalPreprocessing } from '../../src/training/data/eval-transform.ts';
import { normalizeInto } from '../../src/training/data/tensor.ts';
import { Trainer } from '../../src/training/trainer.ts';

/**
 * A small_cnn trained for 60 steps on rendered shapes, so that its probabilities are
 * peaked (a random model's near-uniform outputs would make argmax and cosine checks meaningless).
 * At 40 steps the int8 checks sat at their thresholds: a change in the engine's float rounding (the
 * NCHWc conv kernels) moved 4 of 32 images across a decision boundary.
 */

export const SIZE = 32;
export const SHAPES: Shape[] = ['circle', 'square', 'triangle', 'cross'];
export const LABELS = ['circle', 'square', 'triangle', 'cross'];

export interface TrainedModel {
  spec: ModelSpec;
  params: Record<string, TensorData>;
  preprocessing: Preprocessing;
  /** Encoded images (PNG and JPEG, not square) and their eval-transform tensors [n,3,SIZE,SIZE]. */
  images: Buffer[];
  batch: TensorData;
  labels: number[];
}

export async function evalBatch(images: Buffer[], spec: ModelSpec): Promise<TensorData> {
  const data = new Float32Array(images.length * 3 * SIZE * SIZE);
  for (let i = 0; i < images.length; i++) normalizeInto(await evalImage(images[i], SIZE), spec, data, i * 3 * SIZE * SIZE);
  return { dtype: 'float32', dims: [images.length, 3, SIZE, SIZE], data };
}

export async function trainedSmallCnn(count = 32, steps = 60): Promise<TrainedModel> {
  const spec = createModel('small_cnn', { numClasses: SHAPES.length, inputSize: SIZE, seed: 3 });
  const labels = Array.from({ length: count }, (_, i) => i % SHAPES.length);
  const images = await Promise.all(labels.map((l, i) =>
    renderShapeImage({ shape: SHAPES[l], size: { width: 48, height: 40 }, seed: 100 + i, format: i % 3 === 0 ? 'jpeg' : 'png' })));
  const batch = await evalBatch(images, spec);
  const trainer = await Trainer.create(spec.model, { loss: { kind: 'cross_entropy' }, trainable: spec.params, optimizer: { kind: 'adam' }, threads: 1 });
  try {
    for (let s = 0; s < steps; s++) await trainer.step(batch, i64([count], labels), 0.01);
    const state = trainer.getState();
    return {
      spec,
      params: { ...state.params, ...state.bnStats },
      preprocessing: preprocessingFromEval(evalPreprocessing(SIZE, spec)),
      images,
      batch,
      labels,
    };
  } finally {
    await trainer.release();
  }
}

export function softmaxRows(logits: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length / classes; r++) {
    const row = logits.subarray(r * classes, (r + 1) * classes);
    const m = Math.max(...row);
    let s = 0;
    for (let c = 0; c < classes; c++) s += Math.exp(row[c] - m);
    for (let c = 0; c < classes; c++) out[r * classes + c] = Math.exp(row[c] - m) / s;
  }
  return out;
}

export function argmaxRows(p: ArrayLike<number>, classes: number): number[] {
  return Array.from({ length: p.length / classes }, (_, r) => {
    let best = 0;
    for (let c = 1; c < classes; c++) if (p[r * classes + c] > p[r * classes + best]) best = c;
    return best;
  });
}
