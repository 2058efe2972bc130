import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { mulberry32 } from '../../src/datasets/prng.ts';
import { call, waitForJob } from '../api/helpers.ts';
import { waitForRun } from '../api/runs-fixtures.ts';
import { shape, svg } from '../api/task-fixtures.ts';

/**
 * Small trained runs of the two CSV tasks, made through the API the way a person would: a CSV
 * beside a folder of sharp-rendered images is imported, split, an experiment of `small_cnn` at
 * 32 px trained for 2 epochs, then evaluated. Multi-label: each image holds a random subset of
 * circle, square, triangle (one per quadrant). Regression: one disc whose radius (px) and centre x
 * are the two targets. The evaluation tests need a model, not a good one.
 */

export const ML_CLASSES = ['circle', 'square', 'triangle'];
export const REG_TARGETS = ['radius', 'x'];
const SIZE = 32;

const png = (body: string) => sharp(Buffer.from(svg(body))).png().toBuffer();

async function writeMultilabel(dir: string, n: number): Promise<{ csv: string; root: string }> {
  const rand = mulberry32(7);
  const root = path.join(dir, 'images');
  await fs.mkdir(root, { recursive: true });
  const rows = ['file,labels'];
  for (let i = 0; i < n; i++) {
    // every class present in about half the images; the first three hold one class each
    const on = ML_CLASSES.map((_, k) => (i < 3 ? k === i : rand() < 0.5));
    // jittered centre and size: every image distinct (the import skips duplicates)
    const body = on.map((p, k) => (p ? shape(k, (k % 2) * 16 + 7 + Math.floor(rand() * 3), Math.floor(k / 2) * 16 + 7 + Math.floor(rand() * 3), 5 + Math.floor(rand() * 2)) : '')).join('');
    const file = `ml-${i}.png`;
    await fs.writeFile(path.join(root, file), await png(body));
    rows.push(`${file},${ML_CLASSES.filter((_, k) => on[k]).join(';')}`);
  }
  const csv = path.join(dir, 'labels.csv');
  await fs.writeFile(csv, `${rows.join('\n')}\n`);
  return { csv, root };
}

async function writeRegression(dir: string, n: number): Promise<{ csv: string; root: string }> {
  const rand = mulberry32(11);
  const root = path.join(dir, 'images');
  await fs.mkdir(root, { recursive: true });
  const rows = ['file,radius,x'];
  for (let i = 0; i < n; i++) {
    const r = 3 + Math.round(rand() * 60) / 10;
    const cx = Math.round(10 + rand() * 12);
    const file = `disc-${i}.png`;
    await fs.writeFile(path.join(root, file), await png(shape(0, cx, 16, r)));
    rows.push(`${file},${r},${cx}`);
  }
  const csv = path.join(dir, 'targets.csv');
  await fs.writeFile(csv, `${rows.join('\n')}\n`);
  return { csv, root };
}

export interface TaskRun {
  task: 'multilabel' | 'regression';
  pid: string;
  datasetId: string;
  expId: string;
  runId: string;
  /** /api/projects/:pid/experiments/:exp/evaluation */
  evalUrl: string;
}

/** Imports, splits (60/20/20), trains 2 epochs and, with `evaluate`, evaluates test+val. */
export async function trainedTaskRun(app: FastifyInstance, dir: string, task: TaskRun['task'], opts: { n?: number; evaluate?: boolean } = {}): Promise<TaskRun> {
  const n = opts.n ?? 60;
  const d = path.join(dir, `${task}-data`);
  const files = task === 'multilabel' ? await writeMultilabel(d, n) : await writeRegression(d, n);
  const source = task === 'multilabel' ? { kind: 'csv', path: files.csv, images_root: files.root } : { kind: 'csv', path: files.csv, images_root: files.root, target_columns: REG_TARGETS };
  const pid = (await call<{ id: string }>(app, 'POST', '/api/projects', { name: `${task} eval` })).body.data.id;
  const started = await call<{ dataset: { id: string }; job: { id: string } }>(app, 'POST', `/api/projects/${pid}/datasets`, { name: `${task} set`, task, source });
  if (started.status !== 202) throw new Error(`import refused: ${JSON.stringify(started.body)}`);
  const job = await waitForJob(app, started.body.data.job.id, 60_000);
  if (job.status !== 'succeeded') throw new Error(`import ${String(job.status)}: ${JSON.stringify(job.error)}`);
  const datasetId = started.body.data.dataset.id;
  const split = await call(app, 'POST', `/api/projects/${pid}/datasets/${datasetId}/splits`, { name: 'main', ratios: { train: 0.6, val: 0.2, test: 0.2 }, stratify: true, seed: 1 });
  if (split.status !== 201) throw new Error(`split refused: ${JSON.stringify(split.body)}`);
  const exp = await call<{ id: string }>(app, 'POST', `/api/projects/${pid}/experiments`, {
    name: `${task} cnn`,
    dataset_id: datasetId,
    split_name: 'main',
    model: { architecture: 'small_cnn', input_size: SIZE },
    hyperparameters: { epochs: 2, batch_size: 8, seed: 1 },
    augmentation: { random_resized_crop: { enabled: false }, horizontal_flip: { enabled: false } },
  });
  if (exp.status !== 201) throw new Error(`experiment refused: ${JSON.stringify(exp.body)}`);
  const runs = `/api/projects/${pid}/experiments/${exp.body.data.id}/runs`;
  const run = (await call<{ run: { id: string } }>(app, 'POST', runs)).body.data.run;
  const done = await waitForRun(app, `${runs}/${run.id}`);
  if (done.status !== 'succeeded') throw new Error(`training ${done.status}: ${JSON.stringify(done.error)}`);
  const evalUrl = `/api/projects/${pid}/experiments/${exp.body.data.id}/evaluation`;
  const out: TaskRun = { task, pid, datasetId, expId: exp.body.data.id, runId: run.id, evalUrl };
  if (opts.evaluate) {
    const ev = await call<{ job: { id: string } }>(app, 'POST', evalUrl, { run_id: run.id, checkpoint: 'best', subsets: ['test', 'val'] });
    if (ev.status !== 202) throw new Error(`evaluation refused: ${JSON.stringify(ev.body)}`);
    const j = await waitForJob(app, ev.body.data.job.id, 60_000);
    if (j.status !== 'succeeded') throw new Error(`evaluation ${String(j.status)}: ${JSON.stringify(j.error)}`);
  }
  return out;
}
