import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadSettings } from '../../src/config.ts';
import { DatasetV1Doc } from '../../src/schemas/dataset.ts';

/**
 * What a SIGKILL at the wrong moment left is settled at the next start (the hardening issue): a
 * dataset still `importing` with no job that owns it fails instead of staying so for ever, and
 * half-made project or dataset folders are moved to `quarantine/`, reported, never deleted.
 */

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

async function start(ws: string) {
  return buildApp(loadSettings({ STUDIO_WORKSPACE: ws, STUDIO_EXAMPLE: 'off' }));
}

describe('start-up settles what a crash left', () => {
  it('a dataset importing with no job fails as interrupted; half-made folders go to quarantine', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-settle-'));
    dirs.push(root);
    const ws = path.join(root, 'ws');
    let app = await start(ws);
    const pid = (await app.inject({ method: 'POST', url: '/api/projects', payload: { name: 'p' } })).json().data.id as string;
    // what a kill between dataset.json and the job record leaves: a dataset importing, no job
    const now = new Date().toISOString();
    await app.studio.store.write(DatasetV1Doc, app.studio.store.datasetFile(pid, 'ds-stuck001'), {
      schema_version: 1, id: 'ds-stuck001', name: 'stuck', task: 'classification', status: 'importing', classes: [], target_names: [],
      split_names: [], images: [], import_report: null, error: null, created_at: now, updated_at: now,
    });
    // a project folder without project.json, a dataset folder without dataset.json
    await fs.mkdir(path.join(ws, 'projects', 'proj-orphan01', 'datasets'), { recursive: true });
    await fs.mkdir(path.join(ws, 'projects', pid, 'datasets', 'ds-orphan01', 'images'), { recursive: true });
    await fs.writeFile(path.join(ws, 'projects', pid, 'datasets', 'ds-orphan01', 'images', 'a.png'), 'x');
    await app.close();

    app = await start(ws);
    try {
      const ds = (await app.inject({ method: 'GET', url: `/api/projects/${pid}/datasets/ds-stuck001` })).json().data;
      expect(ds.status).toBe('failed');
      expect(ds.error.code).toBe('INTERRUPTED');
      expect(await fs.readdir(path.join(ws, 'projects'))).toEqual([pid]);
      expect(await fs.readdir(path.join(ws, 'projects', pid, 'datasets'))).toEqual(['ds-stuck001']);
      const moved = (await fs.readdir(path.join(ws, 'quarantine'))).sort();
      expect(moved).toHaveLength(2);
      expect(moved.some((n) => n.endsWith('-proj-orphan01'))).toBe(true);
      const ds2 = moved.find((n) => n.endsWith(`-${pid}-ds-orphan01`))!;
      // nothing is deleted: the half-made dataset's files are kept where it went
      expect(await fs.readFile(path.join(ws, 'quarantine', ds2, 'images', 'a.png'), 'utf8')).toBe('x');
    } finally {
      await app.close();
    }
  });
});
