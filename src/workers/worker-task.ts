import { toErrorData, type ErrorData } from '../kernel/errors.ts';
import type { WorkerControl, WorkerTask } from '../jobs/pool.ts';
import { Workspace } from '../storage/workspace.ts';

/**
 * What every worker thread's entry point does around its own work: listen on its port for the
 * main thread's abort, post typed messages back, open the workspace, return a failure as data, and
 * close the port when done (an open port would keep the task from settling).
 */

/** A log line; every worker may post one. */
export type WorkerLog = { type: 'log'; message: string };

/**
 * Errors lose their class and `code` when cloned across threads, so a worker returns a failure as
 * data and the main thread turns it back into an AppError.
 */
export type WorkerFailure = { ok: false; error: ErrorData };

/** The answer of a cancelled evaluation or export (the main thread records them as cancelled). */
export const cancelledFailure = (): WorkerFailure => ({ ok: false, error: { code: 'CANCELLED', message: 'cancelled' } });

export interface WorkerScope<M> {
  /** Aborted when the main thread cancels the task. */
  signal: AbortSignal;
  post(message: M | WorkerLog): void;
  log(message: string): void;
  /** The main thread opened (and cleaned) the workspace already; a second open would walk it again. */
  store: Workspace;
}

export interface WorkerTaskOptions<R> {
  /** The answer when the work threw after a cancel (rethrowing lets piscina report the abort). */
  cancelled(error: unknown): R | WorkerFailure;
}

export async function runWorkerTask<P extends { workspace: string }, M extends { type: string }, R>(
  { payload, port }: WorkerTask<P>,
  opts: WorkerTaskOptions<R>,
  work: (scope: WorkerScope<M>) => Promise<R>,
): Promise<R | WorkerFailure> {
  const controller = new AbortController();
  port.on('message', (m: WorkerControl) => {
    if (m.type === 'abort') controller.abort();
  });
  const post = (message: M | WorkerLog): void => port.postMessage(message);
  const scope: WorkerScope<M> = {
    signal: controller.signal,
    post,
    log: (message) => post({ type: 'log', message }),
    store: new Workspace(payload.workspace),
  };
  try {
    return await work(scope);
  } catch (e) {
    if (controller.signal.aborted) return opts.cancelled(e);
    return { ok: false, error: toErrorData(e) };
  } finally {
    port.close();
  }
}
