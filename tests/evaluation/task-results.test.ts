import { describe, expect, it } from 'vitest';
import { getTask } from '../../src/tasks/index.ts';
import type { MultiLabelItem } from '../../src/tasks/multilabel/index.ts';
import { MultiLabelResultsQuerySchema, multiLabelResults } from '../../src/tasks/multilabel/results.ts';
import type { RegressionItem } from '../../src/tasks/regression/index.ts';
import { RegressionResultsQuerySchema, regressionResults } from '../../src/tasks/regression/results.ts';

/** The tasks' results query, order and CSV over hand-made records. */

const ml = (id: string, labels: string[], predicted: string[], subset: 'val' | 'test' = 'val'): MultiLabelItem => ({
  image_id: `img-${id.padStart(8, '0')}`,
  file: `${id}.png`,
  subset,
  labels,
  predicted_labels: predicted,
  scores: { a: predicted.includes('a') ? 0.9 : 0.1, b: predicted.includes('b') ? 0.8 : 0.2 },
  missed: labels.filter((l) => !predicted.includes(l)),
  extra: predicted.filter((l) => !labels.includes(l)),
  correct: labels.length === predicted.length && labels.every((l) => predicted.includes(l)),
});

const rg = (id: string, t: number, p: number, subset: 'val' | 'test' = 'val'): RegressionItem => ({
  image_id: `img-${id.padStart(8, '0')}`,
  file: `${id}.png`,
  subset,
  target: { size: t },
  predicted: { size: p },
  error: { size: p - t },
  abs_error: Math.abs(p - t),
});

describe('multi-label results', () => {
  const items = [ml('1', ['a'], ['a']), ml('2', ['a', 'b'], []), ml('3', [], ['b'], 'test'), ml('4', ['b'], ['a'])];
  const q = (raw: Record<string, unknown>) => multiLabelResults.query(items, MultiLabelResultsQuerySchema.parse(raw)).items.map((r) => r.file);

  it('filters by true, missed and extra label, exact match and subset', () => {
    expect(q({ label: 'a', sort: 'file' })).toEqual(['1.png', '2.png']);
    expect(q({ missed: 'b', sort: 'file' })).toEqual(['2.png', '4.png']);
    expect(q({ extra: 'a' })).toEqual(['4.png']);
    expect(q({ only: 'correct' })).toEqual(['1.png']);
    expect(q({ subset: 'test' })).toEqual(['3.png']);
  });

  it('puts the images with most errors first, ties by file', () => {
    expect(q({})).toEqual(['2.png', '4.png', '3.png', '1.png']);
  });

  it('refuses a filter of another task', () => {
    expect(MultiLabelResultsQuerySchema.safeParse({ min_conf: '0.5' }).success).toBe(false);
    expect(getTask('multilabel').results.querySchema.safeParse({ predicted: 'a' }).success).toBe(false);
  });

  it('writes the CSV with label lists and a score column per label, formulas defused', () => {
    const lines = [...multiLabelResults.csvLines([ml('1', ['a', 'b'], ['a']), { ...ml('2', [], []), file: '=cmd.png' }], ['a', 'b'])];
    expect(lines[0]).toBe('image_id,file,subset,labels,predicted_labels,missed,extra,correct,score_a,score_b\r\n');
    expect(lines[1]).toBe('img-00000001,1.png,val,a;b,a,b,,false,0.9,0.2\r\n');
    expect(lines[2].split(',')[1]).toBe("'=cmd.png");
  });
});

describe('regression results', () => {
  const items = [rg('1', 1, 1.5), rg('2', 2, 5, 'test'), rg('3', 3, 2.8), rg('4', 4, 4.1)];
  const q = (raw: Record<string, unknown>) => regressionResults.query(items, RegressionResultsQuerySchema.parse(raw)).items.map((r) => r.file);

  it('sorts by absolute error (largest first by default), then file; filters by subset', () => {
    expect(q({})).toEqual(['2.png', '1.png', '3.png', '4.png']);
    expect(q({ sort: 'abs_error_asc' })).toEqual(['4.png', '3.png', '1.png', '2.png']);
    expect(q({ sort: 'file', subset: 'val' })).toEqual(['1.png', '3.png', '4.png']);
    expect(RegressionResultsQuerySchema.safeParse({ label: 'x' }).success).toBe(false);
    expect(RegressionResultsQuerySchema.safeParse({ sort: 'mistakes_first' }).success).toBe(false);
  });

  it('writes target, predicted and error columns per target', () => {
    const lines = [...regressionResults.csvLines([rg('1', 1, 1.5)], ['size'])];
    expect(lines).toEqual(['image_id,file,subset,target_size,predicted_size,error_size,abs_error\r\n', 'img-00000001,1.png,val,1,1.5,0.5,0.5\r\n']);
  });
});

describe('the evaluation view of the tasks', () => {
  it('finds every task its results', () => {
    for (const t of ['classification', 'multilabel', 'regression']) expect(typeof getTask(t).results.query).toBe('function');
  });
});
