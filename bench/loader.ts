/**
 * Images/s of the training data loader on generated 224×224 JPEGs.
 *   npx tsx bench/loader.ts [--images 256] [--size 224] [--batch 32]
 * Prints one JSON line per figure:
 *   - decode+eval transform and decode+train augmentation alone, at several concurrencies;
 *   - overlap: the loader feeding a consumer that blocks its thread for `--step-ms` per batch (the
 *     worst case of a synchronous training step); `loader_overhead` is (wall − steps) / steps,
 *     0 when decoding hides entirely behind the steps.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { SHAPES, renderShapeImage } from '../src/datasets/synthetic.ts';
import { ResolvedAugmentationSchema } from '../src/schemas/experiment.ts';
import { evalTransform, loadBatches, trainTransform, type Batch, type ImageTransform, type LoaderItem } from '../src/training/data/loader.ts';
import { LoaderThread } from '../src/training/data/loader-thread.ts';

const Args = z.object({
  images: z.coerce.number().int().min(8).max(100_000).default(256),
  size: z.coerce.number().int().min(16).max(1024).default(224),
  batch: z.coerce.number().int().min(1).max(1024).default(32),
  'step-ms': z.coerce.number().min(0).max(10_000).default(400),
});

const NORM = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } as const;
const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;
const emit = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ bench: 'loader', ...o })}\n`);

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // a synchronous step holds the thread; only libuv's pool keeps decoding
  }
}

async function epoch(items: LoaderItem[], a: z.infer<typeof Args>, transform: ImageTransform, concurrency: number, prefetch: number, stepMs: number) {
  return consume(loadBatches({ items, batchSize: a.batch, size: a.size, normalization: NORM, transform, seed: 0, epoch: 0, shuffle: true, dropLast: false, concurrency, prefetch }), stepMs);
}

async function consume(source: AsyncIterable<Batch>, stepMs: number) {
  const t = performance.now();
  let n = 0;
  let batches = 0;
  for await (const b of source) {
    n += b.ids.length;
    batches++;
    if (stepMs > 0) busyWait(stepMs);
  }
  return { seconds: (performance.now() - t) / 1000, images: n, batches };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { images: { type: 'string' }, size: { type: 'string' }, batch: { type: 'string' }, 'step-ms': { type: 'string' } }, strict: true });
  const a = Args.parse(values);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-loader-'));
  try {
    const items: LoaderItem[] = [];
    for (let i = 0; i < a.images; i++) {
      const file = path.join(dir, `${i}.jpg`);
      await fs.writeFile(file, await renderShapeImage({ shape: SHAPES[i % SHAPES.length], size: 224, seed: i, format: 'jpeg' }));
      items.push({ path: file, labelIndex: i % SHAPES.length });
    }
    const augDefault = ResolvedAugmentationSchema.parse({ normalize: NORM });
    const augAll = ResolvedAugmentationSchema.parse({
      normalize: NORM,
      rotation: { enabled: true },
      color_jitter: { enabled: true },
      grayscale: { enabled: true },
    });
    const transforms: [string, ImageTransform][] = [
      ['eval', evalTransform(a.size)],
      ['train_default', trainTransform(a.size, augDefault)],
      ['train_all', trainTransform(a.size, augAll)],
    ];
    const cpus = os.availableParallelism();
    const env = { cpus, uv_threadpool_size: Number(process.env.UV_THREADPOOL_SIZE ?? 4), size: a.size, batch: a.batch, images: a.images };
    await epoch(items.slice(0, a.batch), a, transforms[0][1], cpus, 2, 0); // warm-up: libvips init, page cache
    for (const [name, transform] of transforms) {
      for (const concurrency of [1, 2, 4]) {
        const r = await epoch(items, a, transform, concurrency, 2, 0);
        emit({ figure: 'images_per_s', transform: name, concurrency, value: round(r.images / r.seconds), ...env });
      }
    }
    // Overlap with a synchronous step: the steps alone take batches × step-ms.
    for (const [name, transform] of transforms.slice(1, 2)) {
      for (const prefetch of [0, 2]) {
        const r = await epoch(items, a, transform, cpus, prefetch, a['step-ms']);
        const steps = (r.batches * a['step-ms']) / 1000;
        emit({ figure: 'overlap', thread: 'same', transform: name, prefetch, step_ms: a['step-ms'], wall_s: round(r.seconds, 2), steps_s: round(steps, 2), loader_overhead: round((r.seconds - steps) / steps, 3), images_per_s: round(r.images / r.seconds), ...env });
      }
    }
    // The same with the loader on its own thread (LoaderThread): decoding continues during the step.
    const thread = LoaderThread.start();
    try {
      const opts = { items, batchSize: a.batch, normalization: NORM, seed: 0, epoch: 0, shuffle: true, dropLast: false, concurrency: cpus, prefetch: 2 };
      await consume(thread.batches({ ...opts, items: items.slice(0, a.batch), transform: { kind: 'eval', size: a.size } }), 0); // thread start-up
      const alone = await consume(thread.batches({ ...opts, transform: { kind: 'train', size: a.size, augmentation: augDefault } }), 0);
      emit({ figure: 'images_per_s', thread: 'loader', transform: 'train_default', concurrency: cpus, value: round(alone.images / alone.seconds), ...env });
      const r = await consume(thread.batches({ ...opts, transform: { kind: 'train', size: a.size, augmentation: augDefault } }), a['step-ms']);
      const steps = (r.batches * a['step-ms']) / 1000;
      emit({ figure: 'overlap', thread: 'loader', transform: 'train_default', prefetch: 2, step_ms: a['step-ms'], wall_s: round(r.seconds, 2), steps_s: round(steps, 2), loader_overhead: round((r.seconds - steps) / steps, 3), images_per_s: round(r.images / r.seconds), ...env });
    } finally {
      await thread.close();
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

await main();
