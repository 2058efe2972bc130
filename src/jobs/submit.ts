import { AppError, fromErrorData, type ErrorData } from '../kernel/errors.ts';
import type { JobView } from './registry.ts';
import type { JobHandle, JobOutcome, JobsService } from './service.ts';

/**
 * A job whose work runs in a worker thread: the one way the services submit training, evaluation,
 * export and import. The job's `run` marks the work started (`onStart`), runs the worker with the
 * job's signal, hands each message the worker posts to `onMessage`, turns a cancelled job into a
 * settled cancellation even when the worker returned, and a worker's failure (data, not a throw:
 * src/workers/worker-task.ts) back into its AppError. `onSettled` runs whatever the outcome.
 */

/** A worker's answer: a result, or the failure it caught, as data. */
export type WorkerAnswer<R> = R | { ok: false; error: ErrorData };

export interface WorkerJobSpec<M, R> {
  kind: string;
  project_id?: string;
  experiment_id?: string;
  dataset_id?: string;
  /** Runs the worker (a pool's `run` with its payload bound). */
  work(opts: { signal: AbortSignal; onMessage: (m: M) => void }): Promise<WorkerAnswer<R>>;
  /** Before the worker starts (e.g. the record → `running`). */
  onStart?(handle: JobHandle): Promise<void>;
  /** Each message the worker posts: progress, logs, metrics. */
  onMessage(m: M, handle: JobHandle): void;
  onSettled?(outcome: JobOutcome<R>): Promise<void>;
}

function failed(answer: unknown): answer is { ok: false; error: ErrorData } {
  return typeof answer === 'object' && answer !== null && (answer as { ok?: unknown }).ok === false && 'error' in answer;
}

export function submitWorkerJob<M, R>(jobs: Pick<JobsService, 'submit'>, spec: WorkerJobSpec<M, R>): Promise<JobView> {
  return jobs.submit<R>({
    kind: spec.kind,
    ...(spec.project_id === undefined ? {} : { project_id: spec.project_id }),
    ...(spec.experiment_id === undefined ? {} : { experiment_id: spec.experiment_id }),
    ...(spec.dataset_id === undefined ? {} : { dataset_id: spec.dataset_id }),
    run: async (handle) => {
      await spec.onStart?.(handle);
      const out = await spec.work({ signal: handle.signal, onMessage: (m) => spec.onMessage(m, handle) });
      // A worker asked to stop returns what it has; the job still settles as cancelled.
      if (handle.signal.aborted) throw new AppError('CONFLICT', 'cancelled');
      if (failed(out)) throw fromErrorData(out.error);
      return out as R;
    },
    ...(spec.onSettled ? { onSettled: spec.onSettled } : {}),
  });
}
