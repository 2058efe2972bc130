import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { z } from 'zod';
import { f32, type TensorData } from '../../src/onnx/ir.ts';

export const FIXTURES = path.resolve(fileURLToPath(import.meta.url), '../../../../shared/fixtures/torch-reference');

const tensorSchema = z.object({ shape: z.array(z.number().int()), data: z.array(z.number()) });
export type FixtureTensor = z.infer<typeof tensorSchema>;

const opCaseSchema = z.object({
  case: z.string(),
  inputs: z.record(z.string(), tensorSchema),
  output: tensorSchema,
  grad_output: tensorSchema,
  grads: z.record(z.string(), tensorSchema),
  attrs: z.record(z.string(), z.unknown()),
  target: z.array(z.union([z.number(), z.array(z.number())])),
});

const modelCaseSchema = z.object({
  optimizer: z.string(),
  optimizer_args: z.record(z.string(), z.union([z.number(), z.boolean()])),
  inputs: z.object({ X: tensorSchema }),
  target: z.array(z.number().int()),
  params_before: z.record(z.string(), tensorSchema),
  logits: tensorSchema,
  loss: z.number(),
  grads: z.record(z.string(), tensorSchema),
  loss_after_step1: z.number(),
  params_after_two_steps: z.record(z.string(), tensorSchema),
});

function readJson(name: string): unknown {
  return JSON.parse(readFileSync(path.join(FIXTURES, name), 'utf8'));
}
export const loadOpCase = (name: string) => opCaseSchema.parse(readJson(name));
export const loadModelCase = (name: string) => modelCaseSchema.parse(readJson(name));

export const toF32 = (t: FixtureTensor): TensorData => f32(t.shape, t.data);

export function values(t: TensorData): number[] {
  return Array.from(t.data as Float32Array, Number);
}

/**
 * Element-wise |a − e| ≤ rel·(|e| + 0.1·scale), numpy's allclose with atol tied to the tensor's
 * scale (default: its largest magnitude): float32 results against a reference cannot match
 * entries that are ~0 through cancellation to better than a fraction of the values around them.
 */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number, what: string, scale?: number): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let s = scale ?? 0;
  if (scale === undefined) for (let i = 0; i < expected.length; i++) s = Math.max(s, Math.abs(expected[i]));
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]) / Math.max(Math.abs(expected[i]) + 0.1 * s, 1e-30);
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  expect(worst, `${what}: worst relative error ${worst} at [${at}] (got ${actual[at]}, want ${expected[at]})`).toBeLessThanOrEqual(rel);
}
