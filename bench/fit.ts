/**
 * `npm run bench:fit` — end-to-end training throughput, data loading included.
 *
 * Generates a shapes dataset (default 2,000 JPEGs at 224×224, 4 classes), imports it through the
 * API of an in-process studio listening on loopback, and for each model (default
 * mobilenet_v3_small and resnet18, batch 32, input 224) measures:
 *   - the engine's bare step rate: Trainer.step on one fixed batch, nothing else running, before
 *     and after the run (their mean is the reference);
 *   - the run's training images/s over all epochs but the last (metrics.jsonl: loader + steps, as
 *     a user sees it), while the run is only followed once a second as a script or the live page
 *     would, and the loader's cost relative to the bare rate (the goal is ≤ 10 %); also epoch 1's
 *     alone, before the loader holds any decoded image;
 *   - in the last epoch, API and page latency p50/p99 while the run trains (undici against
 *     loopback, sequential, a request pair every 50 ms), and the training rate under that load:
 *     on 2 cores the server's own work for those requests competes with the step, so it is kept
 *     apart from the loader's figure;
 *   - the loader's cost again, in-process, by alternating blocks of loader-fed and fixed-batch
 *     steps (see interleavedLoaderCost): on a machine whose speed drifts by several per cent over
 *     minutes this is the steadier figure; and how long the up-front decode of the training
 *     images took (loader.ts prefillDecoded; the run counts it in epoch 1);
 *   - the process's peak RSS (the training thread lives in it).
 * Prints one JSON line per figure on stdout: {"figure", "model", "value", "unit", "reference"}.
 * Options: --images N, --epochs E, --batch B, --size S, --models a,b, --threads T, --keep.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { request } from 'undici';
import { z } from 'zod';
import { buildApp } from '../src/app.ts';
import { loadSettings } from '../src/config.ts';
import { shapeSvgDocument, SHAPES } from '../src/datasets/synthetic.ts';
import { createModel } from '../src/models/index.ts';
import { Rng } from '../src/models/init.ts';
import { f32, i64 } from '../src/onnx/ir.ts';
import { ResolvedAugmentationSchema } from '../src/schemas/experiment.ts';
import { LoaderThread, type PrefillReport } from '../src/training/data/loader-thread.ts';
import type { LoaderItem } from '../src/training/data/loader.ts';
import { Trainer } from '../src/training/trainer.ts';

const Args = z.object({
  images: z.coerce.number().int().min(8).max(100_000).default(2000),
  epochs: z.coerce.number().int().min(2).max(100).default(3),
  batch: z.coerce.number().int().min(1).max(1024).default(32),
  size: z.coerce.number().int().min(32).max(1024).default(224),
  models: z.string().default('mobilenet_v3_small,resnet18'),
  threads: z.coerce.number().int().min(1).max(256).default(os.availableParallelism()),
  keep: z.boolean().default(false),
});
const { values } = parseArgs({
  options: {
    images: { type: 'string' },
    epochs: { type: 'string' },
    batch: { type: 'string' },
    size: { type: 'string' },
    models: { type: 'string' },
    threads: { type: 'string' },
    keep: { type: 'boolean' },
  },
  strict: true,
});
const a = Args.parse(values);
const CLASSES = SHAPES.slice(0, 4);
// The bare rate is taken before and after the run and averaged: on a shared 2-core machine it
// drifts by a few per cent over minutes, as much as the loader's cost itself.
const BARE_STEPS = 10;

const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;
const emit = (figure: string, model: string | null, value: number, unit: string, reference: string | null) =>
  console.log(JSON.stringify({ figure, model, value: round(value), unit, reference }));
const log = (msg: string) => process.stderr.write(`${msg}\n`);
const pct = (v: number[], p: number) => {
  const s = [...v].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

async function generate(root: string): Promise<void> {
  for (let i = 0; i < a.images; i++) {
    const cls = CLASSES[i % CLASSES.length];
    await fs.mkdir(path.join(root, cls), { recursive: true });
    const jpg = await sharp(Buffer.from(shapeSvgDocument({ shape: cls, size: a.size, seed: i + 1 }))).jpeg({ quality: 90 }).toBuffer();
    await fs.writeFile(path.join(root, cls, `${cls}-${i}.jpg`), jpg);
  }
}

/** A Trainer as the run makes it (AdamW), a fixed random batch, and two warm-up steps taken (the first ones pay for onnxruntime's allocations). */
async function warmTrainer(model: string) {
  const spec = createModel(model, { numClasses: CLASSES.length, inputSize: a.size, seed: 1 });
  const trainer = await Trainer.create(spec.model, { loss: { kind: 'cross_entropy' }, trainable: spec.params, optimizer: { kind: 'adamw', weightDecay: 0.01 }, threads: a.threads });
  const rng = new Rng(1);
  const x = f32([a.batch, 3, a.size, a.size], Float32Array.from({ length: a.batch * 3 * a.size * a.size }, () => rng.normal()));
  const y = i64([a.batch], Array.from({ length: a.batch }, (_, i) => i % CLASSES.length));
  for (let i = 0; i < 2; i++) await trainer.step(x, y, 1e-3);
  return { trainer, x, y };
}

