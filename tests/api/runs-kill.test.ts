import type { ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSyntheticFolder } from '../../src/datasets/synthetic.ts';
import { freePort, studioProcess, type StudioProcess } from '../studio-process.ts';

/**
 * The studio process dies (SIGKILL) while a run trains; the next start settles the run and its
 * job as `interrupted` before it takes requests, and the run resumes from its last checkpoint.
 */
let dir: string;
let studio: StudioProcess;
let server: ChildProcess | undefined;
const api: StudioProcess['api'] = (method, url, body) => studio.api(method, url, body);

async function poll<T>(url: string, pred: (v: T) => boolean, timeoutMs = 120_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = (await api<T>('GET', url)).body.data;
    if (pred(v)) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out polling ${url}: ${JSON.stringify(v).slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Run {
  id: string;
  status: string;
  job_id: string;
  epochs_done: number;
  resumes: number;
  error: { code: string } | null;
  metrics: Array<{ epoch: number }>;
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-kill-'));
  studio = studioProcess(await freePort(), path.join(dir, 'ws'));
});
afterAll(async () => {
  server?.kill('SIGKILL');
  await fs.rm(dir, { recursive: true, force: true });
});

describe('a server killed mid-run', () => {
  it('settles the run as interrupted at the next start, and the run resumes', async () => {
    const src = path.join(dir, 'shapes');
    await writeSyntheticFolder(src, { classes: ['circle', 'square', 'triangle', 'star'], perClass: 30, size: 48, seed: 5 });
    server = await studio.start();
    const pid = (await api<{ id: string }>('POST', '/api/projects', { name: 'kill' })).body.data.id;
    const imported = await api<{ dataset: { id: string }; job: { id: string } }>('POST', `/api/projects/${pid}/datasets`, {
      name: 'shapes',
      source: { kind: 'folder', path: src },
    });
    const dsId = imported.body.data.dataset.id;
    await poll<{ status: string }>(`/api/jobs/${imported.body.data.job.id}`, (j) => j.status === 'succeeded');
    await api('POST', `/api/projects/${pid}/datasets/${dsId}/splits`, { name: 'main', ratios: { train: 0.8, val: 0.2, test: 0 } });
    const exp = await api<{ id: string }>('POST', `/api/projects/${pid}/experiments`, {
      name: 'killed',
      dataset_id: dsId,
      split_name: 'main',
      model: { architecture: 'small_cnn', input_size: 32 },
      hyperparameters: { epochs: 8, batch_size: 8, seed: 3 },
    });
    expect(exp.status, JSON.stringify(exp.body)).toBe(201);
    const runs = `/api/projects/${pid}/experiments/${exp.body.data.id}/runs`;
    const started = await api<{ run: Run; job: { id: string } }>('POST', runs);
    const url = `${runs}/${started.body.data.run.id}`;
    const before = await poll<Run>(url, (r) => r.epochs_done >= 1);
    expect(before.status).toBe('running');

    server.kill('SIGKILL');
    await new Promise((r) => server?.once('exit', r));
    server = await studio.start();

    const after = (await api<Run>('GET', url)).body.data;
    expect(after.status).toBe('interrupted');
    expect(after.error?.code).toBe('INTERRUPTED');
    expect(after.epochs_done).toBeGreaterThanOrEqual(1);
    const job = (await api<{ status: string }>('GET', `/api/jobs/${started.body.data.job.id}`)).body.data;
    expect(job.status).toBe('interrupted');

    const resumed = await api<{ run: Run }>('POST', `${url}/resume`);
    expect(resumed.status).toBe(202);
    const done = await poll<Run>(url, (r) => r.status !== 'queued' && r.status !== 'running');
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    expect(done.resumes).toBe(1);
    // At most one epoch lost, and the metrics pick up where the checkpoint left off.
    expect(done.metrics.map((m) => m.epoch)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    server.kill('SIGTERM');
    await new Promise((r) => server?.once('exit', r));
    server = undefined;
  }, 180_000);
});
