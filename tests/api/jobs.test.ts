import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadSettings } from '../../src/config.ts';
import { DatasetV1Doc } from '../../src/schemas/index.ts';
import { openWorkspace } from '../../src/storage/workspace.ts';
import { call, makeImageFolder, makeStudio, parseSse, waitForJob, type TestStudio } from './helpers.ts';

interface Started {
  dataset: { id: string };
  job: { id: string };
}

let s: TestStudio;
let pid: string;
let src: string;
beforeAll(async () => {
  s = await makeStudio();
  pid = (await call<{ id: string }>(s.app, 'POST', '/api/projects', { name: 'jobs' })).body.data.id;
  src = path.join(s.dir, 'src');
  await makeImageFolder(src, { a: 20, b: 20 });
});
afterAll(async () => s.close());

const startImport = async () =>
  (await call<Started>(s.app, 'POST', `/api/projects/${pid}/datasets`, { name: 'd', task: 'classification', source: { kind: 'folder', path: src } })).body.data;

describe('jobs API', () => {
  it('answers NOT_FOUND for unknown or malformed job ids, for polling and for events', async () => {
    for (const url of ['/api/jobs/job-00000000', '/api/jobs/job-00000000/events', '/api/jobs/../etc/events', '/api/jobs/nope']) {
      const r = await call(s.app, 'GET', url);
      expect(r.status, url).toBe(404);
      expect(r.body.error.code).toBe('NOT_FOUND');
    }
  });

  it('cancels a running import: the job ends cancelled and the dataset failed', async () => {
    const { dataset, job } = await startImport();
    const cancelled = await call<{ status: string }>(s.app, 'POST', `/api/jobs/${job.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.data.status).toBe('cancelled');
    const ds = (await call<{ status: string; error: { code: string } }>(s.app, 'GET', `/api/projects/${pid}/datasets/${dataset.id}`)).body.data;
    expect(ds.status).toBe('failed');
    expect(ds.error.code).toBe('CANCELLED');
    const events = parseSse((await s.app.inject({ method: 'GET', url: `/api/jobs/${job.id}/events` })).body);
    expect(events.at(-1)).toMatchObject({ event: 'error', data: { status: 'cancelled' } });
    const again = await call(s.app, 'POST', `/api/jobs/${job.id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('CONFLICT');
  });

  it('deleting a dataset while it imports cancels the import first', async () => {
    const { dataset, job } = await startImport();
    const del = await call(s.app, 'DELETE', `/api/projects/${pid}/datasets/${dataset.id}`);
    expect(del.status).toBe(200);
    const finished = await waitForJob(s.app, job.id);
    expect(finished.status).toBe('cancelled');
    expect((await call(s.app, 'GET', `/api/projects/${pid}/datasets/${dataset.id}`)).status).toBe(404);
    await expect(fs.access(path.join(s.settings.workspace, 'projects', pid, 'datasets', dataset.id))).rejects.toThrow();
  });
});

describe('restart', () => {
  it('marks jobs a dead process left running as interrupted (their dataset failed), and replays finished jobs over SSE', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-restart-'));
    try {
      const settings = loadSettings({ STUDIO_WORKSPACE: path.join(dir, 'ws'), STUDIO_EXAMPLE: 'off' });
      const first = await buildApp(settings);
      const p = (await call<{ id: string }>(first, 'POST', '/api/projects', { name: 'r' })).body.data.id;
      const imported = (await call<Started>(first, 'POST', `/api/projects/${p}/datasets`, { name: 'ok', task: 'classification', source: { kind: 'folder', path: src } })).body.data;
      await waitForJob(first, imported.job.id);
      await first.close();

      // What a crash mid-import leaves behind: a running job and an importing dataset.
      const store = await openWorkspace(settings.workspace);
      const now = new Date().toISOString();
      const dsId = 'ds-crashed1';
      // Version 1 (every record in dataset.json): read back through the migration.
      await store.write(DatasetV1Doc, store.datasetFile(p, dsId), {
        schema_version: 1,
        id: dsId,
        name: 'crashed',
        task: 'classification',
        status: 'importing',
        classes: [],
        target_names: [],
        split_names: [],
        images: [],
        import_report: null,
        error: null,
        created_at: now,
        updated_at: now,
      });
      await store.writeJob({ schema_version: 1, id: 'job-crashed1', kind: 'import', status: 'running', progress: 0.4, project_id: p, dataset_id: dsId, created_at: now, updated_at: now });

      const second = await buildApp(settings);
      try {
        const job = (await call<{ status: string; error: { code: string } }>(second, 'GET', '/api/jobs/job-crashed1')).body.data;
        expect(job.status).toBe('interrupted');
        expect(job.error.code).toBe('INTERRUPTED');
        const ds = (await call<{ status: string }>(second, 'GET', `/api/projects/${p}/datasets/${dsId}`)).body.data;
        expect(ds.status).toBe('failed');

        const replay = parseSse((await second.inject({ method: 'GET', url: `/api/jobs/${imported.job.id}/events` })).body);
        expect(replay.map((e) => e.event)).toEqual(['progress', 'done']);
        const resumed = parseSse((await second.inject({ method: 'GET', url: `/api/jobs/${imported.job.id}/events`, headers: { 'last-event-id': '1' } })).body);
        expect(resumed.map((e) => e.event)).toEqual(['done']);
        const over = await second.inject({ method: 'GET', url: `/api/jobs/${imported.job.id}/events`, headers: { 'last-event-id': '2' } });
        expect(over.statusCode).toBe(204);
        const interrupted = parseSse((await second.inject({ method: 'GET', url: '/api/jobs/job-crashed1/events' })).body);
        expect(interrupted.at(-1)).toMatchObject({ event: 'error', data: { status: 'interrupted' } });
      } finally {
        await second.close();
      }
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
