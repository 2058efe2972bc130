import os from 'node:os';
import { AppError } from '../kernel/errors.ts';
import type { Model, TensorData } from '../onnx/ir.ts';
import { createSession } from '../runtime/session.ts';

/**
 * Speed of one exported model on this machine through onnxruntime-node: latency at batch 1
 * (percentiles over N timed runs after warm-up) and throughput at larger batches, for each
 * thread count asked for. Peak memory is the process's peak resident set (getrusage maxrss):
 * threads share a process, so in a worker it includes everything else the process held.
 */

export interface LatencyStats {
  runs: number;
  mean_ms: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
}

export interface ThroughputStats {
  batch: number;
  runs: number;
  ms_per_batch: number;
  images_per_s: number;
}

export interface ThreadBenchmark {
  threads: number;
  latency_b1: LatencyStats;
  throughput: ThroughputStats[];
}

export interface BenchmarkReport {
  input: { channels: number; height: number; width: number };
  results: ThreadBenchmark[];
  peak_rss_bytes: number;
}

export interface BenchmarkOptions {
  channels?: number;
  height: number;
  width: number;
  /** Default: 1 and all cores (one entry when those are equal). */
  threads?: number[];
  warmup?: number;
  latencyRuns?: number;
  batches?: number[];
  throughputRuns?: number;
  inputName?: string;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new AppError('BAD_INPUT', 'percentile of nothing');
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function latencyStats(ms: readonly number[]): LatencyStats {
  const s = [...ms].sort((a, b) => a - b);
  return {
    runs: s.length,
    mean_ms: s.reduce((a, b) => a + b, 0) / s.length,
    p50_ms: percentile(s, 50),
    p90_ms: percentile(s, 90),
    p99_ms: percentile(s, 99),
  };
}

/** A fixed, image-like input (values in about [-2, 2], as normalized pixels are). */
function syntheticInput(n: number, c: number, h: number, w: number): TensorData {
  const data = new Float32Array(n * c * h * w);
  for (let i = 0; i < data.length; i++) data[i] = 2 * Math.sin(i * 0.7071) * Math.cos(i * 0.0123);
  return { dtype: 'float32', dims: [n, c, h, w], data };
}

export async function benchmarkModel(model: Model | Uint8Array, o: BenchmarkOptions): Promise<BenchmarkReport> {
  const c = o.channels ?? 3;
  const threads = o.threads ?? [...new Set([1, os.availableParallelism()])];
  const warmup = o.warmup ?? 5;
  const latencyRuns = o.latencyRuns ?? 50;
  const batches = o.batches ?? [8, 32];
  const throughputRuns = o.throughputRuns ?? 5;
  const inputName = o.inputName ?? 'input';
  const total = threads.length * (latencyRuns + batches.length * throughputRuns);
  let done = 0;
  const tick = () => {
    o.signal?.throwIfAborted();
    o.onProgress?.(++done, total);
  };

  const one = syntheticInput(1, c, o.height, o.width);
  const results: ThreadBenchmark[] = [];
  for (const t of threads) {
    const session = await createSession(model, { threads: t });
    try {
      const run = (x: TensorData) => session.run({ [inputName]: x });
      for (let i = 0; i < warmup; i++) await run(one);
      const ms: number[] = [];
      for (let i = 0; i < latencyRuns; i++) {
        const start = performance.now();
        await run(one);
        ms.push(performance.now() - start);
        tick();
      }
      const throughput: ThroughputStats[] = [];
      for (const b of batches) {
        const x = syntheticInput(b, c, o.height, o.width);
        await run(x); // warm-up at this shape: the first run at a new shape plans memory
        const start = performance.now();
        for (let i = 0; i < throughputRuns; i++) {
          await run(x);
          tick();
        }
        const per = (performance.now() - start) / throughputRuns;
        throughput.push({ batch: b, runs: throughputRuns, ms_per_batch: per, images_per_s: (1000 * b) / per });
      }
      results.push({ threads: t, latency_b1: latencyStats(ms), throughput });
    } finally {
      await session.release();
    }
  }
  return { input: { channels: c, height: o.height, width: o.width }, results, peak_rss_bytes: process.resourceUsage().maxRSS * 1024 };
}
