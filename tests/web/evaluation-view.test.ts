import { describe, expect, it } from 'vitest';
import type { EvaluationView } from '../../src/core/evaluation.ts';
import { chartPayload, classRows, confusionView, evaluationUrl, hasFilters, headlineMetrics } from '../../src/web/evaluation-view.ts';

/** The evaluation page's pure shaping: URLs, the heat-map cells, the tiles, the chart data. */
type Aggregate = NonNullable<EvaluationView['aggregate']>;

// 3 classes, 10 images: rows are true classes.
const MATRIX = [
  [3, 1, 0],
  [0, 4, 0],
  [1, 0, 1],
];
const AGG: Aggregate = {
  accuracy: 0.8,
  top_k: {},
  macro: { precision: 0.75, recall: 0.7, f1: 0.7 },
  weighted: { precision: 0.8, recall: 0.8, f1: 0.78 },
  per_class: {
    a: { precision: 0.75, recall: 0.75, f1: 0.75, support: 4 },
    b: { precision: 0.8, recall: 1, f1: 0.889, support: 4 },
    'c&<d>': { precision: 1, recall: 0.5, f1: 0.667, support: 2 },
  },
  confusion_matrix: { labels: ['a', 'b', 'c&<d>'], matrix: MATRIX },
  log_loss: 0.5,
  ece: 0.1,
  roc_auc: { macro: 0.9, per_class: { a: 0.9, b: 0.95, 'c&<d>': null } },
  balanced_accuracy: 0.75,
  kappa: 0.69,
  reliability: [{ lower: 0, upper: 0.5, count: 0, mean_confidence: null, accuracy: null }, { lower: 0.5, upper: 1, count: 10, mean_confidence: 0.85, accuracy: 0.8 }],
  curves: { roc: { a: { fpr: [0, 0.5, 1], tpr: [0, 1, 1] } }, pr: { b: { precision: [1, 0.8], recall: [0, 1], average_precision: 0.9 } } },
};

describe('evaluation page shaping', () => {
  it('builds page URLs with only the filters given, the default sort and page left out', () => {
    expect(evaluationUrl('proj-1')).toBe('/projects/proj-1/evaluation');
    expect(evaluationUrl('proj-1', 'exp-1', { sort: 'mistakes_first' }, 1)).toBe('/projects/proj-1/evaluation?experiment=exp-1');
    const url = evaluationUrl('proj-1', 'exp-1', { label: 'c&<d>', predicted: 'a', min_pct: 50, sort: 'file' }, 3);
    const q = new URL(url, 'http://x').searchParams;
    expect(Object.fromEntries(q)).toEqual({ experiment: 'exp-1', label: 'c&<d>', predicted: 'a', min_pct: '50', sort: 'file', page: '3' });
    expect(hasFilters({ sort: 'file' })).toBe(false);
    expect(hasFilters({ sort: 'mistakes_first', max_pct: 0 })).toBe(true);
  });

  it('shades each cell by its share of the true class and links it to its pair', () => {
    const v = confusionView(AGG, (l, p) => `${l}->${p}`, { label: 'c&<d>', predicted: 'a' });
    expect(v.rows.map((r) => r.total)).toEqual([4, 4, 2]);
    expect(v.column_totals).toEqual([4, 5, 1]);
    for (const r of v.rows) expect(r.cells.reduce((s, c) => s + c.share, 0)).toBeCloseTo(1, 12);
    expect(v.rows[0].cells.map((c) => c.share)).toEqual([0.75, 0.25, 0]);
    expect(v.rows[2].cells[0]).toMatchObject({ count: 1, share: 0.5, diagonal: false, href: 'c&<d>->a', selected: true });
    expect(v.rows.flatMap((r) => r.cells).filter((c) => c.selected)).toHaveLength(1);
    expect(v.rows[1].cells[1]).toMatchObject({ diagonal: true, count: 4, share: 1 });
    expect(v.rows[0].cells[1].title).toBe('1 image of “a” predicted as “b” (25.0% of the class)');
  });

  it('a class with no images has empty shares, not NaN', () => {
    const empty = { ...AGG, confusion_matrix: { labels: ['a', 'b'], matrix: [[0, 0], [1, 1]] } };
    const v = confusionView(empty, () => '#');
    expect(v.rows[0].cells.map((c) => c.share)).toEqual([0, 0]);
    expect(v.rows[0].cells[0].title).toBe('0 images of “a” predicted as “a”');
  });

  it('formats the headline numbers and per-class rows, with a dash where a value is undefined', () => {
    const h = Object.fromEntries(headlineMetrics(AGG, 10).map((x) => [x.label, x]));
    expect(h['Accuracy']).toEqual({ label: 'Accuracy', value: '80.0%', hint: '10 images' });
    expect(headlineMetrics({ ...AGG, top_k: { '3': 0.9 } }, 10)[0].hint).toBe('top-3 90.0%');
    expect(h["Cohen's kappa"].value).toBe('0.690');
    // beside the accuracy, the trivial baseline: the most frequent true class's share of the images
    const rowsum = AGG.confusion_matrix.matrix.map((r) => r.reduce((x, y) => x + y, 0));
    expect(h['Majority baseline'].value).toBe(`${((Math.max(...rowsum) / rowsum.reduce((x, y) => x + y, 0)) * 100).toFixed(1)}%`);
    expect(headlineMetrics({ ...AGG, kappa: null }, 10).find((x) => x.label === "Cohen's kappa")!.value).toBe('—');
    const rows = classRows(AGG);
    expect(rows.map((r) => r.label)).toEqual(['a', 'b', 'c&<d>']);
    expect(rows[2]).toEqual({ label: 'c&<d>', precision: '1.000', recall: '0.500', f1: '0.667', support: 2, auc: '—' });
  });

  it('hands the charts per-class scores in label order, curves as points, and every reliability bin', () => {
    const c = chartPayload(AGG);
    expect(c.per_class).toEqual({ labels: ['a', 'b', 'c&<d>'], precision: [0.75, 0.8, 1], recall: [0.75, 1, 0.5], f1: [0.75, 0.889, 0.667] });
    expect(c.roc).toEqual([{ label: 'a', auc: 0.9, points: [{ x: 0, y: 0 }, { x: 0.5, y: 1 }, { x: 1, y: 1 }] }]);
    expect(c.pr).toEqual([{ label: 'b', ap: 0.9, points: [{ x: 0, y: 1 }, { x: 1, y: 0.8 }] }]);
    expect(c.reliability).toHaveLength(2);
    expect(c.reliability[1]).toEqual({ lower: 0.5, upper: 1, count: 10, confidence: 0.85, accuracy: 0.8 });
  });
});
