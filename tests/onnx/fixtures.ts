import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/** The PyTorch-exported ONNX fixtures beside the clone (`../shared/fixtures/onnx-interop`). */
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const INTEROP_DIR = path.resolve(repo, '../shared/fixtures/onnx-interop');

const TensorJson = z.object({ shape: z.array(z.number().int()), data: z.array(z.number()) });
const Expected = z.object({
  model: z.string(),
  input_name: z.string(),
  output_name: z.string(),
  input: TensorJson,
  expected_eval_output: TensorJson,
  exported_in_training_mode: z.boolean(),
  opset: z.number().int(),
});
export type InteropFixture = z.infer<typeof Expected> & { file: string; bytes: Uint8Array };

export function interopFixtures(): InteropFixture[] {
  return fs.readdirSync(INTEROP_DIR)
    .filter((f) => f.endsWith('.onnx'))
    .sort()
    .map((f) => {
      const exp = Expected.parse(JSON.parse(fs.readFileSync(path.join(INTEROP_DIR, f.replace(/\.onnx$/, '.expected.json')), 'utf8')));
      return { ...exp, file: f, bytes: new Uint8Array(fs.readFileSync(path.join(INTEROP_DIR, f))) };
    });
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}
