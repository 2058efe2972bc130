import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRunsService, type RunsService } from '../../src/core/runs.ts';
import type { TrainingPool } from '../../src/core/runs.ts';
import { modifyRun } from '../../src/storage/runs.ts';
import { call, makeStudio, type TestStudio } from '../api/helpers.ts';
import { makeShapesProject, type ShapesProject } from '../api/runs-fixtures.ts';

/**
 * The runs service with a stand-in for the training thread: how a run is settled when the thread
 * dies (piscina rejects the task), and the start-up settlement of runs an earlier process left.
 */
let s: TestStudio;
let p: ShapesProject;
let expId: string;

beforeAll(async () => {
  s = await makeStudio();
  p = await makeShapesProject(s.app, s.dir, { perClass: 4, size: 32 });
  const exp = await call<{ id: string }>(s.app, 'POST', `/api/projects/${p.pid}/experiments`, {
    name: 'core',
    dataset_id: p.datasetId,
    split_name: 'main',
    model: { architecture: 'small_cnn' },
  });
  expId = exp.body.data.id;
}, 60_000);
afterAll(async () => s?.close());

function service(pool: TrainingPool): RunsService {
  const { store, jobs, experiments } = s.app.studio;
  return createRunsService({ store, jobs, experiments, pool });
}

describe('runs service', () => {
  it('a training thread that dies settles the run and its job as failed, with the reason', async () => {
    const runs = service({
      run: async () => {
        throw new Error('worker exited with code 134');
      },
      destroy: async () => undefined,
    });
    const { run, job } = await runs.start(p.pid, expId);
    const settled = await runs.wait(p.pid, expId, run.id);
    expect(settled.status).toBe('failed');
    expect(settled.error?.message).toContain('worker exited');
    expect(settled.finished_at).not.toBeNull();
    expect((await s.app.studio.jobs.get(job.id)).status).toBe('failed');
    expect(runs.queue()).toEqual([]);
    await runs.close();
  });

  it('a closing studio settles the training run as interrupted (resumable), not cancelled', async () => {
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const runs = service({
      run: (_payload, o) =>
        new Promise((_resolve, reject) => {
          started();
          o.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
        }),
      destroy: async () => undefined,
    });
    const { run } = await runs.start(p.pid, expId);
    await running;
    expect(runs.queue().map((q) => q.status)).toEqual(['running']);
    await runs.close();
    const after = await s.app.studio.runs.get(p.pid, expId, run.id);
    expect(after.status).toBe('interrupted');
  });

  it('at start-up, runs left queued or running become interrupted', async () => {
    const runs = service({ run: async () => ({ ok: true, epochs_done: 0, stop_reason: 'completed', best: null }), destroy: async () => undefined });
    const { run } = await runs.start(p.pid, expId);
    await runs.wait(p.pid, expId, run.id);
    // As a killed process leaves it.
    await modifyRun(s.app.studio.store, { projectId: p.pid, experimentId: expId, runId: run.id }, (r) => ({ ...r, status: 'running', finished_at: null }));
    const settled = await runs.settleInterrupted();
    expect(settled.map((r) => [r.id, r.status])).toContainEqual([run.id, 'interrupted']);
    expect((await runs.get(p.pid, expId, run.id)).error?.code).toBe('INTERRUPTED');
    await runs.close();
  });
});
