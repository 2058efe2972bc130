import { Workspace } from '../storage/workspace.ts';
import { createImportSink } from '../storage/import-sink.ts';
import { runImport } from '../datasets/import.ts';
import type { DatasetTask, ImportLimits, ImportProgress, ImportReport, ImportSource } from '../datasets/types.ts';
import type { WorkerControl, WorkerTask } from '../jobs/pool.ts';
import { toErrorData, type ErrorData } from '../core/errors.ts';

/** Thread entry point of a dataset import: runs the datasets pipeline into a storage sink. */
export interface ImportWorkerPayload {
  workspace: string;
  project_id: string;
  dataset_id: string;
  task: DatasetTask;
  source: ImportSource;
  limits: ImportLimits;
}

/**
 * Errors lose their class and `code` when cloned across threads, so the worker returns a failure
 * as data and the main thread turns it back into an AppError.
 */
export type ImportWorkerResult = { ok: true; report: ImportReport } | { ok: false; error: ErrorData };

export type ImportWorkerMessage = { type: 'progress'; progress: ImportProgress } | { type: 'log'; message: string };

const PROGRESS_EVERY_MS = 200;

export default async function importWorker({ payload, port }: WorkerTask<ImportWorkerPayload>): Promise<ImportWorkerResult> {
  const controller = new AbortController();
  port.on('message', (m: WorkerControl) => {
    if (m.type === 'abort') controller.abort();
  });
  const post = (m: ImportWorkerMessage): void => port.postMessage(m);
  // The main thread opened (and cleaned) the workspace already; a second open would walk it again.
  const store = new Workspace(payload.workspace);
  const sink = createImportSink(store, payload.project_id, payload.dataset_id);
  try {
    let last = 0;
    let latest: ImportProgress | undefined;
    const report = await runImport(payload.source, sink, {
      signal: controller.signal,
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
    return { ok: true, report };
  } catch (e) {
    if (controller.signal.aborted) throw e;
    return { ok: false, error: toErrorData(e) };
  } finally {
    // Images already written are recorded even when the import fails or is cancelled: no orphan files.
    await sink.close();
    port.close();
  }
}
