import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { mulberry32 } from '../../src/datasets/prng.ts';
import { call, waitForJob } from './helpers.ts';

/**
 * Shared set-up of the experiments/runs/models API tests: a project with a generated 4-class
 * shapes dataset (sharp-rendered) imported through the API, and a stratified split `main`.
 */
export const SHAPE_CLASSES = ['circle', 'square', 'triangle', 'cross'];

/**
 * One shape filling a third to a half of the image, at a jittered place, in a random colour on a
 * random light background: the class is the outline alone, learnable by a tiny CNN in a few epochs.
 */
function shapeSvg(shape: string, size: number, seed: number): string {
  const rnd = mulberry32(seed);
  const r = size * (0.2 + rnd() * 0.1);
  const cx = r + rnd() * (size - 2 * r);
  const cy = r + rnd() * (size - 2 * r);
  const fill = `hsl(${Math.round(rnd() * 360)},${60 + Math.round(rnd() * 30)}%,${30 + Math.round(rnd() * 20)}%)`;
  const bg = `hsl(${Math.round(rnd() * 360)},${Math.round(rnd() * 30)}%,${80 + Math.round(rnd() * 15)}%)`;
  const f = (v: number) => v.toFixed(1);
  const body =
    shape === 'circle'
      ? `<circle cx="${f(cx)}" cy="${f(cy)}" r="${f(r)}"/>`
      : shape === 'square'
        ? `<rect x="${f(cx - r * 0.85)}" y="${f(cy - r * 0.85)}" width="${f(r * 1.7)}" height="${f(r * 1.7)}"/>`
        : shape === 'triangle'
          ? `<polygon points="${f(cx)},${f(cy - r)} ${f(cx + r)},${f(cy + r * 0.8)} ${f(cx - r)},${f(cy + r * 0.8)}"/>`
          : `<path d="M${f(cx - r)} ${f(cy - r / 3)}h${f(2 * r)}v${f((2 * r) / 3)}h${f(-2 * r)}z M${f(cx - r / 3)} ${f(cy - r)}h${f((2 * r) / 3)}v${f(2 * r)}h${f((-2 * r) / 3)}z"/>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}"><rect width="100%" height="100%" fill="${bg}"/><g fill="${fill}">${body}</g></svg>`;
}

/** An ImageNet-style folder `<dir>/<class>/<class>-N.png` of `perClass` shapes per class. */
export async function writeShapesFolder(dir: string, perClass: number, size: number, seed = 1): Promise<void> {
  for (const [ci, cls] of SHAPE_CLASSES.entries()) {
    await fs.mkdir(path.join(dir, cls), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const png = await sharp(Buffer.from(shapeSvg(cls, size, seed * 1_000_003 + ci * 10_007 + i))).png().toBuffer();
      await fs.writeFile(path.join(dir, cls, `${cls}-${i}.png`), png);
    }
  }
}

export interface ShapesProject {
  pid: string;
  datasetId: string;
}

export async function makeShapesProject(
  app: FastifyInstance,
  dir: string,
  opts: { perClass: number; size: number; ratios?: { train: number; val: number; test: number }; seed?: number },
): Promise<ShapesProject> {
  const pid = (await call<{ id: string }>(app, 'POST', '/api/projects', { name: 'training' })).body.data.id;
  const src = path.join(dir, `shapes-${opts.perClass}-${opts.size}`);
  await writeShapesFolder(src, opts.perClass, opts.size, opts.seed ?? 3);
  const started = await call<{ dataset: { id: string }; job: { id: string } }>(app, 'POST', `/api/projects/${pid}/datasets`, {
    name: 'shapes',
    task: 'classification',
    source: { kind: 'folder', path: src },
  });
  if (started.status !== 202) throw new Error(`import refused: ${JSON.stringify(started.body)}`);
  const job = await waitForJob(app, started.body.data.job.id, 60_000);
  if (job.status !== 'succeeded') throw new Error(`import ${String(job.status)}`);
  const datasetId = started.body.data.dataset.id;
  const split = await call(app, 'POST', `/api/projects/${pid}/datasets/${datasetId}/splits`, {
    name: 'main',
    ratios: opts.ratios ?? { train: 0.7, val: 0.3, test: 0 },
    stratify: true,
    seed: 1,
  });
  if (split.status !== 201) throw new Error(`split refused: ${JSON.stringify(split.body)}`);
  return { pid, datasetId };
}

/** Augmentation that keeps the shape in view (the default crop may cut a small shape away). */
export const GENTLE_AUGMENTATION = {
  random_resized_crop: { enabled: true, scale: [0.7, 1] },
  horizontal_flip: { enabled: true },
};

export interface RunView {
  id: string;
  status: string;
  job_id: string | null;
  epochs_done: number;
  resumes: number;
  best: { epoch: number; metric: string; value: number } | null;
  error: { code: string; message: string } | null;
  stop_reason: string | null;
  metrics: Array<{ epoch: number; train_loss: number; train_accuracy: number; val_loss: number | null; val_accuracy: number | null; lr: number; images_per_s: number; seconds: number }>;
  checkpoints: Array<{ name: string; epoch: number; sha256: string; bytes: number }>;
  config: Record<string, unknown> | null;
}

/** Polls a run until it is no longer queued or running. */
export async function waitForRun(app: FastifyInstance, url: string, timeoutMs = 120_000): Promise<RunView> {
  const t0 = Date.now();
  for (;;) {
    const run = (await call<RunView>(app, 'GET', url)).body.data;
    if (!['queued', 'running'].includes(run.status)) return run;
    if (Date.now() - t0 > timeoutMs) throw new Error(`run still ${run.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Polls until `pred` holds for the run. */
export async function waitUntil(app: FastifyInstance, url: string, pred: (r: RunView) => boolean, timeoutMs = 120_000): Promise<RunView> {
  const t0 = Date.now();
  for (;;) {
    const run = (await call<RunView>(app, 'GET', url)).body.data;
    if (pred(run)) return run;
    if (Date.now() - t0 > timeoutMs) throw new Error(`condition not met after ${timeoutMs} ms (run ${run.status}, ${run.epochs_done} epochs)`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
