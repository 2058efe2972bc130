/**
 * What every weights reader returns: float32 tensors by the name the file gives them, and what it
 * left out with the reason (integer counters, tensors of a dtype we do not read, non-tensor entries).
 */

export interface LoadedTensor {
  dims: number[];
  data: Float32Array;
}

export interface SkippedTensor {
  name: string;
  reason: string;
}

export type WeightsFormat = 'torchvision_pth' | 'safetensors' | 'studio_ckpt';

export interface ReadWeights {
  format: WeightsFormat;
  tensors: Map<string, LoadedTensor>;
  skipped: SkippedTensor[];
}

/** Limits a reader checks before it allocates: a hostile header can declare anything. */
export const WEIGHTS_LIMITS = {
  /** The largest weights file read (a ViT-L/16 is 1.2 GB). */
  maxFileBytes: 2 * 1024 ** 3,
  /** A safetensors JSON header (the safetensors library's own limit is 100 MB). */
  maxHeaderBytes: 100 * 1024 * 1024,
  /** The pickle of a state dict (resnet152's is ~60 kB; a big ViT's under 1 MB). */
  maxPickleBytes: 64 * 1024 * 1024,
  maxTensors: 100_000,
  maxRank: 8,
  maxZipEntries: 200_000,
} as const;

export const numel = (dims: readonly number[]): number => dims.reduce((a, d) => a * d, 1);
