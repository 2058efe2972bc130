import { buildInt8Export } from '../int8.ts';
import { defineFormat } from './types.ts';

/**
 * int8: static QDQ quantization calibrated on the validation images (src/export/int8.ts). Each
 * weight is rounded to 1/254 of its channel's range and each activation to 1/255 of its calibrated
 * range, so outputs carry quantization noise of a few percent of their scale.
 */
export default defineFormat({
  name: 'int8',
  file: 'model.int8.onnx',
  mediaType: 'application/octet-stream',
  note: 'quantized, ~4× smaller',
  notes: 'Static int8 (QDQ), calibrated on the validation images; about a quarter of the file. Fast on CPUs with integer kernels for convolutions.',
  tolerances: {
    probabilities: {
      tolerance: { minCosine: 0.99, minArgmaxAgreement: 0.95 },
      reason: 'int8 rounds each weight to 1/254 of its channel\'s range: mean cosine ≥ 0.99 and argmax agreement ≥ 95% (images whose top two classes are within the quantization noise may flip)',
    },
    scores: {
      tolerance: { maxRmse: 0.05 },
      reason: 'int8 rounds weights and activations to 8 bits: score RMSE ≤ 0.05; single scores near 0.5 may move more, so no per-score bound',
    },
    values: {
      tolerance: { maxRmse: 0.15 },
      reason: 'int8 rounds weights and activations to 8 bits: RMSE ≤ 0.15 of the target\'s standard deviation',
    },
  },
  build: async (fp32, ctx) => buildInt8Export(fp32, { mode: 'static', ranges: await ctx.calibrate(fp32) }),
});
