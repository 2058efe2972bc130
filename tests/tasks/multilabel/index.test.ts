import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../../src/onnx/builder.ts';
import { f32 } from '../../../src/onnx/ir.ts';
import { createSession } from '../../../src/runtime/session.ts';
import type { ImageRecord } from '../../../src/schemas/dataset.ts';
import { HyperparametersSchema } from '../../../src/schemas/experiment.ts';
import multilabel, { aggregateSchema, itemSchema } from '../../../src/tasks/multilabel/index.ts';
import type { EvaluationItemInput } from '../../../src/tasks/types.ts';

const NAMES = ['cat', 'dog', 'car', 'tree'];

function image(labels: string[] | undefined): ImageRecord {
  const base: ImageRecord = { id: 'img_0000000000000001', file: 'images/0123456789abcdef.png', width: 8, height: 8, hash: '0123456789abcdef', label: null, split: ['train'] };
  return (labels === undefined ? base : { ...base, labels }) as ImageRecord;
}

const h = (over: Record<string, unknown> = {}) => HyperparametersSchema.parse(over);

describe('multilabel task: data', () => {
  it('names its outputs by the dataset classes', () => {
    expect(multilabel.outputNames({ task: 'multilabel', classes: NAMES, images: [] })).toEqual(NAMES);
  });

  it('makes multi-hot targets; [] is labelled with nothing present, absent is unlabelled', () => {
    expect(multilabel.target(image(['dog', 'tree']), NAMES)).toEqual([0, 1, 0, 1]);
    expect(multilabel.target(image([]), NAMES)).toEqual([0, 0, 0, 0]);
    expect(multilabel.target(image(undefined), NAMES)).toBeNull();
  });

  it('reports labels the run does not know, and takes no target from such an image', () => {
    expect(multilabel.problem(image(['dog']), NAMES)).toBeNull();
    expect(multilabel.problem(image(undefined), NAMES)).toBeNull();
    expect(multilabel.problem(image(['dog', 'boat']), NAMES)).toMatch(/'boat'/);
    expect(multilabel.target(image(['dog', 'boat']), NAMES)).toBeNull();
  });
});

describe('multilabel task: training', () => {
  const train = [
    [1, 0, 0, 0],
    [1, 1, 0, 0],
    [1, 0, 0, 0],
    [0, 1, 1, 0],
  ];

  it('fits pos_weight = negatives / positives per class when balanced (1 for a class with none)', () => {
    expect(multilabel.fitState(train, NAMES, h())).toEqual({ pos_weight: null });
    // cat 3 of 4 → 1/3; dog 2 of 4 → 2/2; car 1 of 4 → 3/1; tree none → 1
    expect(multilabel.fitState(train, NAMES, h({ pos_weight: 'balanced' }))).toEqual({ pos_weight: [1 / 3, 1, 3, 1] });
    expect(multilabel.stateSchema.parse({ pos_weight: [1 / 3, 1, 3, 1] })).toEqual({ pos_weight: [1 / 3, 1, 3, 1] });
  });

  it('trains with BCE with logits, its pos_weight and the label smoothing', () => {
    expect(multilabel.loss(h(), { pos_weight: null }, 4)).toEqual({ kind: 'bce_with_logits', labelSmoothing: 0 });
    expect(multilabel.loss(h({ label_smoothing: 0.1, loss: 'bce' }), { pos_weight: [1, 2, 3, 4] }, 4)).toEqual({
      kind: 'bce_with_logits',
      labelSmoothing: 0.1,
      posWeight: [1, 2, 3, 4],
    });
    expect(() => multilabel.loss(h({ loss: 'mse' }), { pos_weight: null }, 4)).toThrow(/hyperparameters\.loss/);
  });

  it('collates float32 [n, C]', () => {
    const t = multilabel.collate(train, { pos_weight: null }, 4);
    expect(t.dtype).toBe('float32');
    expect(t.dims).toEqual([4, 4]);
    expect(Array.from(t.data as Float32Array)).toEqual(train.flat());
  });

  it('scores an epoch: plain mean BCE over the cells, mAP and micro-F1 at 0.5', () => {
    const s = multilabel.scorer({ pos_weight: [5, 5, 5, 5] }, 2);
    // two images, logits 0 and ±ln 3 (σ = 1/2, 3/4, 1/4)
    const ln3 = Math.log(3);
    s.add(Float32Array.from([ln3, 0]), [[1, 0]]);
    s.add(Float32Array.from([-ln3, ln3]), [[0, 1]]);
    const r = s.result();
    // BCE cells: −ln σ(ln3) = ln(4/3); −ln(1 − σ(0)) = ln 2; −ln(1 − σ(−ln3)) = ln(4/3); −ln σ(ln3) = ln(4/3)
    expect(r.loss).toBeCloseTo((3 * Math.log(4 / 3) + Math.log(2)) / 4, 6);
    // class 0: positive 0.75 above negative 0.25 → AP 1; class 1: positive 0.75 above 0.5 → AP 1
    expect(r.metrics.map).toBeCloseTo(1, 12);
    // at 0.5: img0 predicts [1, 1] (σ(0) = 0.5 counts), img1 [0, 1] → tp 2, fp 1, fn 0 → F1 4/5
    expect(r.metrics.micro_f1).toBeCloseTo(0.8, 6);
    const empty = multilabel.scorer({ pos_weight: null }, 2).result();
    expect(empty).toEqual({ loss: null, metrics: { map: null, micro_f1: null } });
  });
});

