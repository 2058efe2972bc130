import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPredictor, flipHorizontal, runEvaluation, selectItems, topK, type EvalItem, type EvaluationOutput } from '../../src/evaluation/run-evaluation.ts';
import { createSession } from '../../src/runtime/session.ts';
import type { DatasetFile } from '../../src/schemas/dataset.ts';
import { evalTransform, loadBatches } from '../../src/training/data/loader.ts';
import { buildEvalGraph } from '../../src/training/step-graph.ts';
import { LABELS, SIZE, softmaxRows, trainedSmallCnn, type TrainedModel } from '../export/trained-model.ts';

/**
 * The evaluation engine on a small_cnn trained for a few dozen steps: its probabilities come from
 * the exported inference graph (batch-norm folded, softmax) and must match the eval graph's; broken
 * files are reported and skipped; every stored number can be recomputed from the records.
 */

let dir: string;
let trained: TrainedModel;
let items: EvalItem[];
let out: EvaluationOutput;
const norm = () => ({ mean: trained.spec.mean, std: trained.spec.std });

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-eval-'));
  trained = await trainedSmallCnn(32, 40);
  items = [];
  for (const [i, bytes] of trained.images.entries()) {
    const file = `images/${i.toString(16).padStart(16, '0')}.png`;
    await fs.mkdir(path.join(dir, 'images'), { recursive: true });
    await fs.writeFile(path.join(dir, file), bytes);
    items.push({ image_id: `img-${i.toString().padStart(8, '0')}`, file, path: path.join(dir, file), subset: i % 2 ? 'test' : 'val', labelIndex: trained.labels[i] });
  }
  out = await runEvaluation({ model: trained.spec.model, params: trained.params, labels: LABELS, items, size: SIZE, normalization: norm(), batchSize: 5, tta: false, threads: 1 });
}, 120_000);
afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('runEvaluation', () => {
  it('predicts like the eval graph on every image: same argmax, probabilities within 1e-5', async () => {
    expect(out.records).toHaveLength(items.length);
    expect(out.records.map((r) => r.image_id)).toEqual(items.map((i) => i.image_id));
    const evalModel = buildEvalGraph(trained.spec.model, trained.params);
    const session = await createSession(evalModel, { threads: 1 });
    try {
      const c = LABELS.length;
      let checked = 0;
      for await (const b of loadBatches({ items: items.map((it) => ({ path: it.path, labelIndex: it.labelIndex, id: it.image_id })), batchSize: 7, size: SIZE, normalization: norm(), transform: evalTransform(SIZE), seed: 0, epoch: 0, shuffle: false, dropLast: false })) {
        const n = b.indices.length;
        const res = await session.run({ [evalModel.graph.inputs[0].name]: { dtype: 'float32', dims: [n, 3, SIZE, SIZE], data: b.input } });
        const probs = softmaxRows(res[evalModel.graph.outputs[0].name].data as Float32Array, c);
        b.indices.forEach((index, slot) => {
          const ours = out.probs.subarray(index * c, (index + 1) * c);
          const theirs = probs.subarray(slot * c, (slot + 1) * c);
          for (let k = 0; k < c; k++) expect(Math.abs(ours[k] - theirs[k])).toBeLessThan(1e-5);
          const argmax = theirs.indexOf(Math.max(...theirs));
          expect(out.records[index].predicted).toBe(LABELS[argmax]);
          checked++;
        });
      }
      expect(checked).toBe(items.length);
    } finally {
      await session.release();
    }
    // The model was trained on these images: a useless checkpoint would make the agreement trivial.
    expect(out.aggregate.accuracy).toBeGreaterThan(0.5);
  });

  it('stores metrics that agree with an independent recomputation from the records', () => {
    const c = LABELS.length;
    const n = out.records.length;
    const m = Array.from({ length: c }, () => new Array<number>(c).fill(0));
    let logLoss = 0;
    for (const r of out.records) {
      m[LABELS.indexOf(r.label)][LABELS.indexOf(r.predicted)] += 1;
      expect(r.correct).toBe(r.label === r.predicted);
      expect(r.top_k).toHaveLength(c);
      expect(r.top_k[0]).toEqual({ label: r.predicted, score: r.confidence });
      for (let k = 1; k < r.top_k.length; k++) expect(r.top_k[k].score).toBeLessThanOrEqual(r.top_k[k - 1].score);
      expect(r.top_k.reduce((s, t) => s + t.score, 0)).toBeCloseTo(1, 5);
      const pTrue = r.top_k.find((t) => t.label === r.label)!.score;
      logLoss -= Math.log(Math.max(pTrue, 1e-15));
    }
    const a = out.aggregate;
    expect(a.confusion_matrix.matrix).toEqual(m);
    expect(a.accuracy).toBeCloseTo(out.records.filter((r) => r.correct).length / n, 12);
    // macro F1: per-class F1 = 2·tp / (2·tp + fp + fn), averaged over the classes
    let f1Sum = 0;
    for (let k = 0; k < c; k++) {
      const tp = m[k][k];
      const fn = m[k].reduce((s, v) => s + v, 0) - tp;
      const fp = m.reduce((s, row) => s + row[k], 0) - tp;
      const f1 = 2 * tp + fp + fn === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
      expect(a.per_class[LABELS[k]].f1).toBeCloseTo(f1, 12);
      expect(a.per_class[LABELS[k]].support).toBe(tp + fn);
      f1Sum += f1;
    }
    expect(a.macro.f1).toBeCloseTo(f1Sum / c, 12);
    expect(a.log_loss).toBeCloseTo(logLoss / n, 5);
    expect(a.top_k['3']).toBeGreaterThanOrEqual(a.accuracy);
  });

  it('reports unreadable and missing images and evaluates the rest', async () => {
    const broken = path.join(dir, 'images', 'broken.png');
    await fs.writeFile(broken, Buffer.from('this is not an image'));
    const withBad: EvalItem[] = [
      ...items.slice(0, 6),
      { image_id: 'img-broken00', file: 'images/broken.png', path: broken, subset: 'test', labelIndex: 0 },
      { image_id: 'img-missing0', file: 'images/missing.png', path: path.join(dir, 'images', 'missing.png'), subset: 'test', labelIndex: 1 },
    ];
    const progress: number[] = [];
    const res = await runEvaluation({
      model: trained.spec.model, params: trained.params, labels: LABELS, items: withBad, size: SIZE, normalization: norm(), batchSize: 4, tta: false, threads: 1,
      onProgress: (done, total) => progress.push(done / total),
    });
    expect(res.records.map((r) => r.image_id)).toEqual(items.slice(0, 6).map((i) => i.image_id));
    expect(res.problems.map((p) => p.image_id).sort()).toEqual(['img-broken00', 'img-missing0']);
    expect(res.problems.find((p) => p.image_id === 'img-missing0')?.file).toBe('images/missing.png');
    expect(progress.at(-1)).toBe(1);
    // the six good images get the same predictions as in the full run
    for (const [i, r] of res.records.entries()) expect(r.top_k).toEqual(out.records[i].top_k);
  });

  it('with TTA averages the probabilities of each image and its mirror', async () => {
    const some = items.slice(0, 8);
    const tta = await runEvaluation({ model: trained.spec.model, params: trained.params, labels: LABELS, items: some, size: SIZE, normalization: norm(), batchSize: 8, tta: true, threads: 1 });
    const predictor = await createPredictor(trained.spec.model, trained.params, { threads: 1 });
    try {
      const batches = [];
      for await (const b of loadBatches({ items: some.map((it) => ({ path: it.path, labelIndex: it.labelIndex, id: it.image_id })), batchSize: 8, size: SIZE, normalization: norm(), transform: evalTransform(SIZE), seed: 0, epoch: 0, shuffle: false, dropLast: false })) batches.push(b);
      expect(batches).toHaveLength(1);
      const x = batches[0].input;
      const plain = await predictor.predict(x, 8, SIZE);
      const mirrored = await predictor.predict(flipHorizontal(x, 8, SIZE), 8, SIZE);
      for (let j = 0; j < plain.length; j++) expect(tta.probs[j]).toBeCloseTo((plain[j] + mirrored[j]) / 2, 6);
      // the mirror really is a different input (the shapes are not symmetric in position)
      expect(plain.some((p, j) => Math.abs(p - mirrored[j]) > 1e-4)).toBe(true);
    } finally {
      await predictor.release();
    }
  });
});

