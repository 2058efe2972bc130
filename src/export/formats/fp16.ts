import { buildFp16Export } from '../fp16.ts';
import { defineFormat } from './types.ts';

/**
 * fp16: weights and compute in float16 behind a float32 interface (src/export/fp16.ts). Every
 * weight and activation is rounded to 11 significant bits (relative error ~5e-4 per op), which
 * accumulates through the network to ~1e-3 of an output's scale.
 */
export default defineFormat({
  name: 'fp16',
  file: 'model.fp16.onnx',
  mediaType: 'application/octet-stream',
  note: 'half precision, ~2× smaller',
  notes: 'Half-precision weights and compute, float32 interface; half the file. On CPU onnxruntime has few float16 kernels, so it may not be faster there.',
  tolerances: {
    probabilities: {
      tolerance: { minCosine: 0.999, minArgmaxAgreement: 0.99 },
      reason: 'float16 rounds every op to 11 significant bits: mean per-image cosine ≥ 0.999 and argmax agreement ≥ 99%',
    },
    scores: {
      tolerance: { maxAbsError: 0.02, maxRmse: 0.005 },
      reason: 'float16 rounds every op to 11 significant bits: independent scores within 0.02 (RMSE ≤ 0.005), so a decision moves only for a score at its threshold',
    },
    values: {
      tolerance: { maxAbsError: 0.05, maxRmse: 0.01 },
      reason: 'float16 rounds every op to 11 significant bits: values within 0.05 of the target\'s standard deviation (RMSE ≤ 0.01)',
    },
  },
  build: async (fp32) => buildFp16Export(fp32),
});
