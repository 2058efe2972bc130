import { convertToFloat16, DEFAULT_KEEP_FLOAT32 } from '../onnx/convert-float16.ts';
import type { Model } from '../onnx/ir.ts';

/**
 * The fp16 variant: weights and compute in float16, the interface unchanged (float32 `input`,
 * `logits`, `probabilities`) so the same preprocessing and client code serve every variant.
 * Softmax and reductions stay float32 (DEFAULT_KEEP_FLOAT32). On CPU onnxruntime has float16
 * kernels for few ops and inserts its own casts around the rest, so the file halves but speed
 * on CPU may not improve; the benchmark says which.
 */
export function buildFp16Export(fp32: Model): Model {
  const m = convertToFloat16(fp32, { keepFloat32: DEFAULT_KEEP_FLOAT32 });
  return { ...m, metadata: { ...m.metadata, variant: 'fp16' } };
}
