import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { f32, type TensorData } from '../../src/onnx/ir.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const INTEROP_DIR = path.resolve(repo, '../shared/fixtures/onnx-interop');

const TensorJson = z.object({ shape: z.array(z.number().int()), data: z.array(z.number()) });
const Expected = z.object({ input: TensorJson, expected_eval_output: TensorJson });

/** A PyTorch-exported model from the interop fixtures, its input and PyTorch's eval output. */
export function interop(name: string): { bytes: Uint8Array; input: TensorData; expected: TensorData } {
  const e = Expected.parse(JSON.parse(fs.readFileSync(path.join(INTEROP_DIR, `${name}.expected.json`), 'utf8')));
  return {
    bytes: new Uint8Array(fs.readFileSync(path.join(INTEROP_DIR, `${name}.onnx`))),
    input: f32(e.input.shape, e.input.data),
    expected: f32(e.expected_eval_output.shape, e.expected_eval_output.data),
  };
}

/** A deterministic smooth batch [n,3,s,s] in roughly the range of normalised images. */
export function batchOf(n: number, s: number, phase = 0): TensorData {
  const data = new Float32Array(n * 3 * s * s);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37 + phase) + 0.5 * Math.cos(i * 0.011);
  return f32([n, 3, s, s], data);
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}

/** A float32 tensor's values as numbers. */
export function floats(t: TensorData): number[] {
  if (!(t.data instanceof Float32Array)) throw new Error(`expected float32 data, got ${t.dtype}`);
  return Array.from(t.data);
}

/**
 * Catalog models too big for the per-model runtime loops (forward, training step: resnet101
 * ~10 s and 1.2 GB, vit_b_16 ~24 s and 2.1 GB at 32 px on one thread): their parameter counts
 * and graph contract are checked in catalog.test.ts, their outputs against PyTorch in
 * catalog-parity.test.ts, and their blocks train in the smaller twins (resnet50; vit_b_16's
 * widths with 2 layers in training.test.ts).
 */
export const HEAVY_MODELS = new Set(['resnet101', 'vit_b_16']);
