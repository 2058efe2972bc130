import { promises as fs } from 'node:fs';
import path from 'node:path';
import { renderShapeImage, type Shape } from '../../src/datasets/synthetic.ts';
import type { ExportImage } from '../../src/export/run-export.ts';
import { createModel, type ModelSpec } from '../../src/models/index.ts';
import type { TensorData } from '../../src/onnx/ir.ts';
import type { ImageRecord } from '../../src/schemas/dataset.ts';
import { HyperparametersSchema } from '../../src/schemas/experiment.ts';
import { getTask, type AnyTask } from '../../src/tasks/index.ts';
import { Trainer } from '../../src/training/trainer.ts';
import { writeMultilabelCsv, writeRegressionCsv } from '../api/task-fixtures.ts';
import { evalBatch, SIZE } from './trained-model.ts';

/**
 * A tiny trained model per task, made only through the task's definition: toy images with the
 * task's labels as a dataset stores them (ImageRecord), then task.target → fitState → loss →
 * collate → a small_cnn trained for `steps` full-batch steps (120 by default). What the export tests loop over.
 */

export const TASKS = ['classification', 'multilabel', 'regression'] as const;
export type TaskName = (typeof TASKS)[number];

const SHAPES: Shape[] = ['circle', 'square', 'triangle', 'cross'];

export interface TaskModel {
  task: AnyTask;
  state: unknown;
  names: string[];
  spec: ModelSpec;
  params: Record<string, TensorData>;
  /** The images on disk with their targets, as the export job hands them over. */
  images: ExportImage[];
  files: string[];
  targets: number[][];
}

interface Toy {
  names: string[];
  files: string[];
  records: Pick<ImageRecord, 'label'>[] & Partial<ImageRecord>[];
}

async function toyData(task: TaskName, dir: string, n: number): Promise<Toy> {
  if (task === 'classification') {
    const files: string[] = [];
    const records = [];
    for (let i = 0; i < n; i++) {
      const s = SHAPES[i % SHAPES.length];
      const file = path.join(dir, `c-${i}.png`);
      await fs.writeFile(file, await renderShapeImage({ shape: s, size: { width: 48, height: 40 }, seed: 100 + i, format: 'png' }));
      files.push(file);
      records.push({ label: s });
    }
    return { names: [...SHAPES], files, records };
  }
  if (task === 'multilabel') {
    const { root, truth } = await writeMultilabelCsv(dir, n, 5);
    return { names: ['circle', 'square', 'triangle'], files: truth.map((_, i) => path.join(root, `ml-${i}.png`)), records: truth.map((labels) => ({ label: null, labels })) };
  }
  const { root, radii } = await writeRegressionCsv(dir, n, 5);
  return { names: ['radius'], files: radii.map((_, i) => path.join(root, `disc-${i}.png`)), records: radii.map((r) => ({ label: null, targets: [r] })) };
}

export async function trainedTaskModel(name: TaskName, dir: string, opts: { count?: number; steps?: number } = {}): Promise<TaskModel> {
  const n = opts.count ?? 32;
  // at 60 steps the multi-label model's logits still sat near 0, where a sigmoid is steepest, and
  // int8's score RMSE reached its bound (0.054); at 120 it was 0.002
  const steps = opts.steps ?? 120;
  const task = getTask(name);
  await fs.mkdir(dir, { recursive: true });
  const toy = await toyData(name, dir, n);
  const names = toy.names;
  const targets = toy.records.map((r, i) => {
    const t = task.target({ id: `img-${i}`, file: `f${i}`, split: [], ...r } as unknown as ImageRecord, names);
    if (!t) throw new Error(`${name}: toy image ${i} has no target`);
    return t;
  });
  const h = HyperparametersSchema.parse({});
  const state = task.fitState(targets, names, h);
  const spec = createModel('small_cnn', { numClasses: names.length, inputSize: SIZE, seed: 3 });
  const batch = await evalBatch(await Promise.all(toy.files.map((f) => fs.readFile(f))), spec);
  const trainer = await Trainer.create(spec.model, { loss: task.loss(h, state, names.length), trainable: spec.params, optimizer: { kind: 'adam' }, threads: 1 });
  try {
    const y = task.collate(targets, state, names.length);
    for (let s = 0; s < steps; s++) await trainer.step(batch, y, 0.01);
    const st = trainer.getState();
    return {
      task,
      state,
      names,
      spec,
      params: { ...st.params, ...st.bnStats },
      images: toy.files.map((f, i) => ({ id: `img-${String(i).padStart(8, '0')}`, path: f, target: targets[i] })),
      files: toy.files,
      targets,
    };
  } finally {
    await trainer.release();
  }
}
