import { describe, expect, it } from 'vitest';
import type { ImageRecord } from '../../../src/schemas/dataset.ts';
import { HyperparametersSchema, type HyperparametersInput } from '../../../src/schemas/experiment.ts';
import regression, { MIN_STD, type RegressionState } from '../../../src/tasks/regression/index.ts';
import { taskInfo } from '../../../src/tasks/registry.ts';
import { lossSpecSchema } from '../../../src/training/losses.ts';

const hp = (h: HyperparametersInput = {}) => HyperparametersSchema.parse(h);

const image = (extra: Partial<ImageRecord> & Record<string, unknown> = {}): ImageRecord => ({
  id: 'img_0001',
  file: 'images/0123456789abcdef.png',
  width: 8,
  height: 8,
  hash: '0123456789abcdef',
  label: null,
  split: ['train'],
  ...extra,
});

const NAMES = ['width_mm', 'weight_g'];

describe('regression task definition', () => {
  it('declares its name, losses, metrics and a consistent best metric', () => {
    expect(regression.name).toBe('regression');
    expect(regression.title).toBe('Regression');
    expect([...regression.sources]).toEqual(['csv']);
    expect([...regression.losses]).toEqual(['mse', 'l1', 'huber']);
    expect(regression.epochMetrics.map((m) => [m.key, m.higher_is_better, m.format])).toEqual([
      ['val_mae', false, 'number'],
      ['val_r2', true, 'number'],
    ]);
    expect(regression.bestMetric).toBe('val_mae');
    const info = taskInfo(regression);
    expect(info.default_loss).toBe('mse');
    expect(info.evaluation_metrics).toEqual(['mae', 'rmse', 'r2', 'median_ae', 'max_error']);
  });

  it('outputs are the target names; targets are the stored values, or null', () => {
    expect(regression.outputNames({ task: 'regression', classes: [], target_names: NAMES, images: [] })).toEqual(NAMES);
    expect(regression.outputNames({ task: 'regression', classes: [], images: [] })).toEqual([]);
    expect(regression.target(image({ targets: [12.5, -3] }), NAMES)).toEqual([12.5, -3]);
    expect(regression.target(image(), NAMES)).toBeNull();
    expect(regression.target(image({ targets: [1] }), NAMES)).toBeNull();
    expect(regression.problem(image(), NAMES)).toBeNull();
    expect(regression.problem(image({ targets: [1, 2] }), NAMES)).toBeNull();
    expect(regression.problem(image({ targets: [1] }), NAMES)).toMatch(/1 target value, the targets are 2 \(width_mm, weight_g\)/);
    expect(regression.problem(image({ targets: [1, 2, 3] }), NAMES)).toMatch(/3 target values/);
  });

  it('fits mean and population std on the training targets, floored at 1e-6', () => {
    // column 0: [1, 2, 3, 4] → mean 2.5, var ((1.5² + 0.5²)·2)/4 = 1.25; column 1 constant 7 → std floored
    const s = regression.fitState([[1, 7], [2, 7], [3, 7], [4, 7]], NAMES, hp());
    expect(s.mean).toEqual([2.5, 7]);
    expect(s.std[0]).toBeCloseTo(Math.sqrt(1.25), 12);
    expect(s.std[1]).toBe(MIN_STD);
    expect(regression.stateSchema.parse(s)).toEqual(s);
    // the contract's shape alone (mean, std) parses too
    expect(regression.stateSchema.parse({ mean: [1], std: [2] })).toEqual({ mean: [1], std: [2] });
  });

  it('maps the loss names onto the engine losses, and refuses another name', () => {
    const s: RegressionState = { mean: [0], std: [1] };
    expect(regression.loss(hp(), s, 1)).toEqual({ kind: 'mse' });
    expect(regression.loss(hp({ loss: 'mse' }), s, 1)).toEqual({ kind: 'mse' });
    expect(regression.loss(hp({ loss: 'l1' }), s, 1)).toEqual({ kind: 'smooth_l1', beta: 0 });
    expect(regression.loss(hp({ loss: 'huber', huber_delta: 0.5 }), s, 1)).toEqual({ kind: 'huber', delta: 0.5 });
    expect(regression.loss(hp({ loss: 'huber' }), s, 1)).toEqual({ kind: 'huber', delta: 1 });
    for (const l of ['mse', 'l1', 'huber']) expect(() => lossSpecSchema.parse(regression.loss(hp({ loss: l }), s, 1))).not.toThrow();
    expect(() => regression.loss(hp({ loss: 'cross_entropy' }), s, 1)).toThrow(/hyperparameters\.loss/);
  });

  it('collates standardised float32 targets [n, K]', () => {
    const s: RegressionState = { mean: [10, -1], std: [2, 0.5] };
    const t = regression.collate([[12, -1], [8, 0]], s, 2);
    expect(t.dtype).toBe('float32');
    expect(t.dims).toEqual([2, 2]);
    expect(Array.from(t.data as Float32Array)).toEqual([1, 0, -1, 2]);
  });

  it('scores an epoch: the run\'s loss on the standardised scale, MAE and R² in the target\'s units', () => {
    // one target, mean 10, std 2; targets [8, 10, 14] → standardised [-1, 0, 2]
    // raw outputs [-1, 0.5, 1] → values [8, 11, 12]; standardised differences [0, 0.5, -1]
    const targets = [[8], [10], [14]];
    const raw = Float32Array.of(-1, 0.5, 1);
    const mse = regression.scorer({ mean: [10], std: [2], loss: 'mse' }, 1);
    mse.add(raw.subarray(0, 2), targets.slice(0, 2));
    mse.add(raw.subarray(2), targets.slice(2));
    const r = mse.result();
    expect(r.loss).toBeCloseTo((0 + 0.25 + 1) / 3, 6);
    // |errors| in units [0, 1, 2] → MAE 1; ȳ = 32/3, SS_tot = (8−32/3)² + (10−32/3)² + (14−32/3)² = 168/9; SS_res = 0 + 1 + 4
    expect(r.metrics.mae).toBeCloseTo(1, 6);
    expect(r.metrics.r2).toBeCloseTo(1 - 5 / (168 / 9), 6);
    // L1: (0 + 0.5 + 1) / 3; Huber δ = 0.75: 0, 0.5·0.25 = 0.125, 0.75·(1 − 0.375) = 0.46875
    const l1 = regression.scorer({ mean: [10], std: [2], loss: 'l1' }, 1);
    l1.add(raw, targets);
    expect(l1.result().loss).toBeCloseTo(0.5, 6);
    const huber = regression.scorer({ mean: [10], std: [2], loss: 'huber', huber_delta: 0.75 }, 1);
    huber.add(raw, targets);
    expect(huber.result().loss).toBeCloseTo((0.125 + 0.46875) / 3, 6);
    // a state without a loss choice scores MSE
    const plain = regression.scorer({ mean: [10], std: [2] }, 1);
    plain.add(raw, targets);
    expect(plain.result().loss).toBeCloseTo(r.loss!, 9);
    expect(regression.scorer({ mean: [0], std: [1] }, 1).result()).toEqual({ loss: null, metrics: { mae: null, r2: null } });
  });

  it('with several targets the epoch metrics are the mean over targets', () => {
    // target a: truth [0, 2], values [1, 2] → MAE 0.5, R² = 1 − 1/2 = 0.5
    // target b: truth [0, 10], values [0, 7] → MAE 1.5, R² = 1 − 9/50 = 0.82
    const sc = regression.scorer({ mean: [0, 0], std: [1, 1] }, 2);
    sc.add(Float32Array.of(1, 0, 2, 7), [[0, 0], [2, 10]]);
    const r = sc.result();
    expect(r.metrics.mae).toBeCloseTo(1, 6);
    expect(r.metrics.r2).toBeCloseTo((0.5 + 0.82) / 2, 6);
  });

  it('evaluates into the contract\'s aggregate and items', () => {
    // the hand case of metrics.test.ts as target 'a'; target 'b' is constant (R² null)
    const items = [3, -0.5, 2, 7].map((y, i) => ({ image_id: `img_${i}`, file: `images/${i}.png`, subset: 'test' as const, target: [y, 5] }));
    const values = Float32Array.of(2.5, 5, 0, 5, 2, 6, 8, 5);
    const { aggregate, items: out } = regression.evaluate(values, items, ['a', 'b'], { mean: [0, 0], std: [1, 1] });
    expect(regression.aggregateSchema.parse(aggregate)).toEqual(aggregate);
    expect(aggregate.per_target.a).toEqual({ mae: 0.5, rmse: Math.sqrt(0.375), r2: 1 - 1.5 / 29.1875, median_ae: 0.5, max_error: 1, mean_target: 2.875 });
    // b: errors [0, 0, 1, 0] → MAE 0.25, RMSE 0.5, median 0, max 1, R² null (constant truth)
    expect(aggregate.per_target.b).toEqual({ mae: 0.25, rmse: 0.5, r2: null, median_ae: 0, max_error: 1, mean_target: 5 });
    // top level: the mean over targets; R² over the targets where it is defined
    expect(aggregate.mae).toBeCloseTo(0.375, 12);
    expect(aggregate.rmse).toBeCloseTo((Math.sqrt(0.375) + 0.5) / 2, 12);
    expect(aggregate.r2).toBeCloseTo(1 - 1.5 / 29.1875, 12);
    expect(aggregate.median_ae).toBeCloseTo(0.25, 12);
    expect(aggregate.max_error).toBe(1);
    expect(aggregate.scatter.a).toEqual({ true: [3, -0.5, 2, 7], predicted: [2.5, 0, 2, 8] });
    expect(aggregate.residual_histogram.a.counts.reduce((x, y) => x + y, 0)).toBe(4);
    expect(aggregate.residual_histogram.a.edges[0]).toBe(-0.5);
    expect(aggregate.residual_histogram.a.edges[20]).toBe(1);
    expect(Object.keys(aggregate)).toEqual(['mae', 'rmse', 'r2', 'median_ae', 'max_error', 'per_target', 'scatter', 'residual_histogram']);

    expect(out).toHaveLength(4);
    for (const it of out) expect(regression.itemSchema.parse(it)).toEqual(it);
    expect(out[0]).toEqual({ image_id: 'img_0', file: 'images/0.png', subset: 'test', target: { a: 3, b: 5 }, predicted: { a: 2.5, b: 5 }, error: { a: -0.5, b: 0 }, abs_error: 0.5 });
    expect(out[2].error).toEqual({ a: 0, b: 1 });
    expect(out[2].abs_error).toBe(1);
  });

  it('evaluates one target: the top level equals it; no images gives nulls', () => {
    const items = [1, 2, 3].map((y, i) => ({ image_id: `i${i}`, file: `f${i}`, subset: 'val' as const, target: [y] }));
    const { aggregate } = regression.evaluate(Float32Array.of(1, 2, 4), items, ['size'], { mean: [0], std: [1] });
    const { mean_target: _, ...per } = aggregate.per_target.size;
    expect({ mae: aggregate.mae, rmse: aggregate.rmse, r2: aggregate.r2, median_ae: aggregate.median_ae, max_error: aggregate.max_error }).toEqual(per);
    const empty = regression.evaluate(new Float32Array(0), [], ['size'], { mean: [0], std: [1] });
    expect(empty.items).toEqual([]);
    expect(empty.aggregate.mae).toBeNull();
    expect(empty.aggregate.r2).toBeNull();
    expect(() => regression.evaluate(Float32Array.of(Number.NaN), items.slice(0, 1), ['size'], { mean: [0], std: [1] })).toThrow(/not a finite number/);
  });

  it('export metric, manifest post-processing and predict', () => {
    const s: RegressionState = { mean: [0, 0], std: [1, 1] };
    // a: |errors| [1, 0] → 0.5; b: [0, 3] → 1.5; mean 1
    expect(regression.exportMetric(Float32Array.of(1, 0, 2, 3), [[0, 0], [2, 0]], ['a', 'b'], s)).toEqual({ name: 'mae', value: 1 });
    expect(regression.exportMetric(new Float32Array(0), [], ['a', 'b'], s)).toEqual({ name: 'mae', value: null });
    expect(regression.manifestPostprocessing(s, ['a', 'b'], 'value', { outputs: new Float32Array(0), targets: [] })).toEqual({
      type: 'regression',
      values_output: 'value',
      targets: [{ name: 'a' }, { name: 'b' }],
    });
    expect(regression.predict(Float32Array.of(1.5, -2), ['a', 'b'], {}, { topK: 5 })).toEqual({ values: { a: 1.5, b: -2 } });
  });
});
