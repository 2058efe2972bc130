import { createImportSink } from '../storage/import-sink.ts';
import { runImport } from '../datasets/import.ts';
import type { DatasetTask, ImportLimits, ImportProgress, ImportReport, ImportSource } from '../datasets/types.ts';
import type { WorkerTask } from '../jobs/pool.ts';
import { runWorkerTask, type WorkerFailure, type WorkerLog, type WorkerScope } from './worker-task.ts';
// The dataset's task says what its images carry (labelShape): the registry must be loaded in this thread.
import '../tasks/index.ts';

/** Thread entry point of a dataset import: runs the datasets pipeline into a storage sink. */
export interface ImportWorkerPayload {
  workspace: string;
  project_id: string;
  dataset_id: string;
  task: DatasetTask;
  source: ImportSource;
  limits: ImportLimits;
}

/** A failure comes back as data (see worker-task.ts). */
export type ImportWorkerResult = { ok: true; report: ImportReport } | WorkerFailure;

export type ImportWorkerMessage = { type: 'progress'; progress: ImportProgress } | WorkerLog;

const PROGRESS_EVERY_MS = 200;

/** A cancelled import rethrows: piscina reports the abort, and the images written so far are recorded. */
const rethrow = (e: unknown): never => {
  throw e;
};

export default async function importWorker(task: WorkerTask<ImportWorkerPayload>): Promise<ImportWorkerResult> {
  const { payload } = task;
  return runWorkerTask(task, { cancelled: rethrow }, async ({ signal, post, store }: WorkerScope<ImportWorkerMessage>) => {
    const sink = createImportSink(store, payload.project_id, payload.dataset_id);
    try {
      let last = 0;
      let latest: ImportProgress | undefined;
      const report = await runImport(payload.source, sink, {
        signal,
        limits: payload.limits,
        task: payload.task,
        onProgress(p) {
          latest = p;
          const now = Date.now();
          // Progress is throttled here: thousands of messages per second would only cost the main thread.
          if (now - last >= PROGRESS_EVERY_MS) {
            last = now;
            post({ type: 'progress', progress: p });
          }
        },
      });
      if (latest) post({ type: 'progress', progress: latest });
      return { ok: true as const, report };
    } finally {
      // Images already written are recorded even when the import fails or is cancelled: no orphan files.
      await sink.close();
    }
  });
}
