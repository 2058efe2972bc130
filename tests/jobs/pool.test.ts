import { describe, expect, it } from 'vitest';
import { createThreadPool, type PoolSettings } from '../../src/jobs/pool.ts';

/** The worker-thread pool's protocol: messages on the port, cancelling by asking first, a worker that cannot load. */

const settings: PoolSettings = { maxThreads: 1, idleTimeoutMs: 1_000, abortGraceMs: 5_000 };
const file = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).href;
type Payload = { text: string; wait: boolean };
type Message = { type: 'log'; message: string };

describe('worker pool', () => {
  it('runs a .ts worker under tsx and relays the messages it posts', async () => {
    const pool = createThreadPool<Payload, Message, string>(file('echo-worker.ts'), settings);
    const seen: Message[] = [];
    try {
      const out = await pool.run({ text: 'hello', wait: false }, { signal: new AbortController().signal, onMessage: (m) => seen.push(m) });
      expect(out).toBe('done: hello');
      expect(seen).toEqual([{ type: 'log', message: 'hello' }]);
    } finally {
      await pool.destroy();
    }
  });

  it('cancels by asking the worker on its port, which then returns on its own', async () => {
    const pool = createThreadPool<Payload, Message, string>(file('echo-worker.ts'), settings);
    const ac = new AbortController();
    try {
      const running = pool.run({ text: 'long', wait: true }, { signal: ac.signal, onMessage: () => ac.abort() });
      expect(await running).toBe('stopped');
    } finally {
      await pool.destroy();
    }
  });

  it('fails the waiting task when its worker cannot load, rather than hanging', async () => {
    const pool = createThreadPool<Payload, Message, string>(file('broken-worker.ts'), settings);
    try {
      await expect(pool.run({ text: 'x', wait: false }, { signal: new AbortController().signal, onMessage: () => undefined })).rejects.toThrow();
    } finally {
      await pool.destroy();
    }
  }, 10_000);
});
