import lockfile from 'proper-lockfile';

export interface LockOptions {
  /** A lock older than this (its holder died without releasing) is taken over. */
  staleMs: number;
}

export const DEFAULT_LOCK_OPTIONS: LockOptions = { staleMs: 10_000 };

/**
 * In-process queue per file: proper-lockfile's lock is a `mkdir`, and its retry back-off would
 * make callers in the same thread poll each other; chaining them here keeps that path instant and
 * leaves proper-lockfile to arbitrate between processes and worker threads.
 */
const queues = new Map<string, Promise<unknown>>();

/**
 * Runs `fn` while holding `<file>.lock` (proper-lockfile, so other processes and threads wait too).
 * The file itself need not exist yet.
 */
export async function withFileLock<T>(file: string, fn: () => Promise<T>, opts: LockOptions = DEFAULT_LOCK_OPTIONS): Promise<T> {
  const prev = queues.get(file) ?? Promise.resolve();
  const run = prev.catch(() => undefined).then(() => lockedRun(file, fn, opts));
  const settled = run.catch(() => undefined);
  queues.set(file, settled);
  try {
    return await run;
  } finally {
    if (queues.get(file) === settled) queues.delete(file);
  }
}

async function lockedRun<T>(file: string, fn: () => Promise<T>, opts: LockOptions): Promise<T> {
  let compromised: Error | undefined;
  const release = await lockfile.lock(file, {
    realpath: false,
    stale: opts.staleMs,
    // Enough patience to outlast a stale lock left by a crashed holder (stale + margin).
    retries: { retries: Math.ceil((opts.staleMs * 2) / 100), factor: 1.3, minTimeout: 5, maxTimeout: 100 },
    // The default throws from a timer, which would take the whole server down.
    onCompromised: (err) => {
      compromised = err;
    },
  });
  try {
    const out = await fn();
    if (compromised) throw compromised;
    return out;
  } finally {
    await release().catch(() => undefined);
  }
}
