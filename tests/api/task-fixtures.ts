import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { mulberry32 } from '../../src/datasets/prng.ts';
import { call, waitForJob } from './helpers.ts';

/**
 * Projects of the two CSV tasks, imported through the API the way a person would (a CSV beside a
 * folder of images) and split: a multi-label set of shapes (each image holds a random subset of
 * circle, square, triangle — grey on black, one per quadrant, so shape is the only cue) and a
 * regression set of discs whose radius in pixels is the target. Both learnable by `small_cnn` at
 * 32×32 in a few seconds. Shared by the API, page and export tests of these tasks.
 */

export const MULTILABEL_CLASSES = ['circle', 'square', 'triangle'];
export const SIZE = 32;

/** One grey shape (0 circle, 1 square, 2 triangle) at (cx, cy), of half-size r, as SVG. */
export function shape(kind: number, cx: number, cy: number, r: number): string {
  const fill = 'fill="#c8c8c8"';
  if (kind === 0) return `<circle cx="${cx}" cy="${cy}" r="${r}" ${fill}/>`;
  if (kind === 1) return `<rect x="${cx - r}" y="${cy - r}" width="${2 * r}" height="${2 * r}" ${fill}/>`;
  return `<polygon points="${cx},${cy - r} ${cx + r},${cy + r} ${cx - r},${cy + r}" ${fill}/>`;
}

/** A 32×32 black SVG holding `body`. */
export const svg = (body: string) => `<svg xmlns="http://www.w3.org/2000/svg" width="${SIZE}" height="${SIZE}"><rect width="${SIZE}" height="${SIZE}" fill="#000"/>${body}</svg>`;

/** `<dir>/images/ml-N.png` and `<dir>/labels.csv` (`file,labels` with `;` between labels; an empty cell: no shape). */
export async function writeMultilabelCsv(dir: string, n: number, seed = 1): Promise<{ csv: string; root: string; truth: string[][] }> {
  const rand = mulberry32(seed);
  const root = path.join(dir, 'images');
  await fs.mkdir(root, { recursive: true });
  const rows = ['file,labels'];
  const truth: string[][] = [];
  for (let i = 0; i < n; i++) {
    const on = MULTILABEL_CLASSES.map(() => rand() < 0.5);
    const quadrants = [0, 1, 2, 3].sort(() => rand() - 0.5);
    const parts = on.flatMap((present, k) => {
      if (!present) return [];
      const q = quadrants[k];
      const r = 5 + Math.floor(rand() * 2);
      return [shape(k, (q % 2) * 16 + 8 + Math.floor(rand() * 3) - 1, Math.floor(q / 2) * 16 + 8 + Math.floor(rand() * 3) - 1, r)];
    });
    const file = `ml-${i}.png`;
    await fs.writeFile(path.join(root, file), await sharp(Buffer.from(svg(parts.join('')))).png().toBuffer());
    const labels = MULTILABEL_CLASSES.filter((_, k) => on[k]);
    truth.push(labels);
    rows.push(`${file},${labels.join(';')}`);
  }
  const csv = path.join(dir, 'labels.csv');
  await fs.writeFile(csv, `${rows.join('\n')}\n`);
  return { csv, root, truth };
}

/** `<dir>/images/disc-N.png` and `<dir>/targets.csv` (`file,radius`): a grey disc of radius 3–12 px at a jittered centre. */
export async function writeRegressionCsv(dir: string, n: number, seed = 1): Promise<{ csv: string; root: string; radii: number[] }> {
  const rand = mulberry32(seed);
  const root = path.join(dir, 'images');
  await fs.mkdir(root, { recursive: true });
  const rows = ['file,radius'];
  const radii: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = 3 + Math.round(rand() * 90) / 10;
    const cx = 16 + Math.round((rand() - 0.5) * (30 - 2 * r));
    const cy = 16 + Math.round((rand() - 0.5) * (30 - 2 * r));
    const file = `disc-${i}.png`;
    await fs.writeFile(path.join(root, file), await sharp(Buffer.from(svg(shape(0, cx, cy, r)))).png().toBuffer());
    radii.push(r);
    rows.push(`${file},${r}`);
  }
  const csv = path.join(dir, 'targets.csv');
  await fs.writeFile(csv, `${rows.join('\n')}\n`);
  return { csv, root, radii };
}

export interface TaskProject {
  pid: string;
  datasetId: string;
}

async function importAndSplit(app: FastifyInstance, name: string, task: string, source: Record<string, unknown>): Promise<TaskProject> {
  const pid = (await call<{ id: string }>(app, 'POST', '/api/projects', { name })).body.data.id;
  const started = await call<{ dataset: { id: string }; job: { id: string } }>(app, 'POST', `/api/projects/${pid}/datasets`, { name, task, source });
  if (started.status !== 202) throw new Error(`import refused: ${JSON.stringify(started.body)}`);
  const job = await waitForJob(app, started.body.data.job.id, 60_000);
  if (job.status !== 'succeeded') throw new Error(`import ${String(job.status)}`);
  const datasetId = started.body.data.dataset.id;
  const split = await call(app, 'POST', `/api/projects/${pid}/datasets/${datasetId}/splits`, { name: 'main', ratios: { train: 0.7, val: 0.3, test: 0 }, stratify: true, seed: 1 });
  if (split.status !== 201) throw new Error(`split refused: ${JSON.stringify(split.body)}`);
  return { pid, datasetId };
}

export async function makeMultilabelProject(app: FastifyInstance, dir: string, n = 320): Promise<TaskProject> {
  const d = path.join(dir, `multilabel-${n}`);
  const { csv, root } = await writeMultilabelCsv(d, n);
  return importAndSplit(app, 'shapes ml', 'multilabel', { kind: 'csv', path: csv, images_root: root });
}

export async function makeRegressionProject(app: FastifyInstance, dir: string, n = 320): Promise<TaskProject> {
  const d = path.join(dir, `regression-${n}`);
  const { csv, root } = await writeRegressionCsv(d, n);
  return importAndSplit(app, 'discs', 'regression', { kind: 'csv', path: csv, images_root: root, target_columns: ['radius'] });
}

/** No augmentation that moves shapes between quadrants or cuts a disc: the tasks' cues are position-free but must stay whole. */
export const NO_AUGMENTATION = {
  random_resized_crop: { enabled: false },
  horizontal_flip: { enabled: false },
};

/** A test-sized recipe that learns both sets (12 epochs of AdamW, cosine). */
export const QUICK_HYPERPARAMETERS = { epochs: 12, batch_size: 32, optimizer: 'adamw', lr: 0.003, weight_decay: 1e-4, scheduler: 'cosine', seed: 3 };
