import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createProjectsService, deleteProject, onDeleted, announceDeleted, type DeletedScope } from '../../src/core/projects.ts';
import type { JobScope } from '../../src/jobs/service.ts';
import { openWorkspace, type Workspace } from '../../src/storage/workspace.ts';
import { tempRoot } from '../storage/helpers.ts';

let cleanup: () => Promise<void>;
let ws: Workspace;
let projects: ReturnType<typeof createProjectsService>;
beforeEach(async () => {
  const t = await tempRoot('projects');
  cleanup = t.cleanup;
  ws = await openWorkspace(path.join(t.dir, 'ws'));
  projects = createProjectsService(ws);
});
afterEach(() => cleanup());

describe('projects service', () => {
  it('creates, lists, gets, renames and deletes', async () => {
    const a = await projects.create({ name: '  Cats  ', description: 'first' });
    expect(a).toMatchObject({ name: 'Cats', description: 'first' });
    expect(a.id).toMatch(/^proj-[0-9a-z]{8}$/);
    expect(a).not.toHaveProperty('schema_version');
    const b = await projects.create({ name: 'Dogs' });
    expect(b.description).toBe('');
    expect((await projects.list()).map((p) => p.id)).toEqual([a.id, b.id]);
    expect(await projects.get(a.id)).toEqual(a);

    const renamed = await projects.update(a.id, { name: 'Big cats' });
    expect(renamed).toMatchObject({ id: a.id, name: 'Big cats', description: 'first', created_at: a.created_at });
    expect(renamed.updated_at >= a.updated_at).toBe(true);
    expect((await projects.update(a.id, { description: '' })).description).toBe('');

    await projects.remove(a.id);
    expect((await projects.list()).map((p) => p.id)).toEqual([b.id]);
    expect(await ws.exists(ws.projectDir(a.id))).toBe(false);
    expect(await projects.exists(a.id)).toBe(false);
    expect(await projects.exists(b.id)).toBe(true);
  });

  it('answers NOT_FOUND for unknown and malformed ids', async () => {
    for (const id of ['proj-00000000', 'nope', '../..', 'proj-../../x']) {
      await expect(projects.get(id), id).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(projects.update(id, { name: 'x' }), id).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(projects.remove(id), id).rejects.toMatchObject({ code: 'NOT_FOUND' });
    }
  });

  it('refuses bad input with VALIDATION_ERROR', async () => {
    const bad: unknown[] = [{}, { name: '' }, { name: '   ' }, { name: 5 }, { name: 'x', extra: 1 }, { name: 'a\u0000b' }, { name: 'x'.repeat(201) }, null];
    for (const body of bad) {
      await expect(projects.create(body as { name: string }), JSON.stringify(body)).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    }
    const p = await projects.create({ name: 'ok' });
    await expect(projects.update(p.id, { name: '' })).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(await projects.list()).toHaveLength(1);
  });

  it('stores names with HTML as plain data, and refuses a __proto__ key without polluting anything', async () => {
    const p = await projects.create({ name: '<script>alert(1)</script>' });
    expect((await projects.get(p.id)).name).toBe('<script>alert(1)</script>');
    const evil = JSON.parse('{"name":"x","__proto__":{"polluted":1}}') as { name: string };
    await expect(projects.create(evil)).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('skips a project folder whose project.json is unreadable instead of failing the list', async () => {
    const p = await projects.create({ name: 'ok' });
    const { promises: fs } = await import('node:fs');
    await fs.mkdir(ws.projectDir('proj-zzzzzzzz'), { recursive: true });
    await fs.writeFile(ws.projectFile('proj-zzzzzzzz'), '{"schema_version":1,');
    expect((await projects.list()).map((x) => x.id)).toEqual([p.id]);
  });
});

describe('project deletion', () => {
  it('stops the jobs and runs within it, then deletes the folder, then tells the listeners of this workspace only', async () => {
    const a = await projects.create({ name: 'a' });
    const steps: string[] = [];
    const heard: DeletedScope[] = [];
    // The folder is still there while the jobs stop.
    const stopper = (what: string) => ({
      async cancelWithin(scope: JobScope) {
        steps.push(`${what} ${JSON.stringify(scope)} ${await projects.exists(scope.projectId)}`);
      },
    });
    const stop = onDeleted(ws, async (scope) => {
      steps.push(`listener ${await projects.exists(scope.projectId)}`);
      heard.push(scope);
    });
    const other = await openWorkspace(path.join(ws.root, '..', 'other'));
    const otherHeard: DeletedScope[] = [];
    onDeleted(other, async (scope) => void otherHeard.push(scope));

    await deleteProject({ projects, jobs: stopper('jobs'), runs: stopper('runs') }, a.id);
    expect(steps.slice(0, 2).sort()).toEqual([`jobs {"projectId":"${a.id}"} true`, `runs {"projectId":"${a.id}"} true`]);
    expect(steps.slice(2)).toEqual(['listener false']);
    expect(heard).toEqual([{ projectId: a.id }]);
    expect(otherHeard).toEqual([]);

    stop();
    await announceDeleted(ws, { projectId: 'proj-00000000' });
    expect(heard).toHaveLength(1);
  });

  it('answers NOT_FOUND before stopping anything', async () => {
    let cancelled = 0;
    const heard: DeletedScope[] = [];
    onDeleted(ws, async (scope) => void heard.push(scope));
    const stopper = { cancelWithin: async () => void cancelled++ };
    await expect(deleteProject({ projects, jobs: stopper, runs: stopper }, 'proj-00000000')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect([cancelled, heard]).toEqual([0, []]);
  });
});
