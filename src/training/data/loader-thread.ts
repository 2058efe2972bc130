import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Batch, LoaderWarning } from './loader.ts';
import type { PrefillReport, PrefillRequest, ThreadLoaderOptions, ThreadMessage, ThreadRequest } from './loader-protocol.ts';

export type { PrefillReport, PrefillRequest, ThreadLoaderOptions, TransformSpec } from './loader-protocol.ts';

/**
 * The loader on its own thread. onnxruntime-node runs a step synchronously on the calling
 * thread, and every image needs that thread between its read, decode and normalise stages: with
 * the loader on the training thread, decoding stalls for the length of each step (bench/loader.ts
 * measures it). Here the loader's JavaScript runs beside the step and batches arrive as
 * transferred buffers. Same options and same batches as `loadBatches`, bit for bit.
 */

/**
 * The thread runs our TypeScript from source: a small bootstrap registers tsx's loader, then
 * imports the worker module (a .ts entry given to `new Worker` directly is refused before any
 * `--import` hook runs). Paths are absolute so this works whatever the cwd, and under vitest.
 */
// tsx's "./esm/api" export for `import` (its `require` build cannot register ESM hooks).
const TSX_API = pathToFileURL(path.join(path.dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist/esm/api/index.mjs')).href;
const WORKER_URL = new URL('./loader-worker.ts', import.meta.url).href;
const BOOTSTRAP = `import(${JSON.stringify(TSX_API)}).then((m) => { m.register(); return import(${JSON.stringify(WORKER_URL)}); });`;

export interface ThreadBatchOptions extends ThreadLoaderOptions {
  signal?: AbortSignal;
  onWarning?: (w: LoaderWarning) => void;
  /** Told when a training epoch first decoded images into the thread's cache (before its first batch). */
  onPrefilled?: (r: PrefillReport) => void;
}

export class LoaderThread {
  readonly #worker: Worker;
  #nextId = 1;
  #handlers = new Map<number, (m: ThreadMessage) => void>();
  #failure: Error | null = null;

  private constructor() {
    this.#worker = new Worker(BOOTSTRAP, { eval: true, execArgv: [] });
    this.#worker.on('message', (m: ThreadMessage) => this.#handlers.get(m.id)?.(m));
    const fail = (e: Error) => {
      this.#failure = e;
      for (const h of this.#handlers.values()) h({ type: 'error', id: 0, name: e.name, message: e.message });
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(new Error(`loader thread exited (code ${code})`)));
  }

  static start(): LoaderThread {
    return new LoaderThread();
  }

  /** One epoch of batches, computed on the loader thread; one batch is kept ready ahead of the consumer. */
  async *batches(o: ThreadBatchOptions): AsyncGenerator<Batch, void, undefined> {
    if (this.#failure) throw this.#failure;
    const { signal, onWarning, onPrefilled, ...options } = o;
    const id = this.#nextId++;
    const queue: ThreadMessage[] = [];
    let wake: (() => void) | null = null;
    this.#handlers.set(id, (m) => {
      if (m.type === 'warning') (onWarning ?? ((w: LoaderWarning) => console.warn(`skipping image ${w.id} (${w.path}): ${w.message}`)))(m.warning);
      else if (m.type === 'prefilled') onPrefilled?.(m.prefill);
      else queue.push(m);
      wake?.();
      wake = null;
    });
    const onAbort = () => {
      wake?.();
      wake = null;
    };
    signal?.addEventListener('abort', onAbort);
    const post = (m: ThreadRequest) => this.#worker.postMessage(m);
    let finished = false;
    try {
      if (signal?.aborted) throw abortReason(signal);
      post({ type: 'start', id, options });
      // Two credits: the batch being consumed and the one prepared behind it.
      post({ type: 'pull', id });
      post({ type: 'pull', id });
      for (;;) {
        while (queue.length === 0 && !signal?.aborted) await new Promise<void>((resolve) => (wake = resolve));
        if (signal?.aborted) throw abortReason(signal);
        const m = queue.shift() as ThreadMessage;
        if (m.type === 'end') {
          finished = true;
          return;
        }
        if (m.type === 'error') {
          finished = true;
          const e = new Error(m.message);
          e.name = m.name;
          throw e;
        }
        if (m.type === 'batch') {
          post({ type: 'pull', id });
          yield m.batch;
        }
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.#handlers.delete(id);
      if (!finished && !this.#failure) post({ type: 'stop', id });
    }
  }

  /**
   * Decodes the training images into the thread's cache now, before any epoch asks for them (the
   * training worker sends this while it builds the trainer, so the two overlap); an epoch that
   * starts meanwhile waits for it. Resolves with what it did.
   */
  prefill(request: PrefillRequest): Promise<PrefillReport> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    return new Promise<PrefillReport>((resolve, reject) => {
      this.#handlers.set(id, (m) => {
        if (m.type !== 'prefilled' && m.type !== 'error') return;
        this.#handlers.delete(id);
        if (m.type === 'prefilled') resolve(m.prefill);
        else reject(Object.assign(new Error(m.message), { name: m.name }));
      });
      this.#worker.postMessage({ type: 'prefill', id, request } satisfies ThreadRequest);
    });
  }

  async close(): Promise<void> {
    this.#worker.removeAllListeners('exit');
    await this.#worker.terminate();
  }
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}
