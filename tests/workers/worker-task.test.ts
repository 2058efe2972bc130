import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/kernel/errors.ts';
import { cancelledFailure, runWorkerTask, type WorkerLog, type WorkerScope } from '../../src/workers/worker-task.ts';

/** The helper on a plain MessageChannel: the main thread's side is `main`, the worker's is `port`. */
type Msg = { type: 'progress'; n: number } | WorkerLog;

function channel(): { port: MessagePort; main: MessagePort; received: unknown[]; closed: Promise<void> } {
  const { port1: port, port2: main } = new MessageChannel();
  const received: unknown[] = [];
  main.on('message', (m) => received.push(m));
  const closed = new Promise<void>((resolve) => main.once('close', () => resolve()));
  return { port, main, received, closed };
}

describe('runWorkerTask', () => {
  it('gives the work its messages, log and workspace, returns its answer, and closes the port', async () => {
    const c = channel();
    const out = await runWorkerTask({ payload: { workspace: '/tmp/ws-x' }, port: c.port }, { cancelled: cancelledFailure }, async ({ post, log, store, signal }: WorkerScope<Msg>) => {
      post({ type: 'progress', n: 1 });
      log('hello');
      return { ok: true as const, root: store.root, aborted: signal.aborted };
    });
    expect(out).toEqual({ ok: true, root: '/tmp/ws-x', aborted: false });
    await c.closed;
    expect(c.received).toEqual([{ type: 'progress', n: 1 }, { type: 'log', message: 'hello' }]);
  });

  it('returns a thrown error as data with its code', async () => {
    const c = channel();
    const out = await runWorkerTask({ payload: { workspace: '/tmp/ws-x' }, port: c.port }, { cancelled: cancelledFailure }, async () => {
      throw new AppError('BAD_INPUT', 'no good');
    });
    expect(out).toMatchObject({ ok: false, error: { code: 'BAD_INPUT', message: 'no good' } });
    await c.closed;
  });

  it('aborts on the main thread\'s abort message and answers as the worker chose for a cancel', async () => {
    const c = channel();
    const task = runWorkerTask({ payload: { workspace: '/tmp/ws-x' }, port: c.port }, { cancelled: cancelledFailure }, ({ signal }: WorkerScope<Msg>) =>
      new Promise<{ ok: true }>((_, reject) => signal.addEventListener('abort', () => reject(new Error('stopped')))),
    );
    c.main.postMessage({ type: 'abort' });
    expect(await task).toEqual({ ok: false, error: { code: 'CANCELLED', message: 'cancelled' } });

    const d = channel();
    const rethrown = runWorkerTask(
      { payload: { workspace: '/tmp/ws-x' }, port: d.port },
      {
        cancelled: (e) => {
          throw e;
        },
      },
      ({ signal }: WorkerScope<Msg>) => new Promise<{ ok: true }>((_, reject) => signal.addEventListener('abort', () => reject(new Error('stopped')))),
    );
    d.main.postMessage({ type: 'abort' });
    await expect(rethrown).rejects.toThrow('stopped');
    await d.closed;
  });
});
