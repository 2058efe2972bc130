import os from 'node:os';
import { createSession, type Session } from '../runtime/session.ts';

/**
 * Loaded onnxruntime sessions for predict (src/export/predict.ts), so trying images one after
 * another does not reload a model each time. Bounded (least recently used goes first), keyed by the export and variant.
 * A session is released only once no request is using it: eviction and `release` mark it, and
 * the last user out releases it.
 */

export interface PredictCache {
  /** Runs `fn` with the session of `key`, loading it from `load()` when it is not cached. */
  use<T>(key: string, load: () => Promise<Uint8Array>, fn: (s: Session) => Promise<T>): Promise<T>;
  /** Drops every session whose key starts with `prefix` (an export deleted). */
  release(prefix: string): Promise<void>;
  /** Keys cached now, least recently used first. */
  keys(): string[];
  close(): Promise<void>;
}

interface Entry {
  session: Promise<Session>;
  users: number;
  dropped: boolean;
}

export interface PredictCacheOptions {
  /** Sessions kept at once (default 4). */
  max?: number;
  /** Intra-op threads per session (default: every core). */
  threads?: number;
}

export function createPredictCache(opts: PredictCacheOptions = {}): PredictCache {
  const max = Math.max(1, opts.max ?? 4);
  const threads = opts.threads ?? os.availableParallelism();
  // Map order is the recency order: a hit is moved to the end.
  const entries = new Map<string, Entry>();

  async function dispose(e: Entry): Promise<void> {
    const s = await e.session.catch(() => null);
    await s?.release();
  }

  async function drop(key: string): Promise<void> {
    const e = entries.get(key);
    if (!e) return;
    entries.delete(key);
    e.dropped = true;
    if (e.users === 0) await dispose(e);
  }

  return {
    async use(key, load, fn) {
      let e = entries.get(key);
      if (e) entries.delete(key);
      else e = { session: load().then((bytes) => createSession(bytes, { threads })), users: 0, dropped: false };
      entries.set(key, e);
      e.users++;
      const evicted: Promise<void>[] = [];
      while (entries.size > max) {
        const oldest = entries.keys().next().value;
        if (oldest === undefined) break;
        evicted.push(drop(oldest));
      }
      await Promise.all(evicted);
      try {
        return await fn(await e.session);
      } catch (err) {
        // A model that failed to load is not kept: the next request tries again.
        if (entries.get(key) === e && (await e.session.then(() => false, () => true))) entries.delete(key);
        throw err;
      } finally {
        e.users--;
        if (e.dropped && e.users === 0) await dispose(e);
      }
    },
    async release(prefix) {
      await Promise.all([...entries.keys()].filter((k) => k.startsWith(prefix)).map(drop));
    },
    keys: () => [...entries.keys()],
    async close() {
      await Promise.all([...entries.keys()].map(drop));
    },
  };
}
