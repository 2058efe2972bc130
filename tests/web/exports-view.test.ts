import { describe, expect, it } from 'vitest';
import {
  accuracyDelta,
  benchmarkRows,
  exportsUrl,
  formatCount,
  formatError,
  formatFlops,
  mainRun,
  prettyJson,
  profileRows,
  throughputAt,
  validationView,
} from '../../src/web/exports-view.ts';

/** The deploy page's pure shaping: numbers as a person reads them, tables from the stored report. */
describe('export view helpers', () => {
  it('formats counts, FLOPs and small errors', () => {
    expect(formatCount(23_811)).toBe('23.8 K');
    expect(formatCount(11_689_512)).toBe('11.7 M');
    expect(formatCount(2_542_856)).toBe('2.54 M');
    expect(formatCount(260)).toBe('260');
    expect(formatCount(null)).toBe('—');
    expect(formatFlops(1.82e9)).toBe('1.82 G');
    expect(formatFlops(5_612_000)).toBe('5.6 M');
    expect(formatError(3e-8)).toBe('3.0e-8');
    expect(formatError(0.0123)).toBe('0.0123');
    expect(formatError(0)).toBe('0');
    // A model that gave NaN is stored as null: never shown as a number.
    expect(formatError(null)).toBe('NaN');
  });

  it('builds the page URL with the selection', () => {
    expect(exportsUrl('proj-aaaaaaaa')).toBe('/projects/proj-aaaaaaaa/exports');
    expect(exportsUrl('proj-aaaaaaaa', 'exp-bbbbbbbb', 'export-cccccccc')).toBe('/projects/proj-aaaaaaaa/exports?experiment=exp-bbbbbbbb&export=export-cccccccc');
  });

  it('reads the benchmark: the all-threads run for the table, every run for the detail', () => {
    const bench = {
      results: [
        { threads: 2, latency_b1: { p50_ms: 1.234, p90_ms: 2, p99_ms: 15.5 }, throughput: [{ batch: 8, images_per_s: 2563.4 }, { batch: 32, images_per_s: 1592.1 }] },
        { threads: 1, latency_b1: { p50_ms: 0.08, p90_ms: 0.13, p99_ms: 0.21 }, throughput: [{ batch: 8, images_per_s: 1426 }] },
      ],
    };
    const run = mainRun(bench);
    expect(run?.threads).toBe(2);
    expect(throughputAt(run, 32)).toBe(1592.1);
    expect(throughputAt(run, 64)).toBeNull();
    expect(mainRun(null)).toBeNull();
    const rows = benchmarkRows(bench);
    expect(rows.map((r) => r.threads)).toEqual(['1 thread', '2 threads']);
    expect(rows[1]).toMatchObject({ p50: '1.23', p99: '15.5', throughput: [{ batch: 8, value: '2,563' }, { batch: 32, value: '1,592' }] });
  });

  it('orders the profile slowest first and keeps the top rows', () => {
    const nodes = [
      { node: 'a', op_type: 'Conv', mean_us: 12, percent: 10, params: 864 },
      { node: 'b', op_type: 'Gemm', mean_us: 1500, percent: 80, params: null },
      { node: 'c', op_type: 'Relu', mean_us: 3, percent: 2, params: 0 },
    ];
    const rows = profileRows(nodes, 2);
    expect(rows.map((r) => r.node)).toEqual(['b', 'a']);
    expect(rows[0]).toMatchObject({ op: 'Gemm', time: '1.50 ms', percent_label: '80.0%', params: '—' });
    expect(rows[1]).toMatchObject({ time: '12 µs', params: '864' });
  });

  it('shows validation figures and failures as stored; accuracy change in points', () => {
    const v = validationView({ max_abs_error: 4.4e-4, rmse: 1e-4, cosine: 0.9999995, argmax_agreement: 0.95, passed: false, failures: ['argmax agreement 0.95 < 0.99'] });
    expect(v).toEqual({ passed: false, max_abs: '4.4e-4', rmse: '1.0e-4', cosine: '1.00000', agreement: '95.0%', failures: ['argmax agreement 0.95 < 0.99'] });
    expect(validationView({ max_abs_error: null, rmse: null, cosine: null, argmax_agreement: 0, passed: false })?.cosine).toBe('NaN');
    expect(accuracyDelta(0.9, 0.916)).toBe('−1.6 pt');
    expect(accuracyDelta(0.5, 0.5)).toBe('±0.0 pt');
    expect(accuracyDelta(0.52, 0.5)).toBe('+2.0 pt');
    expect(accuracyDelta(null, 0.5)).toBeNull();
  });

  it('pretty-prints the manifest with short arrays on one line', () => {
    const text = prettyJson({ shape: ['batch', 3, 224, 224], mean: [0.485, 0.456, 0.406], labels: ['a[1]', 'b'], nested: [{ x: 1 }] });
    expect(text).toContain('"shape": ["batch", 3, 224, 224]');
    expect(text).toContain('"mean": [0.485, 0.456, 0.406]');
    // A bracket inside a string leaves that array expanded, still valid JSON.
    expect(text).toContain('"labels": [\n    "a[1]",\n    "b"\n  ]');
    expect(JSON.parse(text)).toEqual({ shape: ['batch', 3, 224, 224], mean: [0.485, 0.456, 0.406], labels: ['a[1]', 'b'], nested: [{ x: 1 }] });
  });
});
