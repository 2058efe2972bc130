import { AppError } from '../kernel/errors.ts';
import type { JobStatus } from '../schemas/index.ts';
import { createJobEvents, type JobEvents } from './events.ts';
import { createWorkerPool, type WorkerPool } from './pool.ts';
import type { JobRegistry, JobView } from './registry.ts';

/**
 * Jobs: a record in the registry (durable) plus a task (in memory) plus an event log (SSE).
 * A job's `run` gets a handle to report progress and logs and an AbortSignal for cancellation;
 * this service owns the status transitions queued → running → succeeded | failed | cancelled.
 */
export interface JobHandle {
  readonly id: string;
  readonly signal: AbortSignal;
  /** fraction in 0..1; detail = kind-specific counters (persisted at most once a second). */
  progress(fraction: number, detail?: Record<string, number>): void;
  log(message: string): void;
}

export interface JobSpec<T> {
  kind: string;
  project_id?: string;
  dataset_id?: string;
  /** The experiment whose folder the job writes into, if any: `cancelWithin` finds it by this (not recorded). */
  experiment_id?: string;
  run(job: JobHandle): Promise<T>;
  /** Runs after the job settled (whatever the outcome) and before `done`/`error` is published. */
  onSettled?(outcome: JobOutcome<T>): Promise<void>;
}

export type JobOutcome<T> =
  | { status: 'succeeded'; result: T }
  | { status: 'failed' | 'cancelled' | 'interrupted'; error: { code: string; message: string } };

export interface JobsService {
  readonly events: JobEvents;
  readonly pool: WorkerPool;
  submit<T>(spec: JobSpec<T>): Promise<JobView>;
  get(id: string): Promise<JobView>;
  cancel(id: string): Promise<JobView>;
  /** Resolves once the job is finished (immediately for one that already is). */
  wait(id: string): Promise<JobView>;
  /**
   * Cancels every queued or running job of this process within the project (or within one of its
   * experiments) and resolves once they all settled: what is about to be deleted gets no more writes.
   */
  cancelWithin(scope: JobScope): Promise<void>;
  /** Jobs found `queued`/`running` from an earlier process become `interrupted`; returns them. */
  settleInterrupted(): Promise<JobView[]>;
  close(): Promise<void>;
}

export interface JobScope {
  projectId: string;
  experimentId?: string;
}

export const FINISHED: ReadonlySet<JobStatus> = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);
const PERSIST_EVERY_MS = 1000;

interface Live {
  controller: AbortController;
  done: Promise<void>;
  projectId?: string;
  experimentId?: string;
}

export interface JobsOptions {
  /** Jobs running at once; the rest wait as `queued`. */
  maxConcurrent?: number;
  pool?: WorkerPool;
}

