import { defineFormat } from './types.ts';

/**
 * fp32: the training engine's inference graph with batch-norm folded (src/export/fp32.ts builds it;
 * every other format starts from it). Folding reorders float32 arithmetic and nothing else, so
 * anything beyond float32 rounding is a bug, not a precision trade-off.
 */
export default defineFormat({
  name: 'fp32',
  file: 'model.onnx',
  mediaType: 'application/octet-stream',
  note: 'full precision, BN folded',
  notes: 'Full precision; batch-norm folded into the convolutions. The reference every other variant is compared with.',
  tolerances: {
    probabilities: {
      tolerance: { maxAbsError: 1e-4, minArgmaxAgreement: 1 },
      reason: 'the same arithmetic reordered by folding batch-norm: max |Δp| ≤ 1e-4 and every argmax equal',
    },
    scores: {
      tolerance: { maxAbsError: 1e-4 },
      reason: 'the same arithmetic reordered by folding batch-norm: every score within 1e-4',
    },
    values: {
      tolerance: { maxAbsError: 1e-4 },
      reason: 'the same arithmetic reordered by folding batch-norm: every value within 1e-4 of the target\'s standard deviation',
    },
  },
  build: async (fp32) => fp32,
});
