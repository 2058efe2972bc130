import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, makeStudio, type TestStudio } from './helpers.ts';
import { writeShapesFolder } from './runs-fixtures.ts';

/**
 * Deleting a project while datasets are being created in it (the hardening issue: 12 of 60 POSTs
 * answered 500, deletes answered 500, and project folders were left without project.json with
 * imports still running into them). Creation and deletion are one at a time per project: every
 * POST is a 202 (its import then cancelled) or a 404, the delete succeeds, and nothing is left.
 */

let s: TestStudio;
let src: string;
beforeAll(async () => {
  s = await makeStudio();
  src = path.join(s.dir, 'src');
  await writeShapesFolder(src, 3, 32);
});
afterAll(async () => s?.close());

describe('deleting a project while its datasets are created', () => {
  it('answers every request cleanly and leaves no folder behind', { timeout: 120_000 }, async () => {
    for (let round = 0; round < 3; round++) {
      const pid = (await call<{ id: string }>(s.app, 'POST', '/api/projects', { name: `race ${round}` })).body.data.id;
      const creates = Array.from({ length: 20 }, (_, i) => call(s.app, 'POST', `/api/projects/${pid}/datasets`, { name: `d${i}`, source: { kind: 'folder', path: src } }));
      // the delete lands among the creations
      await new Promise((r) => setTimeout(r, 5 * round));
      const del = call(s.app, 'DELETE', `/api/projects/${pid}`);
      const [answers, deleted] = await Promise.all([Promise.all(creates), del]);
      expect(deleted.status, JSON.stringify(deleted.body)).toBe(200);
      for (const a of answers) expect([202, 404], JSON.stringify(a.body)).toContain(a.status);
      // every import that started is cancelled and settled by the delete
      await new Promise((r) => setTimeout(r, 200));
      await expect(fs.access(path.join(s.settings.workspace, 'projects', pid))).rejects.toThrow();
      expect((await call(s.app, 'GET', `/api/projects/${pid}`)).status).toBe(404);
    }
  });
});
