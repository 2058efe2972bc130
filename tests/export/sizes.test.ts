import { describe, expect, it } from 'vitest';
import { calibrateActivations } from '../../src/export/calibrate.ts';
import { buildFp16Export } from '../../src/export/fp16.ts';
import { buildFp32Export } from '../../src/export/fp32.ts';
import { buildInt8Export } from '../../src/export/int8.ts';
import { preprocessingFromEval } from '../../src/export/manifest.ts';
import { compareOutputs } from '../../src/export/validate.ts';
import { createModel } from '../../src/models/index.ts';
import { encodeModel } from '../../src/onnx/codec.ts';
import { f32 } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';
import { evalPreprocessing } from '../../src/training/data/eval-transform.ts';

// Catalog models at a small input: sizes do not depend on it, and every variant must load and run.
const SIZE = 32;

describe.each(['resnet18', 'mobilenet_v3_small'])('%s variants', (name) => {
  it('int8 is at least 3× smaller than fp32, fp16 about half, and all three run', async () => {
    const spec = createModel(name, { numClasses: 10, inputSize: SIZE, seed: 1 });
    const fp32 = buildFp32Export(spec.model, {}, {
      labels: Array.from({ length: 10 }, (_, i) => `c${i}`),
      preprocessing: preprocessingFromEval(evalPreprocessing(SIZE, spec)),
    });
    const x = f32([2, 3, SIZE, SIZE], Float32Array.from({ length: 2 * 3 * SIZE * SIZE }, (_, i) => 2 * Math.sin(i * 0.731)));
    const ranges = await calibrateActivations(fp32, [{ input: x }], 1);
    const variants = { fp32, fp16: buildFp16Export(fp32), int8: buildInt8Export(fp32, { mode: 'static', ranges }) };
    const bytes = Object.fromEntries(Object.entries(variants).map(([k, m]) => [k, encodeModel(m)]));
    expect(bytes.fp32.length / bytes.int8.length).toBeGreaterThanOrEqual(3);
    expect(bytes.fp16.length / bytes.fp32.length).toBeLessThan(0.55);
    const outs: Record<string, Float32Array> = {};
    for (const [k, b] of Object.entries(bytes)) {
      const s = await createSession(b, { threads: 1 });
      outs[k] = (await s.run({ input: x }, ['logits'])).logits.data as Float32Array;
      await s.release();
    }
    // random weights: only check the variants compute the same function, on the logits
    expect(compareOutputs(outs.fp32, outs.fp16, 10).cosine).toBeGreaterThan(0.99);
    expect(compareOutputs(outs.fp32, outs.int8, 10).cosine).toBeGreaterThan(0.9);
  }, 120_000);
});
