import { createRequire } from 'node:module';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';

/**
 * The worker-thread pool. Workers are TypeScript files run from source, so each thread starts
 * with tsx's loader (resolved to an absolute URL, so it works whatever the cwd and under vitest,
 * whose own execArgv must not leak into the threads).
 */
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export type WorkerName = 'import';

const WORKER_FILES: Record<WorkerName, string> = {
  import: new URL('../workers/import.ts', import.meta.url).href,
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

/** Sent by the main thread on a worker's port. */
export type WorkerControl = { type: 'abort' };

const ABORT_GRACE_MS = 10_000;

/** What a worker's default export receives: its payload and the port to talk back on. */
export interface WorkerTask<P> {
  payload: P;
  port: MessagePort;
}

export function createWorkerPool(opts: { maxThreads?: number } = {}): WorkerPool {
  const pool = new Piscina({
    filename: WORKER_FILES.import,
    execArgv: ['--import', tsxLoader],
    minThreads: 0,
    maxThreads: opts.maxThreads ?? 2,
    // Idle threads go away so a quiet studio holds no loader threads.
    idleTimeout: 30_000,
  });
  return {
    async run<T>(worker: WorkerName, payload: unknown, o: RunOptions = {}): Promise<T> {
      const { port1, port2 } = new MessageChannel();
      if (o.onMessage) port1.on('message', o.onMessage);
      // Cancelling asks the worker first (it stops between files and leaves storage consistent);
      // only a worker that does not stop within the grace period has its thread terminated.
      const hard = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => {
        port1.postMessage({ type: 'abort' } satisfies WorkerControl);
        timer = setTimeout(() => hard.abort(), ABORT_GRACE_MS);
      };
      if (o.signal?.aborted) hard.abort();
      else o.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const task: WorkerTask<unknown> = { payload, port: port2 };
        return (await pool.run(task, { filename: WORKER_FILES[worker], transferList: [port2], signal: hard.signal })) as T;
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
