/**
 * Export variants of catalog models at 224 (random weights): file size, b1 latency p50/p99 and b32
 * throughput per variant (int8: static QDQ, and weight-only as `int8-weights`), through onnxruntime-node
 * on all cores (or --threads N).
 *   npm run bench:export [-- --models mobilenet_v3_small,resnet18 --size 224 --threads 2 --runs 30]
 * Prints one JSON line per figure, then PyTorch's eval figures for the same model, measured right after
 * on the same machine by ../shared/bench/torch_reference.py (`--torch off` skips them).
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { benchmarkModel } from '../src/export/benchmark.ts';
import { calibrateActivations } from '../src/export/calibrate.ts';
import { buildFp16Export } from '../src/export/fp16.ts';
import { buildFp32Export } from '../src/export/fp32.ts';
import { buildInt8Export } from '../src/export/int8.ts';
import { modelStats } from '../src/export/stats.ts';
import { createModel } from '../src/models/index.ts';
import { encodeModel } from '../src/onnx/codec.ts';
import { f32 } from '../src/onnx/ir.ts';
import { torchReference } from './torch-reference.ts';

const Args = z.object({
  models: z.string().default('mobilenet_v3_small,resnet18'),
  size: z.coerce.number().int().min(16).max(1024).default(224),
  threads: z.coerce.number().int().min(1).max(256).default(os.availableParallelism()),
  runs: z.coerce.number().int().min(1).max(10_000).default(30),
  torch: z.enum(['on', 'off']).default('on'),
});

const { values } = parseArgs({ options: { models: { type: 'string' }, size: { type: 'string' }, threads: { type: 'string' }, runs: { type: 'string' }, torch: { type: 'string' } } });
const args = Args.parse(values);
const NUM_CLASSES = 10;

for (const name of args.models.split(',')) {
  const spec = createModel(name, { numClasses: NUM_CLASSES, inputSize: args.size });
  const fp32 = buildFp32Export(spec.model, {}, {
    labels: Array.from({ length: NUM_CLASSES }, (_, i) => `class_${i}`),
    preprocessing: {
      resize: { width: args.size, height: args.size, mode: 'stretch', interpolation: 'bilinear', antialias: true },
      exif_orientation: true, alpha: 'flatten_on_black', color_space: 'sRGB', color: 'RGB', layout: 'NCHW', dtype: 'float32',
      scale: 1 / 255, mean: spec.mean, std: spec.std,
    },
  });
  const stats = modelStats(fp32);
  const base = { engine: 'onnxruntime-node', model: name, size: args.size, threads: args.threads };
  console.log(JSON.stringify({ ...base, params: stats.params, gflops: +(stats.flops / 1e9).toFixed(3) }));
  // random weights and no dataset: calibrate on image-like synthetic batches
  const calib = Array.from({ length: 2 }, (_, b) => ({
    input: f32([8, 3, args.size, args.size], Float32Array.from({ length: 8 * 3 * args.size ** 2 }, (_, i) => 2 * Math.sin(i * 0.37 + b) * Math.cos(i * 1e-3))),
  }));
  const ranges = await calibrateActivations(fp32, calib);
  const variants = [
    ['fp32', fp32], ['fp16', buildFp16Export(fp32)],
    ['int8', buildInt8Export(fp32, { mode: 'static', ranges })], ['int8-weights', buildInt8Export(fp32, { mode: 'weights' })],
  ] as const;
  for (const [variant, model] of variants) {
    const bytes = encodeModel(model);
    const r = await benchmarkModel(bytes, {
      height: args.size, width: args.size, threads: [args.threads], warmup: 3, latencyRuns: args.runs, batches: [32], throughputRuns: 3,
    });
    const t = r.results[0];
    const line = { ...base, variant };
    console.log(JSON.stringify({ ...line, file_mb: +(bytes.length / 2 ** 20).toFixed(2) }));
    console.log(JSON.stringify({ ...line, b1_latency_ms_p50: +t.latency_b1.p50_ms.toFixed(2) }));
    console.log(JSON.stringify({ ...line, b1_latency_ms_p99: +t.latency_b1.p99_ms.toFixed(2) }));
    console.log(JSON.stringify({ ...line, batch: 32, infer_img_per_s: +t.throughput[0].images_per_s.toFixed(2) }));
    console.log(JSON.stringify({ ...line, peak_rss_mb: +(r.peak_rss_bytes / 2 ** 20).toFixed(0) }));
  }
  if (args.torch === 'on') {
    const ref = await torchReference(name, args.size, 32);
    if ('unavailable' in ref) console.log(JSON.stringify({ reference: 'pytorch', model: name, unavailable: ref.unavailable }));
    else for (const line of ref.lines) if ('infer_img_per_s' in line) console.log(JSON.stringify({ ...line, reference: 'pytorch eval (torch_reference.py)' }));
  }
}
