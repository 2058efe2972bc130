/**
 * Evaluation throughput: images per second through the evaluation engine (read, decode, eval
 * transform, the inference graph export writes, top-k, metrics) on generated 224×224 JPEGs, beside
 * the bare inference rate of the same graph on a batch already in memory.
 *   npm run bench:eval -- [--images 2000] [--models mobilenet_v3_small,resnet18] [--batch 32] [--threads N]
 * Prints one JSON line per figure. The weights are a fresh initialisation: the rate does not depend
 * on what a model has learned.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { renderShapeImage, SHAPES } from '../src/datasets/synthetic.ts';
import { createPredictor, runEvaluation, type EvalItem } from '../src/evaluation/run-evaluation.ts';
import { createModel, type ModelSpec } from '../src/models/index.ts';
import { Rng } from '../src/models/init.ts';

const Args = z.object({
  images: z.coerce.number().int().min(1).max(100_000).default(2000),
  models: z.string().default('mobilenet_v3_small,resnet18'),
  batch: z.coerce.number().int().min(1).max(256).default(32),
  threads: z.coerce.number().int().min(1).max(256).default(os.availableParallelism()),
});

const SIZE = 224;
const NUM_CLASSES = SHAPES.length;
const INFERENCE_RUNS = 5;

const round = (v: number, d: number) => Math.round(v * 10 ** d) / 10 ** d;

function emit(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: 'eval', ...fields })}\n`);
}

/** N generated JPEGs (one shape each), written once and shared by every model. */
async function makeImages(dir: string, n: number): Promise<EvalItem[]> {
  const items: EvalItem[] = [];
  for (let i = 0; i < n; i++) {
    const labelIndex = i % NUM_CLASSES;
    const file = `images/${i.toString(16).padStart(16, '0')}.jpg`;
    const bytes = await renderShapeImage({ shape: SHAPES[labelIndex], size: SIZE, seed: i, format: 'jpeg' });
    await fs.writeFile(path.join(dir, file), bytes);
    items.push({ image_id: `img-${i.toString(36).padStart(8, '0')}`, file, path: path.join(dir, file), subset: 'test', labelIndex });
  }
  return items;
}

function paramsOf(spec: ModelSpec) {
  return Object.fromEntries([...spec.params, ...spec.bnStats].map((n) => [n, spec.model.graph.initializers.get(n)!]));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { images: { type: 'string' }, models: { type: 'string' }, batch: { type: 'string' }, threads: { type: 'string' } },
    strict: true,
  });
  const a = Args.parse(values);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-eval-'));
  try {
    await fs.mkdir(path.join(dir, 'images'));
    const items = await makeImages(dir, a.images);
    const labels = SHAPES.map(String);
    for (const name of a.models.split(',').map((m) => m.trim()).filter(Boolean)) {
      const spec = createModel(name, { numClasses: NUM_CLASSES, inputSize: SIZE, seed: 1 });
      const params = paramsOf(spec);
      const common = { model: name, size: SIZE, batch: a.batch, threads: a.threads, images: a.images, cpu: os.cpus()[0]?.model ?? 'unknown' };

      // bare inference: the same inference graph on one batch already in memory
      const predictor = await createPredictor(spec.model, params, { threads: a.threads });
      const rng = new Rng(1);
      const x = Float32Array.from({ length: a.batch * 3 * SIZE * SIZE }, () => rng.normal());
      await predictor.predict(x, a.batch, SIZE);
      const t0 = performance.now();
      for (let i = 0; i < INFERENCE_RUNS; i++) await predictor.predict(x, a.batch, SIZE);
      const inferS = (performance.now() - t0) / 1000;
      await predictor.release();
      emit({ ...common, figure: 'inference_images_per_s', value: round((INFERENCE_RUNS * a.batch) / inferS, 1) });

      // the whole evaluation: files → decode → eval transform → inference → records → metrics
      for (const tta of [false, true]) {
        const t1 = performance.now();
        const out = await runEvaluation({ model: spec.model, params, labels, items, size: SIZE, normalization: { mean: spec.mean, std: spec.std }, batchSize: a.batch, tta, threads: a.threads });
        const evalS = (performance.now() - t1) / 1000;
        emit({ ...common, figure: tta ? 'eval_tta_images_per_s' : 'eval_images_per_s', value: round(out.records.length / evalS, 1), seconds: round(evalS, 2) });
      }
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

await main();