describe('multilabel task: inference, evaluation, export, predict', () => {
  it('appends a sigmoid named probabilities', async () => {
    const b = new GraphBuilder();
    b.input('logits', 'float32', ['N', 3]);
    const out = multilabel.appendInference(b, 'logits', { pos_weight: null }, 3);
    expect(out.primary).toBe('probabilities');
    expect(out.outputs.map((o) => o.name)).toEqual(['probabilities']);
    b.output(out.primary, 'float32', ['N', 3]);
    const s = await createSession(b.toModel(), { threads: 1 });
    const r = await s.run({ logits: f32([1, 3], [0, 2, -30]) });
    await s.release();
    const p = Array.from(r.probabilities.data as Float32Array);
    expect(p[0]).toBeCloseTo(0.5, 6);
    expect(p[1]).toBeCloseTo(1 / (1 + Math.exp(-2)), 6);
    expect(p[2]).toBeCloseTo(0, 6);
  });

  // The metrics test's hand case (see metrics.test.ts for the derivations)
  const SCORES = Float32Array.from([0.9, 0.2, 0.6, 0.7, 0.8, 0.7, 0.1, 0.2, 0.3, 0.4, 0.55, 0.1, 0.1, 0.45, 0.2, 0.4]);
  const TARGETS = [
    [1, 0, 1, 0],
    [0, 1, 0, 0],
    [1, 0, 0, 0],
    [0, 0, 0, 0],
  ];
  const items: EvaluationItemInput[] = TARGETS.map((target, i) => ({ image_id: `img_${i}`, file: `images/${i}.png`, subset: 'val', target }));

  it('evaluates to the contract’s aggregate and items', () => {
    const { aggregate: a, items: out } = multilabel.evaluate(SCORES, items, NAMES, { pos_weight: null });
    expect(aggregateSchema.parse(a)).toEqual(a);
    expect(a.map).toBeCloseTo(17 / 18, 6);
    expect(a.micro.f1).toBeCloseTo(0.6, 6);
    expect(a.macro.f1).toBeCloseTo(13 / 24, 6);
    expect(a.hamming_loss).toBeCloseTo(0.25, 12);
    expect(a.exact_match).toBeCloseTo(0.25, 12);
    expect(a.threshold).toBe(0.5);
    expect(a.label_cardinality).toEqual({ true: 1, predicted: 1.5 });
    expect(a.per_class.cat.ap).toBeCloseTo(5 / 6, 6);
    expect(a.per_class.cat.threshold).toBeCloseTo(0.3, 6);
    expect(a.per_class.cat.support).toBe(2);
    expect(a.per_class.tree).toMatchObject({ ap: null, precision: 0, recall: 0, f1: 0, support: 0, threshold: 0.5 });
    expect(Object.keys(a.curves.pr)).toEqual(['cat', 'dog', 'car']);
    expect(out).toHaveLength(4);
    for (const it of out) expect(itemSchema.parse(it)).toEqual(it);
    // img0: true {cat, car}; predicted at 0.5 cat 0.9, tree 0.7, car 0.6 (best first)
    expect(out[0]).toMatchObject({ image_id: 'img_0', file: 'images/0.png', subset: 'val', labels: ['cat', 'car'], predicted_labels: ['cat', 'tree', 'car'], missed: [], extra: ['tree'], correct: false });
    expect(out[0].scores.cat).toBeCloseTo(0.9, 6);
    expect(out[2]).toMatchObject({ labels: ['cat'], predicted_labels: ['car'], missed: ['cat'], extra: ['car'], correct: false });
    expect(out[3]).toMatchObject({ labels: [], predicted_labels: [], missed: [], extra: [], correct: true });
  });

  it('evaluates no images to nulls, not NaN', () => {
    const { aggregate: a, items: out } = multilabel.evaluate(new Float32Array(0), [], NAMES, { pos_weight: null });
    expect(out).toEqual([]);
    expect(a.map).toBeNull();
    expect(a.hamming_loss).toBeNull();
    expect(a.exact_match).toBeNull();
    expect(a.micro).toEqual({ precision: 0, recall: 0, f1: 0 });
  });

  it('reports mAP as its export metric', () => {
    const m = multilabel.exportMetric(SCORES, TARGETS, NAMES, { pos_weight: null });
    expect(m.name).toBe('map');
    expect(m.value).toBeCloseTo(17 / 18, 6);
  });

  it('puts max-F1 thresholds from the reference outputs in the manifest', () => {
    const post = multilabel.manifestPostprocessing({ pos_weight: null }, NAMES, 'probabilities', { outputs: SCORES, targets: TARGETS });
    expect(post).toMatchObject({ type: 'multilabel', scores_output: 'probabilities', activation: 'sigmoid' });
    const th = post.thresholds as Record<string, number>;
    expect(Object.keys(th)).toEqual(NAMES);
    expect(th.cat).toBeCloseTo(0.3, 6);
    expect(th.dog).toBeCloseTo(0.7, 6);
    expect(th.car).toBeCloseTo(0.6, 6);
    expect(th.tree).toBe(0.5);
  });

  it('predicts every label at or above its own threshold, best first, with all scores', () => {
    const post = { type: 'multilabel', scores_output: 'probabilities', activation: 'sigmoid', thresholds: { cat: 0.3, dog: 0.7, car: 0.6, tree: 0.5 } };
    const row = Float32Array.from([0.35, 0.69, 0.95, 0.5]);
    const p = multilabel.predict(row, NAMES, post, { topK: 5 }) as { labels: { label: string; score: number }[]; scores: Record<string, number> };
    expect(p.labels.map((l) => l.label)).toEqual(['car', 'tree', 'cat']);
    expect(Object.keys(p.scores)).toEqual(NAMES);
    expect(p.scores.dog).toBeCloseTo(0.69, 6);
    // without thresholds in the postprocessing every label falls back to 0.5
    const q = multilabel.predict(row, NAMES, {}, { topK: 5 }) as { labels: { label: string }[] };
    expect(q.labels.map((l) => l.label)).toEqual(['car', 'dog', 'tree']);
  });
});
