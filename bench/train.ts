/**
 * Training and inference throughput of one model on this machine, through the studio's own engine
 * (the Trainer's compiled training step; a plain inference session for the forward figures).
 *   npm run bench:train -- --model resnet18 --size 224 --batch 32 [--steps 5] [--threads 2]
 * `--model` is a catalog name or a path to an .onnx file (imported as a backbone).
 * Prints our JSON line, then PyTorch's lines from `python3 ../shared/bench/torch_reference.py MODEL
 * SIZE BATCH` run right after (same protocol: SGD momentum 0.9, cross-entropy, 10 classes, 2 warm-up
 * steps) and the ratios; `--torch off` skips the reference. `--rounds R` (default 1) alternates our
 * training steps and PyTorch's script R times in the same sitting and ends with the per-round train
 * ratios and their median: on a shared machine whose speed drifts by tens of percent within minutes,
 * one pair is not a measurement. `--spinning on` lets onnxruntime's
 * threads spin between ops as PyTorch's OpenMP threads do (the studio's runs do not: see
 * TrainerOptions.spinning).
 */
import fs from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { createModel, importOnnxBytes, listModels, type ModelSpec } from '../src/models/index.ts';
import { Rng } from '../src/models/init.ts';
import { f32, i64 } from '../src/onnx/ir.ts';
import { createSession } from '../src/runtime/session.ts';
import { Trainer } from '../src/training/trainer.ts';
import { torchReference } from './torch-reference.ts';

const Args = z.object({
  model: z.string().min(1),
  size: z.coerce.number().int().min(16).max(1024).optional(),
  batch: z.coerce.number().int().min(1).max(1024).default(32),
  steps: z.coerce.number().int().min(1).max(1000).default(5),
  threads: z.coerce.number().int().min(1).max(256).default(os.availableParallelism()),
  torch: z.enum(['on', 'off']).default('on').transform((v) => v === 'on'),
  rounds: z.coerce.number().int().min(1).max(50).default(1),
  // the studio's training runs step without spinning (the data loader needs the core time);
  // PyTorch's OpenMP threads spin by default: `--spinning on` measures the engine as PyTorch runs
  spinning: z.enum(['on', 'off']).default('off').transform((v) => v === 'on'),
});

const NUM_CLASSES = 10;
const WARMUP = 2;
const LATENCY_RUNS = 20;

function loadSpec(model: string, size: number | undefined): ModelSpec {
  if (model.endsWith('.onnx')) return importOnnxBytes(new Uint8Array(fs.readFileSync(model)), { numClasses: NUM_CLASSES, name: model });
  return createModel(model, { numClasses: NUM_CLASSES, ...(size !== undefined ? { inputSize: size } : {}) });
}

