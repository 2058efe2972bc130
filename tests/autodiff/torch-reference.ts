import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { type TensorData, f32 } from '../../src/onnx/ir.ts';

/** Loads `../shared/fixtures/torch-reference/*.json` (PyTorch's outputs and gradients). */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const TORCH_REFERENCE_DIR = path.resolve(repoRoot, '../shared/fixtures/torch-reference');

const Tensor = z.object({ shape: z.array(z.number().int()), data: z.array(z.number()) });
export type RefTensor = z.infer<typeof Tensor>;

export const OpFixture = z.object({
  case: z.string(),
  op: z.string(),
  attrs: z.record(z.string(), z.union([z.number(), z.string(), z.array(z.number())])),
  inputs: z.record(z.string(), Tensor),
  params: z.record(z.string(), Tensor),
  output: Tensor,
  grad_output: Tensor,
  grads: z.record(z.string(), Tensor),
  target: z.array(z.union([z.number(), z.array(z.number())])).optional(),
  extra: z.record(z.string(), z.union([Tensor, z.string()])).optional(),
});
export type OpFixture = z.infer<typeof OpFixture>;

export const ModelFixture = z.object({
  case: z.string(),
  architecture: z.string(),
  inputs: z.object({ X: Tensor }),
  target: z.array(z.number().int()),
  params_before: z.record(z.string(), Tensor),
  logits: Tensor,
  loss: z.number(),
  grads: z.record(z.string(), Tensor),
});
export type ModelFixture = z.infer<typeof ModelFixture>;

export function loadFixture<T extends z.ZodType>(file: string, schema: T): z.infer<T> {
  return schema.parse(JSON.parse(fs.readFileSync(path.join(TORCH_REFERENCE_DIR, file), 'utf8')));
}

export function opFixtureFiles(): string[] {
  if (!fs.existsSync(TORCH_REFERENCE_DIR)) return [];
  return fs.readdirSync(TORCH_REFERENCE_DIR).filter((f) => f.endsWith('.json') && !f.startsWith('tiny_resnet')).sort();
}

export const toTensor = (t: RefTensor): TensorData => f32(t.shape, t.data);

/** max |a − ref| relative to the reference's largest magnitude. */
export function relError(actual: TensorData, ref: RefTensor): number {
  if (actual.data.length !== ref.data.length) return Infinity;
  let diff = 0;
  let scale = 1e-12;
  ref.data.forEach((r, i) => {
    diff = Math.max(diff, Math.abs(Number(actual.data[i]) - r));
    scale = Math.max(scale, Math.abs(r));
  });
  return diff / scale;
}
