import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { AppError } from '../kernel/errors.ts';
import { encodeModel } from '../onnx/codec.ts';
import type { Model, TensorData, TypedArray } from '../onnx/ir.ts';

/**
 * Per-node time from onnxruntime's own profiler. onnxruntime writes a Chrome-trace JSON file
 * (`<prefix>_<timestamp>.json`) when profiling ends; it is read here, in a private temp folder that
 * is removed afterwards, because that file is the runtime's output, not workspace data.
 * Names are those of the optimized graph the runtime actually ran: fused nodes (Conv+Relu →
 * FusedConv) appear once, under the first node's name, with the fused op type.
 */

export interface NodeProfileRow {
  node: string;
  opType: string;
  /** Summed kernel time over the profiled runs, microseconds. */
  totalUs: number;
  /** Kernel time per run, microseconds. */
  meanUs: number;
  /** Share of all nodes' kernel time, 0–100. */
  percent: number;
  /** Bytes the node read and wrote per run, as onnxruntime reports them (activation + output size). */
  bytesPerRun: number;
}

export interface ProfileOptions {
  /** Profiled runs after one unprofiled warm-up; default 5. */
  runs?: number;
  threads?: number;
}

const TraceEvent = z.object({
  cat: z.string().optional(),
  name: z.string(),
  dur: z.number().optional(),
  args: z.object({ op_name: z.string().optional(), output_size: z.coerce.number().optional(), activation_size: z.coerce.number().optional() }).loose().optional(),
}).loose();
const Trace = z.array(TraceEvent);
export type ProfileTraceEvent = z.infer<typeof TraceEvent>;

const KERNEL_SUFFIX = '_kernel_time';

function toOrt(t: TensorData): ort.Tensor {
  return new ort.Tensor(t.dtype, t.data as ort.Tensor.DataType & TypedArray, t.dims);
}

export async function profileModel(model: Model | Uint8Array, feeds: Record<string, TensorData>, opts: ProfileOptions = {}): Promise<NodeProfileRow[]> {
  const runs = opts.runs ?? 5;
  if (!Number.isInteger(runs) || runs < 1) throw new AppError('BAD_INPUT', `profile runs must be a positive integer, got ${runs}`);
  const bytes = model instanceof Uint8Array ? model : encodeModel(model);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ai-studio-profile-'));
  try {
    const ortFeeds = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toOrt(v)]));
    const session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: opts.threads ?? os.availableParallelism(),
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionProviders: ['cpu'],
      logSeverityLevel: 3,
      enableProfiling: true,
      profileFilePrefix: path.join(dir, 'ort'),
    });
    try {
      // the first run allocates and plans; its times would dominate the profile
      await session.run(ortFeeds);
      for (let i = 0; i < runs; i++) await session.run(ortFeeds);
      session.endProfiling();
    } finally {
      await session.release();
    }
    const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.json'));
    if (files.length !== 1) throw new AppError('INTERNAL', `onnxruntime wrote ${files.length} profile files`);
    const events = Trace.parse(JSON.parse(await fs.readFile(path.join(dir, files[0]), 'utf8')));
    return aggregateKernelTimes(events, runs + 1, 1);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/**
 * Sums the `<node>_kernel_time` events per node, skipping each node's first `skipPerNode`
 * occurrences (the warm-up run). Sorted by time, slowest first.
 */
export function aggregateKernelTimes(events: readonly ProfileTraceEvent[], totalRuns: number, skipPerNode: number): NodeProfileRow[] {
  const rows = new Map<string, { opType: string; totalUs: number; seen: number; bytes: number }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith(KERNEL_SUFFIX)) continue;
    const node = e.name.slice(0, -KERNEL_SUFFIX.length);
    const row = rows.get(node) ?? { opType: e.args?.op_name ?? '?', totalUs: 0, seen: 0, bytes: 0 };
    row.seen++;
    if (row.seen > skipPerNode) {
      row.totalUs += e.dur ?? 0;
      row.bytes += Number(e.args?.output_size ?? 0) + Number(e.args?.activation_size ?? 0);
    }
    rows.set(node, row);
  }
  const counted = totalRuns - skipPerNode;
  const all = [...rows.values()].reduce((a, r) => a + r.totalUs, 0);
  return [...rows.entries()]
    .map(([node, r]) => ({
      node,
      opType: r.opType,
      totalUs: r.totalUs,
      meanUs: r.totalUs / counted,
      percent: all > 0 ? (100 * r.totalUs) / all : 0,
      bytesPerRun: r.bytes / counted,
    }))
    .sort((a, b) => b.totalUs - a.totalUs);
}