export function createJobsService(registry: JobRegistry, opts: JobsOptions = {}): JobsService {
  const events = createJobEvents();
  const pool = opts.pool ?? createWorkerPool();
  const maxConcurrent = opts.maxConcurrent ?? 2;
  const live = new Map<string, Live>();
  const waiting: Array<() => void> = [];
  let running = 0;
  let closed = false;

  /** Waits for a free slot; false when the job was cancelled while it waited (no slot taken). */
  const acquire = async (signal: AbortSignal): Promise<boolean> => {
    if (signal.aborted) return false;
    if (running < maxConcurrent) {
      running++;
      return true;
    }
    return new Promise<boolean>((resolve) => {
      const grant = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      };
      const onAbort = (): void => {
        const i = waiting.indexOf(grant);
        if (i >= 0) waiting.splice(i, 1);
        resolve(false);
      };
      waiting.push(grant);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  };
  // A finishing job hands its slot straight to the next waiting one.
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else running--;
  };

  async function execute<T>(id: string, spec: JobSpec<T>, controller: AbortController): Promise<void> {
    const acquired = await acquire(controller.signal);
    let lastPersist = 0;
    // Progress writes are throttled; the latest detail is written with the final status.
    let lastDetail: JobView['progress_detail'] | undefined;
    let pending: Promise<unknown> = Promise.resolve();
    const persist = (patch: Partial<JobView>) => {
      // Writes of one job are chained so an older progress write never lands after a newer one.
      pending = pending.then(() => registry.update(id, patch)).catch(() => undefined);
      return pending;
    };
    let outcome: JobOutcome<T>;
    if (!acquired) {
      outcome = { status: 'cancelled', error: { code: 'CANCELLED', message: 'cancelled before it started' } };
    } else {
      try {
        await persist({ status: 'running', started_at: new Date().toISOString() });
        const handle: JobHandle = {
          id,
          signal: controller.signal,
          progress(fraction, detail) {
            const progress = Math.min(1, Math.max(0, fraction));
            events.publish(id, 'progress', { progress, ...detail });
            if (detail) lastDetail = detail;
            const now = Date.now();
            if (now - lastPersist >= PERSIST_EVERY_MS) {
              lastPersist = now;
              void persist(detail ? { progress, progress_detail: detail } : { progress });
            }
          },
          log(message) {
            events.publish(id, 'log', { message });
          },
        };
        const result = await spec.run(handle);
        outcome = { status: 'succeeded', result };
      } catch (err) {
        if (!controller.signal.aborted) outcome = { status: 'failed', error: describeError(err) };
        // Aborted by a shutdown rather than a person: the job was interrupted, not cancelled.
        else if (closed) outcome = { status: 'interrupted', error: { code: 'INTERRUPTED', message: 'the studio shut down during this job' } };
        else outcome = { status: 'cancelled', error: { code: 'CANCELLED', message: 'cancelled' } };
      } finally {
        release();
      }
    }
    try {
      await spec.onSettled?.(outcome);
    } catch (err) {
      if (outcome.status === 'succeeded') outcome = { status: 'failed', error: describeError(err) };
    }
    const finished_at = new Date().toISOString();
    await pending;
    if (outcome.status === 'succeeded') {
      await registry.update(id, { status: 'succeeded', progress: 1, ...(lastDetail ? { progress_detail: lastDetail } : {}), result: outcome.result, finished_at }).catch(() => undefined);
      events.publish(id, 'done', { status: 'succeeded', result: outcome.result });
    } else {
      await registry.update(id, { status: outcome.status, ...(lastDetail ? { progress_detail: lastDetail } : {}), error: outcome.error, finished_at }).catch(() => undefined);
      events.publish(id, 'error', { status: outcome.status, ...outcome.error });
    }
  }

  const service: JobsService = {
    events,
    pool,
    async submit<T>(spec: JobSpec<T>) {
      if (closed) throw new AppError('CONFLICT', 'the studio is shutting down');
      const record = await registry.create({ kind: spec.kind, project_id: spec.project_id, dataset_id: spec.dataset_id });
      const controller = new AbortController();
      const done = execute(record.id, spec, controller).finally(() => live.delete(record.id));
      live.set(record.id, { controller, done, projectId: spec.project_id, experimentId: spec.experiment_id });
      events.publish(record.id, 'progress', { progress: 0 });
      return record;
    },
    async get(id) {
      return registry.get(id);
    },
    async cancel(id) {
      const job = await registry.get(id);
      const l = live.get(id);
      if (!l || FINISHED.has(job.status)) throw new AppError('CONFLICT', `job '${id}' is not running (${job.status})`);
      l.controller.abort();
      await l.done;
      return registry.get(id);
    },
    async wait(id) {
      const l = live.get(id);
      if (l) await l.done;
      return registry.get(id);
    },
    async cancelWithin(scope) {
      const mine = [...live.values()].filter((l) => l.projectId === scope.projectId && (scope.experimentId === undefined || l.experimentId === scope.experimentId));
      for (const l of mine) l.controller.abort();
      await Promise.allSettled(mine.map((l) => l.done));
    },
    async settleInterrupted() {
      const out: JobView[] = [];
      for (const job of await registry.list()) {
        if (job.status !== 'queued' && job.status !== 'running') continue;
        const error = { code: 'INTERRUPTED', message: 'the studio stopped while this job was running' };
        out.push(await registry.update(job.id, { status: 'interrupted', error, finished_at: new Date().toISOString() }));
      }
      return out;
    },
    async close() {
      closed = true;
      for (const l of live.values()) l.controller.abort();
      await Promise.allSettled([...live.values()].map((l) => l.done));
      await pool.destroy();
      events.clear();
    },
  };
  return service;
}

function describeError(err: unknown): { code: string; message: string } {
  if (err instanceof AppError) return { code: err.code, message: err.message };
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' && /^[A-Z_]{3,40}$/.test(e.code) ? e.code : 'INTERNAL';
  return { code, message: typeof e?.message === 'string' ? e.message.slice(0, 2000) : String(err) };
}

