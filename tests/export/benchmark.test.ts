import { describe, expect, it } from 'vitest';
import { benchmarkModel, latencyStats, percentile } from '../../src/export/benchmark.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { attr, f32 } from '../../src/onnx/ir.ts';
import { aggregateKernelTimes, profileModel } from '../../src/runtime/profile.ts';

function convNet() {
  const b = new GraphBuilder();
  b.input('input', 'float32', ['batch', 3, 16, 16]);
  const w = b.initializer('w', f32([8, 3, 3, 3], Float32Array.from({ length: 216 }, (_, i) => Math.sin(i))));
  const y = b.op('Conv', ['input', w], { pads: attr.ints([1, 1, 1, 1]) }, 'conv');
  const p = b.op('GlobalAveragePool', [y], {}, 'gap');
  b.opN('Flatten', [p], {}, ['logits'], 'flatten');
  b.output('logits', 'float32', ['batch', 8]);
  return b.toModel();
}

describe('percentiles', () => {
  it('uses the nearest rank', () => {
    const v = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([percentile(v, 50), percentile(v, 90), percentile(v, 99), percentile(v, 100)]).toEqual([50, 90, 99, 100]);
    expect(percentile([7], 99)).toBe(7);
    expect(latencyStats([3, 1, 2, 4])).toEqual({ runs: 4, mean_ms: 2.5, p50_ms: 2, p90_ms: 4, p99_ms: 4 });
    expect(() => percentile([], 50)).toThrow();
  });
});

describe('benchmarkModel', () => {
  it('reports b1 latency and throughput per thread count, and peak memory', async () => {
    const ticks: number[] = [];
    const r = await benchmarkModel(convNet(), {
      height: 16, width: 16, threads: [1, 2], warmup: 1, latencyRuns: 4, batches: [8, 32], throughputRuns: 2,
      onProgress: (done) => ticks.push(done),
    });
    expect(r.results.map((t) => t.threads)).toEqual([1, 2]);
    for (const t of r.results) {
      expect(t.latency_b1.runs).toBe(4);
      expect(t.latency_b1.p50_ms).toBeGreaterThan(0);
      expect(t.latency_b1.p99_ms).toBeGreaterThanOrEqual(t.latency_b1.p50_ms);
      expect(t.throughput.map((x) => x.batch)).toEqual([8, 32]);
      for (const x of t.throughput) expect(x.images_per_s).toBeCloseTo((1000 * x.batch) / x.ms_per_batch, 6);
    }
    expect(ticks).toEqual(Array.from({ length: 2 * (4 + 2 * 2) }, (_, i) => i + 1));
    expect(r.peak_rss_bytes).toBeGreaterThan(10 * 2 ** 20);
  });

  it('stops when its signal is aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(benchmarkModel(convNet(), { height: 16, width: 16, threads: [1], latencyRuns: 2, signal: ac.signal })).rejects.toThrow();
  });
});

describe('profileModel', () => {
  it('returns per-node kernel times from onnxruntime’s trace, slowest first, summing to 100%', async () => {
    const x = f32([2, 3, 16, 16], new Float32Array(2 * 3 * 256).fill(0.5));
    const rows = await profileModel(convNet(), { input: x }, { runs: 3, threads: 1 });
    expect(rows.map((r) => r.opType)).toContain('Conv');
    // names are the optimized graph's (here the NCHWc layout pass renames the conv)
    expect(rows.find((r) => r.opType === 'Conv')!.node).toMatch(/^conv/);
    expect(rows.reduce((a, r) => a + r.percent, 0)).toBeCloseTo(100, 6);
    for (let i = 1; i < rows.length; i++) expect(rows[i - 1].totalUs).toBeGreaterThanOrEqual(rows[i].totalUs);
    for (const r of rows) expect(r.meanUs).toBeCloseTo(r.totalUs / 3, 9);
    expect(rows.find((r) => r.opType === 'Conv')!.bytesPerRun).toBeGreaterThan(0);
  });

  it('skips the warm-up run of each node when aggregating', () => {
    // sizes as the trace schema gives them (onnxruntime writes strings, coerced); Relu's carry none
    const ev = (name: string, dur: number, op = 'Conv') => ({ cat: 'Node', name: `${name}_kernel_time`, dur, args: { op_name: op, ...(op === 'Conv' ? { output_size: 400, activation_size: 600 } : {}) } });
    const rows = aggregateKernelTimes([
      { cat: 'Session', name: 'model_loading_uri', dur: 999 },
      ev('a', 100), ev('b', 50, 'Relu'), { cat: 'Node', name: 'a_fence_before', dur: 0 },
      ev('a', 30), ev('b', 10, 'Relu'), ev('a', 30), ev('b', 10, 'Relu'),
    ], 3, 1);
    expect(rows).toEqual([
      { node: 'a', opType: 'Conv', totalUs: 60, meanUs: 30, percent: 75, bytesPerRun: 1000 },
      { node: 'b', opType: 'Relu', totalUs: 20, meanUs: 10, percent: 25, bytesPerRun: 0 },
    ]);
  });
});