/** Trainer.step on one fixed batch: the engine alone, no decoding, no server. */
async function bareStepRate(model: string): Promise<number> {
  const { trainer, x, y } = await warmTrainer(model);
  const t0 = performance.now();
  for (let i = 0; i < BARE_STEPS; i++) await trainer.step(x, y, 1e-3);
  const ms = (performance.now() - t0) / BARE_STEPS;
  await trainer.release();
  return (a.batch * 1000) / ms;
}

const median = (v: number[]) => pct(v, 50);

/**
 * The loader's cost measured so that machine drift cancels: one Trainer in this process, fed in
 * alternating blocks of about 5 s — steps on batches from a LoaderThread (the training worker's
 * loader, same transform and decoded cache), then steps on a fixed batch. Before each fixed-batch
 * block the loader is given time to fill its two-batch buffer, so it is idle while those run.
 * Returns 1 − median(loaded block rate / the mean of the fixed-batch blocks either side).
 */
async function interleavedLoaderCost(model: string, items: LoaderItem[], pairs = 5): Promise<{ cost: number; loaded: number; bare: number; prefill: PrefillReport | null }> {
  const { trainer, x, y } = await warmTrainer(model);
  let t = performance.now();
  await trainer.step(x, y, 1e-3);
  const steps = Math.max(2, Math.round(5000 / (performance.now() - t)));
  const aug = ResolvedAugmentationSchema.parse({ normalize: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } });
  const loader = LoaderThread.start();
  let prefill: PrefillReport | null = null;
  const batches = loader.batches({
    items,
    batchSize: a.batch,
    transform: { kind: 'train', size: a.size, augmentation: aug },
    normalization: aug.normalize,
    seed: 0,
    epoch: 0,
    shuffle: true,
    dropLast: true,
    onPrefilled: (r) => (prefill = r),
  });
  const bareBlock = async () => {
    await new Promise((r) => setTimeout(r, 1500)); // the loader fills its buffer, then idles
    t = performance.now();
    for (let i = 0; i < steps; i++) await trainer.step(x, y, 1e-3);
    return (steps * a.batch * 1000) / (performance.now() - t);
  };
  const loadedBlock = async () => {
    t = performance.now();
    let n = 0;
    for (let i = 0; i < steps; i++) {
      const next = await batches.next();
      if (next.done) throw new Error('the loader ran out of images; use more --images');
      const b = next.value;
      await trainer.step(f32([b.ids.length, 3, a.size, a.size], b.input), i64([b.ids.length], b.target), 1e-3);
      n += b.ids.length;
    }
    return (n * 1000) / (performance.now() - t);
  };
  try {
    await loadedBlock(); // warm-up: the loader's first batches and the pipeline's start
    const bare = [await bareBlock()];
    const loaded: number[] = [];
    for (let k = 0; k < pairs; k++) {
      loaded.push(await loadedBlock());
      bare.push(await bareBlock());
    }
    const ratios = loaded.map((l, k) => l / ((bare[k] + bare[k + 1]) / 2));
    return { cost: (1 - median(ratios)) * 100, loaded: median(loaded), bare: median(bare), prefill };
  } finally {
    await batches.return(undefined);
    await loader.close();
    await trainer.release();
  }
}

