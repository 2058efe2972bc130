import { z } from 'zod';
import type { Model } from '../onnx/ir.ts';
import { validation } from '../kernel/errors.ts';

/**
 * A model ready for the training engine: the ONNX graph plus what the engine needs to know about
 * it. Graph contract: input 'input' float32 [N,3,H,W] (N symbolic), output 'logits' [N,numClasses];
 * BatchNormalization nodes in inference form whose mean/var inputs are initializers (`bnStats`).
 */
export interface ModelSpec {
  name: string;
  model: Model;
  /** Trainable initializer names, in graph order. */
  params: string[];
  /** BatchNormalization running mean/var initializer names (updated by training, not by gradients). */
  bnStats: string[];
  /** Param names per block in forward order, the head last (for "train the last K blocks"). */
  blocks: string[][];
  /** A readable name for each entry of `blocks` (same length). */
  blockNames: string[];
  /** Param names of the classifier head (equal to the last entry of `blocks`). */
  head: string[];
  inputSize: number;
  mean: [number, number, number];
  std: [number, number, number];
  numClasses: number;
}

export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];

export const CreateOptionsSchema = z.object({
  numClasses: z.number().int().min(1).max(100_000),
  inputSize: z.number().int().min(16).max(2048).optional(),
  seed: z.number().int().min(0).max(0xffffffff).optional(),
});
export type CreateOptions = z.infer<typeof CreateOptionsSchema>;

export const TrainableSchema = z.union([
  z.literal('all'),
  z.literal('head'),
  z.object({ lastBlocks: z.number().int().min(1) }),
]);
export type Trainable = z.infer<typeof TrainableSchema>;

/** The params to train: all of them, the head only, or the last K blocks (the head counts as one). */
export function trainableSet(spec: ModelSpec, which: Trainable): string[] {
  const w = TrainableSchema.safeParse(which);
  if (!w.success) throw validation('trainable must be "all", "head" or {lastBlocks: K}', w.error.issues);
  if (w.data === 'all') return [...spec.params];
  if (w.data === 'head') return [...spec.head];
  const chosen = new Set(spec.blocks.slice(-w.data.lastBlocks).flat());
  // Keep the graph order of `params`, which the optimizer state follows.
  return spec.params.filter((p) => chosen.has(p));
}

/** Number of trainable values (torchvision's `sum(p.numel() for p in model.parameters())`). */
export function countParams(spec: ModelSpec, names: string[] = spec.params): number {
  let n = 0;
  for (const p of names) {
    const t = spec.model.graph.initializers.get(p);
    if (!t) throw new Error(`param '${p}' has no initializer`);
    n += t.dims.reduce((a, b) => a * b, 1);
  }
  return n;
}
