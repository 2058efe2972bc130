import type { ResolvedAugmentation } from '../../schemas/experiment.ts';
import { evalTransform, trainTransform, type Batch, type ImageTransform, type LoaderOptions, type LoaderWarning, type PrefillResult } from './loader.ts';

/** Messages between loader-thread.ts and loader-worker.ts. Functions cannot cross threads, so the transform travels as data. */

export type TransformSpec = { kind: 'train'; size: number; augmentation: ResolvedAugmentation } | { kind: 'eval'; size: number };

export function transformFor(t: TransformSpec): ImageTransform {
  return t.kind === 'train' ? trainTransform(t.size, t.augmentation) : evalTransform(t.size);
}

/** LoaderOptions that can be cloned to another thread. */
export type ThreadLoaderOptions = Omit<LoaderOptions, 'transform' | 'size' | 'signal' | 'onWarning' | 'readFile'> & { transform: TransformSpec };

/** What a training epoch's up-front decode did (loader.ts prefillDecoded), with the cache's state after it. */
export interface PrefillReport extends PrefillResult {
  cachedImages: number;
  cachedBytes: number;
}

/** The training images to decode into the thread's cache ahead of the first epoch. */
export interface PrefillRequest {
  items: ThreadLoaderOptions['items'];
  transform: Extract<TransformSpec, { kind: 'train' }>;
}

export type ThreadRequest =
  | { type: 'start'; id: number; options: ThreadLoaderOptions }
  | { type: 'prefill'; id: number; request: PrefillRequest }
  | { type: 'pull'; id: number }
  | { type: 'stop'; id: number };

export type ThreadMessage =
  | { type: 'batch'; id: number; batch: Batch }
  | { type: 'warning'; id: number; warning: LoaderWarning }
  | { type: 'prefilled'; id: number; prefill: PrefillReport }
  | { type: 'end'; id: number }
  | { type: 'error'; id: number; name: string; message: string };