interface Envelope<T> {
  data: T;
}

async function main(): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-fit-'));
  const settings = loadSettings({ STUDIO_WORKSPACE: path.join(dir, 'ws'), STUDIO_EXAMPLE: 'off', HOST: '127.0.0.1', PORT: '0' });
  const app = await buildApp(settings);
  try {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    const base = `http://127.0.0.1:${addr && typeof addr === 'object' ? addr.port : 0}`;
    const api = async <T>(method: 'GET' | 'POST', url: string, body?: unknown): Promise<T> => {
      const res = await request(`${base}${url}`, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
      const json = (await res.body.json()) as Envelope<T> & { error?: { message: string } };
      if (res.statusCode >= 400) throw new Error(`${method} ${url}: ${res.statusCode} ${json.error?.message}`);
      return json.data;
    };

    log(`generating ${a.images} images at ${a.size}×${a.size} …`);
    const src = path.join(dir, 'src');
    await generate(src);
    const srcItems: LoaderItem[] = Array.from({ length: a.images }, (_, i) => {
      const cls = CLASSES[i % CLASSES.length];
      return { path: path.join(src, cls, `${cls}-${i}.jpg`), labelIndex: i % CLASSES.length, width: a.size, height: a.size };
    });
    const pid = (await api<{ id: string }>('POST', '/api/projects', { name: 'bench fit' })).id;
    const imp = await api<{ dataset: { id: string }; job: { id: string } }>('POST', `/api/projects/${pid}/datasets`, { name: 'shapes', source: { kind: 'folder', path: src } });
    for (;;) {
      const job = await api<{ status: string }>('GET', `/api/jobs/${imp.job.id}`);
      if (job.status === 'succeeded') break;
      if (job.status !== 'queued' && job.status !== 'running') throw new Error(`import ${job.status}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const dsId = imp.dataset.id;
    await api('POST', `/api/projects/${pid}/datasets/${dsId}/splits`, { name: 'main', ratios: { train: 0.9, val: 0.1, test: 0 } });

    for (const model of a.models.split(',').map((m) => m.trim()).filter(Boolean)) {
      log(`${model}: bare step rate …`);
      const bareBefore = await bareStepRate(model);

      const exp = await api<{ id: string }>('POST', `/api/projects/${pid}/experiments`, {
        name: `bench ${model}`,
        dataset_id: dsId,
        split_name: 'main',
        model: { architecture: model, input_size: a.size },
        hyperparameters: { epochs: a.epochs, batch_size: a.batch, optimizer: 'adamw' },
      });
      const runs = `/api/projects/${pid}/experiments/${exp.id}/runs`;
      const started = await api<{ run: { id: string } }>('POST', runs);
      const runUrl = `${runs}/${started.run.id}`;
      log(`${model}: training ${a.epochs} epoch(s) through the API …`);
      const apiMs: number[] = [];
      const pageMs: number[] = [];
      const t0 = performance.now();
      let status = 'queued';
      while (status === 'queued' || status === 'running') {
        let t = performance.now();
        const now = await api<{ status: string; metrics: unknown[] }>('GET', runUrl);
        status = now.status;
        // Epochs before the last: followed once a second. The last: the latency probe.
        if (now.metrics.length < a.epochs - 1) {
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        if (status === 'running') apiMs.push(performance.now() - t);
        t = performance.now();
        const page = await request(`${base}/projects/${pid}`, { method: 'GET' });
        await page.body.dump();
        if (status === 'running') pageMs.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 50));
      }
      const wall = (performance.now() - t0) / 1000;
      const run = await api<{ status: string; error: unknown; metrics: Array<{ images_per_s: number; seconds: number }>; config: { split: { train_count: number } } }>('GET', runUrl);
      if (run.status !== 'succeeded') throw new Error(`${model}: run ${run.status}: ${JSON.stringify(run.error)}`);
      log(`${model}: bare step rate again …`);
      const bareAfter = await bareStepRate(model);
      const bare = (bareBefore + bareAfter) / 2;
      emit('bare_step_images_per_s', model, bare, 'img/s', `Trainer.step on a fixed batch of ${a.batch} at ${a.size}, ${a.threads} threads; mean of ${round(bareBefore)} before and ${round(bareAfter)} after the run`);
      const followed = run.metrics.slice(0, -1);
      const trainIps = followed.reduce((sum, m) => sum + m.images_per_s, 0) / followed.length;
      emit('run_train_images_per_s', model, trainIps, 'img/s', `metrics.jsonl images_per_s, mean of epochs 1–${followed.length} (loader + steps; run followed once a second)`);
      emit('loader_cost_pct', model, (1 - trainIps / bare) * 100, '%', `epochs 1–${followed.length} vs bare step rate; goal ≤ 10`);
      emit('loader_cost_epoch1_pct', model, (1 - run.metrics[0].images_per_s / bare) * 100, '%', 'epoch 1 alone: its up-front decode of the training images included');
      const probedIps = run.metrics[run.metrics.length - 1].images_per_s;
      emit('run_train_images_per_s_probed', model, probedIps, 'img/s', 'last epoch, while the latency probe sends a request pair every 50 ms');
      emit('probed_cost_pct', model, (1 - probedIps / bare) * 100, '%', 'last epoch vs bare step rate: loader and the server answering the probe');
      log(`${model}: loader cost by interleaved blocks …`);
      const inter = await interleavedLoaderCost(model, srcItems);
      emit('loader_cost_interleaved_pct', model, inter.cost, '%', `in-process A/B: LoaderThread-fed vs fixed-batch step blocks of ~5 s alternating, decoded images kept (median loaded ${round(inter.loaded)} / bare ${round(inter.bare)} img/s); goal ≤ 10`);
      if (inter.prefill) emit('loader_prefill_s', model, inter.prefill.seconds, 's', `decoding ${inter.prefill.decoded} training images into memory before the first step (${round(inter.prefill.cachedBytes / 2 ** 20, 0)} MiB kept); counted in epoch 1 of the run`);
      emit('run_wall_images_per_s', model, (run.config.split.train_count * a.epochs) / wall, 'img/s', 'train images × epochs / wall time from start (queue, set-up, validation included)');
      emit('api_p50_ms', model, pct(apiMs, 50), 'ms', `GET run JSON while training (${apiMs.length} requests)`);
      emit('api_p99_ms', model, pct(apiMs, 99), 'ms', 'goal < 100');
      emit('page_p50_ms', model, pct(pageMs, 50), 'ms', `GET /projects/:id page while training (${pageMs.length} requests)`);
      emit('page_p99_ms', model, pct(pageMs, 99), 'ms', 'goal < 100');
    }
    emit('peak_rss_mb', null, process.resourceUsage().maxRSS / 1024, 'MiB', 'whole process, training thread included');
  } finally {
    await app.close();
    if (!a.keep) await fs.rm(dir, { recursive: true, force: true });
    else log(`kept ${dir}`);
  }
}

try {
  await main();
} catch (e) {
  process.stderr.write(`bench:fit: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
}
