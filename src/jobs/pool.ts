import { createRequire } from 'node:module';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import type { EvaluateWorkerMessage, EvaluateWorkerPayload, EvaluateWorkerResult } from '../workers/evaluate.ts';
import type { ExportWorkerMessage, ExportWorkerPayload, ExportWorkerResult } from '../workers/export.ts';
import type { TrainWorkerMessage, TrainWorkerPayload, TrainWorkerResult } from '../workers/train.ts';

/**
 * The worker-thread pools. Workers are TypeScript files run from source, so each thread starts
 * with tsx's loader (resolved to an absolute URL, so it works whatever the cwd and under vitest,
 * whose own execArgv must not leak into the threads).
 *
 * Imports share one pool (`createWorkerPool`). Training, evaluation and export each get a
 * one-thread pool of their own (`createDedicatedPool`): each keeps every core busy with
 * onnxruntime, so two at once would only share them, and a run never waits behind an import.
 * Which task goes next is the owning service's job queue; a pool only runs what it is handed.
 */
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export type WorkerName = 'import' | 'train' | 'evaluate' | 'export';

const WORKER_FILES: Record<WorkerName, string> = {
  import: new URL('../workers/import.ts', import.meta.url).href,
  train: new URL('../workers/train.ts', import.meta.url).href,
  evaluate: new URL('../workers/evaluate.ts', import.meta.url).href,
  export: new URL('../workers/export.ts', import.meta.url).href,
};

export interface PoolSettings {
  maxThreads: number;
  /** Idle threads go away so a quiet studio holds no threads. */
  idleTimeoutMs: number;
  maxOldGenerationSizeMb?: number;
  /** How long a cancelled worker may take to stop on its own before its thread is terminated. */
  abortGraceMs: number;
}

const SETTINGS: Record<WorkerName, PoolSettings> = {
  import: { maxThreads: 2, idleTimeoutMs: 30_000, abortGraceMs: 10_000 },
  // Decoded batches and a model's parameters and optimizer state live in this thread; a run
  // stops within one step and keeps its last checkpoint, which may take a while on a big model.
  train: { maxThreads: 1, idleTimeoutMs: 60_000, maxOldGenerationSizeMb: 8192, abortGraceMs: 30_000 },
  evaluate: { maxThreads: 1, idleTimeoutMs: 30_000, maxOldGenerationSizeMb: 4096, abortGraceMs: 10_000 },
  export: { maxThreads: 1, idleTimeoutMs: 30_000, maxOldGenerationSizeMb: 4096, abortGraceMs: 10_000 },
};

export interface RunOptions {
  signal?: AbortSignal;
  /** Messages the worker posts on its port (progress, logs). */
  onMessage?: (msg: unknown) => void;
}

export interface WorkerPool {
  run<T>(worker: WorkerName, payload: unknown, opts?: RunOptions): Promise<T>;
  destroy(): Promise<void>;
}

/** A pool that runs one worker, typed by its payload, its messages and its result. */
export interface DedicatedPool<P, M, R> {
  run(payload: P, opts: { signal: AbortSignal; onMessage: (m: M) => void }): Promise<R>;
  destroy(): Promise<void>;
}

/** The workers that run in a pool of their own, each with its payload, messages and result. */
export interface DedicatedPools {
  train: DedicatedPool<TrainWorkerPayload, TrainWorkerMessage, TrainWorkerResult>;
  evaluate: DedicatedPool<EvaluateWorkerPayload, EvaluateWorkerMessage, EvaluateWorkerResult>;
  export: DedicatedPool<ExportWorkerPayload, ExportWorkerMessage, ExportWorkerResult>;
}

/** Sent by the main thread on a worker's port. */
export type WorkerControl = { type: 'abort' };

/** What a worker's default export receives: its payload and the port to talk back on. */
export interface WorkerTask<P> {
  payload: P;
  port: MessagePort;
}

/** The shared pool (imports). */
export function createWorkerPool(opts: { maxThreads?: number } = {}): WorkerPool {
  const s = SETTINGS.import;
  const pool = startPool(WORKER_FILES.import, { ...s, maxThreads: opts.maxThreads ?? s.maxThreads });
  return {
    run: <T>(worker: WorkerName, payload: unknown, o: RunOptions = {}) => pool.run(WORKER_FILES[worker], payload, o, SETTINGS[worker].abortGraceMs) as Promise<T>,
    destroy: () => pool.destroy(),
  };
}

/** A one-thread pool of the worker's own (training, evaluation, export). */
export function createDedicatedPool<W extends keyof DedicatedPools>(worker: W): DedicatedPools[W] {
  // The worker file is what types the pool: WORKER_FILES[worker] is the module DedicatedPools[W] names.
  return createThreadPool(WORKER_FILES[worker], SETTINGS[worker]) as DedicatedPools[W];
}

/** A pool that runs the worker module at `file` (a file: URL), with these settings. */
export function createThreadPool<P, M, R>(file: string, s: PoolSettings): DedicatedPool<P, M, R> {
  const pool = startPool(file, s);
  return {
    run: (payload, o) => pool.run(file, payload, { signal: o.signal, onMessage: (m) => o.onMessage(m as M) }, s.abortGraceMs) as Promise<R>,
    destroy: () => pool.destroy(),
  };
}

interface StartedPool {
  run(file: string, payload: unknown, o: RunOptions, abortGraceMs: number): Promise<unknown>;
  destroy(): Promise<void>;
}

function startPool(defaultFile: string, s: PoolSettings): StartedPool {
  const pool = new Piscina({
    filename: defaultFile,
    execArgv: ['--import', tsxLoader],
    minThreads: 0,
    maxThreads: s.maxThreads,
    idleTimeout: s.idleTimeoutMs,
    ...(s.maxOldGenerationSizeMb !== undefined ? { resourceLimits: { maxOldGenerationSizeMb: s.maxOldGenerationSizeMb } } : {}),
  });
  // A thread that fails while loading the worker file has no task yet, so piscina reports it as a
  // pool 'error' and leaves the task waiting forever: fail the waiting tasks with it instead.
  const waiting = new Set<(e: Error) => void>();
  pool.on('error', (e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    for (const fail of waiting) fail(err);
  });
  return {
    async run(file, payload, o, abortGraceMs) {
      const { port1, port2 } = new MessageChannel();
      if (o.onMessage) port1.on('message', o.onMessage);
      // Cancelling asks the worker first (it stops at its next safe point and leaves storage
      // consistent); only a worker that does not stop within the grace period has its thread terminated.
      const hard = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => {
        port1.postMessage({ type: 'abort' } satisfies WorkerControl);
        timer = setTimeout(() => hard.abort(), abortGraceMs);
      };
      if (o.signal?.aborted) hard.abort();
      else o.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const task: WorkerTask<unknown> = { payload, port: port2 };
        return await new Promise<unknown>((resolve, reject) => {
          waiting.add(reject);
          pool
            .run(task, { filename: file, transferList: [port2], signal: hard.signal })
            .then(resolve, reject)
            .finally(() => waiting.delete(reject));
        });
      } finally {
        o.signal?.removeEventListener('abort', onAbort);
        if (timer) clearTimeout(timer);
        // Let messages already queued on the port arrive before it closes.
        await new Promise((r) => setImmediate(r));
        port1.close();
      }
    },
    destroy: () => pool.destroy(),
  };
}
