/**
 * Per-job event log for SSE. Every event gets the next integer id of its job, so a client that
 * reconnects with `Last-Event-ID: n` is sent exactly the events after n. Progress events are
 * frequent and only the latest matters, so the log keeps every non-progress event but only the
 * last progress event; a late subscriber still sees the whole story in order.
 */
export type JobEventType = 'progress' | 'metric' | 'log' | 'done' | 'error';

export interface JobEvent {
  id: number;
  type: JobEventType;
  data: unknown;
}

type Listener = (e: JobEvent) => void;

interface Log {
  events: JobEvent[];
  nextId: number;
  listeners: Set<Listener>;
  finished: boolean;
}

export interface JobEvents {
  publish(jobId: string, type: JobEventType, data: unknown): JobEvent;
  /** Events with id > afterId, in order. */
  since(jobId: string, afterId: number): JobEvent[];
  /** Calls `fn` for every later event; returns the unsubscribe function. */
  subscribe(jobId: string, fn: Listener): () => void;
  isFinished(jobId: string): boolean;
  has(jobId: string): boolean;
  clear(): void;
}

const MAX_LOG_EVENTS = 2000;
const MAX_FINISHED_LOGS = 200;

export function createJobEvents(): JobEvents {
  const logs = new Map<string, Log>();
  const finishedOrder: string[] = [];

  const logOf = (jobId: string): Log => {
    let log = logs.get(jobId);
    if (!log) {
      log = { events: [], nextId: 1, listeners: new Set(), finished: false };
      logs.set(jobId, log);
    }
    return log;
  };

  return {
    publish(jobId, type, data) {
      const log = logOf(jobId);
      const event: JobEvent = { id: log.nextId++, type, data };
      const last = log.events.at(-1);
      if (type === 'progress' && last?.type === 'progress') log.events[log.events.length - 1] = event;
      else log.events.push(event);
      if (log.events.length > MAX_LOG_EVENTS) log.events.splice(0, log.events.length - MAX_LOG_EVENTS);
      if (type === 'done' || type === 'error') {
        log.finished = true;
        finishedOrder.push(jobId);
        // Finished jobs' logs are kept for late readers, but not forever.
        while (finishedOrder.length > MAX_FINISHED_LOGS) logs.delete(finishedOrder.shift() as string);
      }
      for (const fn of [...log.listeners]) fn(event);
      return event;
    },
    since(jobId, afterId) {
      return (logs.get(jobId)?.events ?? []).filter((e) => e.id > afterId);
    },
    subscribe(jobId, fn) {
      const log = logOf(jobId);
      log.listeners.add(fn);
      return () => log.listeners.delete(fn);
    },
    isFinished(jobId) {
      return logs.get(jobId)?.finished ?? false;
    },
    has(jobId) {
      return logs.has(jobId);
    },
    clear() {
      logs.clear();
      finishedOrder.length = 0;
    },
  };
}
