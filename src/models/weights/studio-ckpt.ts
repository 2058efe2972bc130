import { decodeCheckpoint } from '../checkpoint.ts';
import type { LoadedTensor, ReadWeights, SkippedTensor } from './types.ts';

/**
 * The studio's own checkpoint (`best.ckpt`/`last.ckpt` of a run; src/models/checkpoint.ts, a
 * safetensors-style file with a checksum): its parameters and batch-norm statistics, under the
 * graph's names (torchvision's for a catalog model). The optimizer state is left out.
 */
export function readStudioCheckpoint(bytes: Uint8Array): ReadWeights & { model: string | null } {
  const c = decodeCheckpoint(bytes);
  const tensors = new Map<string, LoadedTensor>();
  const skipped: SkippedTensor[] = [];
  for (const group of [c.params, c.bnStats]) {
    for (const [name, t] of Object.entries(group)) {
      if (t.dtype !== 'float32' || !(t.data instanceof Float32Array)) {
        skipped.push({ name, reason: `${t.dtype} tensor: not a weight` });
        continue;
      }
      tensors.set(name, { dims: [...t.dims], data: t.data });
    }
  }
  return { format: 'studio_ckpt', tensors, skipped, model: c.metadata.model ?? null };
}
