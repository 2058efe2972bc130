import { createRequire } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import type { WorkerControl, WorkerTask } from '../jobs/pool.ts';
import type { TrainWorkerMessage, TrainWorkerPayload, TrainWorkerResult } from '../workers/train.ts';

/**
 * The training thread. Training takes the whole CPU, so it gets its own one-thread pool rather
 * than a slot of the shared one (which imports use): a run never waits behind an import, and
 * an import never waits behind a queued run. Which run goes next is the runs service's job
 * queue (a JobsService with one slot); this pool only runs what it is handed.
 *
 * Same protocol as src/jobs/pool.ts: cancelling first asks the worker on its port (it stops
 * within one step, keeping its last checkpoint); a worker that does not stop within the grace
 * period has its thread terminated.
 */
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const TRAIN_WORKER = new URL('../workers/train.ts', import.meta.url).href;
const ABORT_GRACE_MS = 30_000;

export interface TrainingPool {
  run(payload: TrainWorkerPayload, opts: { signal: AbortSignal; onMessage: (m: TrainWorkerMessage) => void }): Promise<TrainWorkerResult>;
  destroy(): Promise<void>;
}

export function createTrainingPool(): TrainingPool {
  const pool = new Piscina({
    filename: TRAIN_WORKER,
    execArgv: ['--import', tsxLoader],
    minThreads: 0,
    maxThreads: 1,
    idleTimeout: 60_000,
    // Decoded batches and a model's parameters and optimizer state live in this thread.
    resourceLimits: { maxOldGenerationSizeMb: 8192 },
  });
  return {
    async run(payload, o) {
      const { port1, port2 } = new MessageChannel();
      port1.on('message', (m: TrainWorkerMessage) => o.onMessage(m));
      const hard = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => {
        port1.postMessage({ type: 'abort' } satisfies WorkerControl);
        timer = setTimeout(() => hard.abort(), ABORT_GRACE_MS);
      };
      if (o.signal.aborted) hard.abort();
      else o.signal.addEventListener('abort', onAbort, { once: true });
      try {
        const task: WorkerTask<TrainWorkerPayload> = { payload, port: port2 };
        return (await pool.run(task, { transferList: [port2], signal: hard.signal })) as TrainWorkerResult;
      } finally {
        o.signal.removeEventListener('abort', onAbort);
        if (timer) clearTimeout(timer);
        await new Promise((r) => setImmediate(r));
        port1.close();
      }
    },
    destroy: () => pool.destroy(),
  };
}