async function time(runs: number, fn: () => Promise<unknown>): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return ms;
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (v: number, d: number) => Math.round(v * 10 ** d) / 10 ** d;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { model: { type: 'string' }, size: { type: 'string' }, batch: { type: 'string' }, steps: { type: 'string' }, threads: { type: 'string' }, torch: { type: 'string' }, rounds: { type: 'string' }, spinning: { type: 'string' } },
    strict: true,
  });
  const a = Args.parse(values);
  const spec = loadSpec(a.model, a.size);
  const s = spec.inputSize;
  const rng = new Rng(1);
  const x = f32([a.batch, 3, s, s], Float32Array.from({ length: a.batch * 3 * s * s }, () => rng.normal()));
  const y = i64([a.batch], Array.from({ length: a.batch }, () => Math.floor(rng.uniform() * NUM_CLASSES)));

  const trainer = await Trainer.create(spec.model, {
    loss: { kind: 'cross_entropy' }, trainable: spec.params, optimizer: { kind: 'sgd', momentum: 0.9 }, threads: a.threads, spinning: a.spinning,
  });
  // released however the measuring ends (PyTorch missing, a failed run)
  try {
    await time(WARMUP, () => trainer.step(x, y, 0.01));
    const stepMs = mean(await time(a.steps, () => trainer.step(x, y, 0.01)));
    // The training peak, taken before the inference session opens beside the trainer (kept for --rounds).
    const peakRssMb = process.resourceUsage().maxRSS / 1024;

    const session = await createSession(spec.model, { threads: a.threads });
    await time(WARMUP, () => session.run({ input: x }));
    const inferMs = mean(await time(a.steps, () => session.run({ input: x })));
    const x1 = f32([1, 3, s, s], x.data.slice(0, 3 * s * s) as Float32Array);
    await time(3, () => session.run({ input: x1 }));
    const latency = median(await time(LATENCY_RUNS, () => session.run({ input: x1 })));
    await session.release();

    const ours = {
      model: spec.name,
      size: s,
      batch: a.batch,
      threads: a.threads,
      spinning: a.spinning,
      train_img_per_s: round((a.batch * 1000) / stepMs, 2),
      train_step_ms: round(stepMs, 1),
      infer_img_per_s: round((a.batch * 1000) / inferMs, 2),
      b1_latency_ms_p50: round(latency, 2),
      // maxRSS is in kibibytes.
      peak_rss_mb: round(peakRssMb, 1),
    };
    process.stdout.write(`${JSON.stringify(ours)}\n`);
    if (!a.torch || a.model.endsWith('.onnx')) {
      return;
    }
    // The reference, measured right after ours on the same machine (a catalog name only); with
    // --rounds, our steps and PyTorch's script alternate, ours stepping on the same warm trainer.
    const rounds: { ours_step_ms: number; pytorch_step_ms: number; ratio: number }[] = [];
    let ourStep = stepMs;
    for (let r = 0; r < a.rounds; r++) {
      if (r > 0) {
        // warm again after PyTorch's run, as its script warms up before timing
        await time(WARMUP, () => trainer.step(x, y, 0.01));
        ourStep = mean(await time(a.steps, () => trainer.step(x, y, 0.01)));
      }
      const ref = await torchReference(a.model, s, a.batch);
      if ('unavailable' in ref) {
        process.stdout.write(`${JSON.stringify({ reference: 'pytorch', unavailable: ref.unavailable })}\n`);
        return;
      }
      for (const line of ref.lines) process.stdout.write(`${JSON.stringify(r > 0 ? { round: r + 1, ...line } : line)}\n`);
      const train = ref.lines.find((l) => typeof l.train_img_per_s === 'number')?.train_img_per_s;
      const infer = ref.lines.find((l) => typeof l.infer_img_per_s === 'number')?.infer_img_per_s;
      const torchStep = ref.lines.find((l) => typeof l.train_step_ms === 'number')?.train_step_ms;
      if (r === 0) {
        process.stdout.write(`${JSON.stringify({
          model: spec.name,
          train_ratio_vs_pytorch: typeof train === 'number' ? round(ours.train_img_per_s / train, 3) : null,
          infer_ratio_vs_pytorch: typeof infer === 'number' ? round(ours.infer_img_per_s / infer, 3) : null,
        })}\n`);
      }
      if (typeof torchStep === 'number') rounds.push({ ours_step_ms: round(ourStep, 1), pytorch_step_ms: torchStep, ratio: round(torchStep / ourStep, 3) });
    }
    if (a.rounds > 1 && rounds.length > 0) {
      process.stdout.write(`${JSON.stringify({
        model: spec.name,
        rounds: rounds.length,
        ours_step_ms: rounds.map((r) => r.ours_step_ms),
        pytorch_step_ms: rounds.map((r) => r.pytorch_step_ms),
        train_ratios: rounds.map((r) => r.ratio),
        train_ratio_median: round(median(rounds.map((r) => r.ratio)), 3),
      })}\n`);
    }
  } finally {
    await trainer.release();
  }
}

try {
  await main();
} catch (e) {
  // A command-line tool: say what went wrong in one line rather than with a stack trace.
  process.stderr.write(`bench:train: ${e instanceof Error ? e.message : String(e)} (models: ${listModels().join(', ')}, or a path to an .onnx file)\n`);
  process.exitCode = 1;
}
