import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../src/kernel/errors.ts';
import { createJobRegistry } from '../../src/jobs/registry.ts';
import { createJobsService, type JobsService } from '../../src/jobs/service.ts';
import type { WorkerPool } from '../../src/jobs/pool.ts';
import { openWorkspace, type Workspace } from '../../src/storage/workspace.ts';

/** The service is tested without threads: jobs here run in-process functions. */
const noPool: WorkerPool = {
  run: async () => {
    throw new Error('no pool in this test');
  },
  destroy: async () => undefined,
};

let dir: string;
let store: Workspace;
let jobs: JobsService;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-jobs-'));
  store = await openWorkspace(dir);
  jobs = createJobsService(createJobRegistry(store), { pool: noPool, maxConcurrent: 1 });
});
afterEach(async () => {
  await jobs.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A job that waits for the test to let it go (or for its cancellation). */
function gate() {
  let open: () => void = () => {};
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

describe('jobs service', () => {
  it('runs a job to success, persisting status, progress and result, and publishing events', async () => {
    const job = await jobs.submit({
      kind: 'test',
      run: async (h) => {
        h.progress(0.5, { done: 1, total: 2 });
        h.log('working');
        return { answer: 42 };
      },
    });
    expect(job.status).toBe('queued');
    const done = await jobs.wait(job.id);
    expect(done).toMatchObject({ status: 'succeeded', progress: 1, result: { answer: 42 } });
    expect(done.finished_at).toBeDefined();
    const stored = await store.readJob(job.id);
    expect(stored?.status).toBe('succeeded');
    const types = jobs.events.since(job.id, 0).map((e) => e.type);
    expect(types).toEqual(['progress', 'log', 'done']);
  });

  it('records a failure with the error code', async () => {
    const job = await jobs.submit({
      kind: 'test',
      run: async () => {
        throw new AppError('BAD_ARCHIVE', 'not a zip');
      },
    });
    const done = await jobs.wait(job.id);
    expect(done).toMatchObject({ status: 'failed', error: { code: 'BAD_ARCHIVE', message: 'not a zip' } });
    const last = jobs.events.since(job.id, 0).at(-1);
    expect(last).toMatchObject({ type: 'error', data: { status: 'failed', code: 'BAD_ARCHIVE' } });
  });

  it('queues beyond maxConcurrent and runs in order', async () => {
    const g = gate();
    const first = await jobs.submit({ kind: 'test', run: async () => g.opened });
    const second = await jobs.submit({ kind: 'test', run: async () => 'second' });
    await sleep(50);
    expect((await jobs.get(first.id)).status).toBe('running');
    expect((await jobs.get(second.id)).status).toBe('queued');
    g.open();
    expect((await jobs.wait(second.id)).status).toBe('succeeded');
  });

  it('cancels a running job (its signal fires) and a queued one; a finished job is a CONFLICT', async () => {
    let sawAbort = false;
    const running = await jobs.submit({
      kind: 'test',
      run: (h) =>
        new Promise((_, reject) => {
          h.signal.addEventListener('abort', () => {
            sawAbort = true;
            reject(new Error('aborted'));
          });
        }),
    });
    const queued = await jobs.submit({ kind: 'test', run: async () => 'never' });
    await sleep(30);
    expect((await jobs.get(queued.id)).status).toBe('queued');
    const c2 = await jobs.cancel(queued.id);
    expect(c2.status).toBe('cancelled');
    const c1 = await jobs.cancel(running.id);
    expect(c1.status).toBe('cancelled');
    expect(sawAbort).toBe(true);
    await expect(jobs.cancel(running.id)).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('cancels the jobs within a project or one experiment of it, and resolves once they settled', async () => {
    const settled: string[] = [];
    const waitForAbort = (name: string) => ({
      kind: 'test',
      run: (h: { signal: AbortSignal }) => new Promise<never>((_, reject) => h.signal.addEventListener('abort', () => reject(new Error('aborted')))),
      onSettled: async () => {
        await sleep(20);
        settled.push(name);
      },
    });
    const own = createJobsService(createJobRegistry(store), { pool: noPool, maxConcurrent: 2 });
    try {
      const a1 = await own.submit({ ...waitForAbort('a1'), project_id: 'proj-aaaaaaaa', experiment_id: 'exp-1' });
      const a2 = await own.submit({ ...waitForAbort('a2'), project_id: 'proj-aaaaaaaa', experiment_id: 'exp-2' });
      const queued = await own.submit({ ...waitForAbort('a-queued'), project_id: 'proj-aaaaaaaa' });
      const b = await own.submit({ ...waitForAbort('b'), project_id: 'proj-bbbbbbbb', experiment_id: 'exp-1' });
      await sleep(30);
      await own.cancelWithin({ projectId: 'proj-aaaaaaaa', experimentId: 'exp-1' });
      expect(settled).toEqual(['a1']);
      expect((await own.get(a1.id)).status).toBe('cancelled');
      await own.cancelWithin({ projectId: 'proj-aaaaaaaa' });
      expect(settled.sort()).toEqual(['a-queued', 'a1', 'a2']);
      expect([(await own.get(a2.id)).status, (await own.get(queued.id)).status, (await own.get(b.id)).status]).toEqual(['cancelled', 'cancelled', 'running']);
      await own.cancelWithin({ projectId: 'proj-nnnnnnnn' });
    } finally {
      await own.close();
    }
  });

  it('runs onSettled before publishing the end, and a failing onSettled fails the job', async () => {
    const order: string[] = [];
    const job = await jobs.submit({
      kind: 'test',
      run: async () => 'ok',
      onSettled: async (o) => {
        order.push(`settled:${o.status}`);
        throw new AppError('STORAGE_CORRUPT', 'could not finish');
      },
    });
    jobs.events.subscribe(job.id, (e) => order.push(e.type));
    const done = await jobs.wait(job.id);
    expect(order).toEqual(['settled:succeeded', 'error']);
    expect(done).toMatchObject({ status: 'failed', error: { code: 'STORAGE_CORRUPT' } });
  });

  it('a shutdown stops running jobs as interrupted, not cancelled', async () => {
    const own = createJobsService(createJobRegistry(store), { pool: noPool });
    const job = await own.submit({
      kind: 'test',
      run: (h) => new Promise((_, reject) => h.signal.addEventListener('abort', () => reject(new Error('aborted')))),
    });
    await sleep(30);
    await own.close();
    expect(await store.readJob(job.id)).toMatchObject({ status: 'interrupted', error: { code: 'INTERRUPTED' } });
    await expect(own.submit({ kind: 'test', run: async () => 1 })).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('marks jobs left queued or running by a dead process as interrupted', async () => {
    const now = new Date().toISOString();
    for (const [id, status] of [
      ['job-running1', 'running'],
      ['job-queued01', 'queued'],
      ['job-succeed1', 'succeeded'],
    ] as const) {
      await store.writeJob({ schema_version: 1, id, kind: 'import', status, progress: 0.3, created_at: now, updated_at: now });
    }
    const fresh = createJobsService(createJobRegistry(store), { pool: noPool });
    const settled = await fresh.settleInterrupted();
    expect(settled.map((j) => j.id).sort()).toEqual(['job-queued01', 'job-running1']);
    expect((await fresh.get('job-running1')).status).toBe('interrupted');
    expect((await fresh.get('job-succeed1')).status).toBe('succeeded');
    await fresh.close();
  });
});