describe('engine helpers', () => {
  it('flipHorizontal reverses the last axis of each row, and twice is the identity', () => {
    const x = Float32Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => i);
    const f = flipHorizontal(x, 2, 2);
    expect(Array.from(f.subarray(0, 4))).toEqual([1, 0, 3, 2]);
    expect(Array.from(flipHorizontal(f, 2, 2))).toEqual(Array.from(x));
  });

  it('topK orders by score, ties to the lower class, and caps at the class count', () => {
    expect(topK([0.2, 0.5, 0.2, 0.1], ['a', 'b', 'c', 'd'], 3)).toEqual([{ label: 'b', score: 0.5 }, { label: 'a', score: 0.2 }, { label: 'c', score: 0.2 }]);
    expect(topK([0.6, 0.4], ['a', 'b'], 5)).toHaveLength(2);
  });

  it('selectItems keeps the labelled images of the chosen subsets and reports unknown labels', () => {
    const img = (id: number, label: string | null, split: DatasetFile['images'][number]['split']) => ({
      id: `img-0000000${id}`, file: `images/000000000000000${id}.png`, label, split, width: 8, height: 8, hash: 'x'.repeat(64), bytes: 1, format: 'png',
    });
    const ds = {
      split_names: ['other', 'main'],
      images: [img(1, 'a', ['train', 'test']), img(2, 'b', ['test', 'val']), img(3, null, ['test', 'test']), img(4, 'zzz', ['train', 'test']), img(5, 'b', ['test', 'train'])],
    } as unknown as DatasetFile;
    const sel = selectItems(ds, 'main', ['test', 'val'], ['a', 'b']);
    expect(sel.items.map((i) => [i.image_id, i.subset, i.labelIndex])).toEqual([['img-00000001', 'test', 0], ['img-00000002', 'val', 1]]);
    expect(sel.counts).toEqual({ test: 1, val: 1 });
    expect(sel.unlabelled).toBe(1);
    expect(sel.problems).toEqual([{ image_id: 'img-00000004', file: 'images/0000000000000004.png', reason: "label 'zzz' is not one of the model's classes" }]);
    expect(() => selectItems(ds, 'nope', ['test'], ['a'])).toThrow(/split 'nope'/);
  });
});
