import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, makeStudio, type TestStudio } from './helpers.ts';
import { makeShapesProject, type ShapesProject } from './runs-fixtures.ts';

/**
 * An idempotent experiment create: a client token (the body's `client_token` or the
 * `Idempotency-Key` header) makes a repeat answer the experiment — and, with `start_run`, the run —
 * the first request made, marked `Idempotent-Replayed: true`; the same token with another body is
 * 409; concurrent repeats make one experiment. Without a token every POST creates.
 */

let s: TestStudio;
let p: ShapesProject;
let base: string;

beforeAll(async () => {
  s = await makeStudio();
  p = await makeShapesProject(s.app, s.dir, { perClass: 4, size: 32 });
  base = `/api/projects/${p.pid}/experiments`;
}, 60_000);
afterAll(async () => s?.close());

const valid = (extra: Record<string, unknown> = {}) => ({
  name: 'exp',
  dataset_id: p.datasetId,
  split_name: 'main',
  model: { architecture: 'small_cnn' },
  hyperparameters: { epochs: 1, batch_size: 8 },
  ...extra,
});

interface Created {
  id: string;
  name: string;
  client_token?: string;
  run?: { id: string; status: string } | null;
}

async function post(body: unknown, headers: Record<string, string> = {}) {
  const res = await s.app.inject({ method: 'POST', url: base, payload: body as object, headers });
  return { status: res.statusCode, body: res.json() as { data: Created; error: { code: string; message: string } }, replayed: res.headers['idempotent-replayed'] };
}

async function experimentNames(): Promise<string[]> {
  return (await call<Created[]>(s.app, 'GET', base)).body.data.map((e) => e.name);
}

async function runsOf(expId: string): Promise<Array<{ id: string }>> {
  return (await call<Array<{ id: string }>>(s.app, 'GET', `${base}/${expId}/runs`)).body.data;
}

async function settle(expId: string): Promise<void> {
  for (const r of await runsOf(expId)) await s.app.studio.runs.wait(p.pid, expId, r.id);
}

describe('idempotent experiment create', () => {
  it('a repeat with the same body token answers the first experiment and its one run', async () => {
    const body = valid({ name: 'token-body', client_token: 'tok_body-1', start_run: true });
    const first = await post(body);
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.replayed).toBeUndefined();
    expect(first.body.data.client_token).toBe('tok_body-1');
    expect(first.body.data).not.toHaveProperty('request_hash');
    const runId = first.body.data.run?.id;
    expect(runId).toMatch(/^run-[0-9a-z]{8}$/);

    const again = await post(body);
    expect(again.status).toBe(201);
    expect(again.replayed).toBe('true');
    expect(again.body.data.id).toBe(first.body.data.id);
    expect(again.body.data.run?.id).toBe(runId);
    expect(Object.keys(again.body.data).sort()).toEqual(Object.keys(first.body.data).sort());

    expect((await experimentNames()).filter((n) => n === 'token-body')).toHaveLength(1);
    expect((await runsOf(first.body.data.id)).map((r) => r.id)).toEqual([runId]);
    expect(s.app.studio.runs.queue().filter((q) => q.experiment_id === first.body.data.id).length).toBeLessThanOrEqual(1);
    await settle(first.body.data.id);
  }, 120_000);

  it('takes the token from the Idempotency-Key header, and the same in both', async () => {
    const body = valid({ name: 'token-header' });
    const first = await post(body, { 'idempotency-key': 'HeaderKey_42' });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.replayed).toBeUndefined();
    const again = await post(body, { 'idempotency-key': 'HeaderKey_42' });
    expect(again.status).toBe(201);
    expect(again.replayed).toBe('true');
    expect(again.body.data.id).toBe(first.body.data.id);
    // the same token in the body and the header is the same request
    const both = await post({ ...body, client_token: 'HeaderKey_42' }, { 'idempotency-key': 'HeaderKey_42' });
    expect(both.status).toBe(201);
    expect(both.replayed).toBe('true');
    expect(both.body.data.id).toBe(first.body.data.id);
    expect((await experimentNames()).filter((n) => n === 'token-header')).toHaveLength(1);
  });

  it('a body that differs only by its defaults is the same request', async () => {
    const first = await post(valid({ name: 'defaults', client_token: 'defaults-1' }));
    const spelled = await post(valid({ name: 'defaults', client_token: 'defaults-1', description: '', val_dataset_id: null, hyperparameters: { epochs: 1, batch_size: 8, optimizer: 'adamw', seed: 0 } }));
    expect(spelled.status, JSON.stringify(spelled.body)).toBe(201);
    expect(spelled.replayed).toBe('true');
    expect(spelled.body.data.id).toBe(first.body.data.id);
  });

  it('refuses the same token with another body (409) and disagreeing tokens (400)', async () => {
    const first = await post(valid({ name: 'conflict', client_token: 'conflict-1' }));
    expect(first.status).toBe(201);
    const other = await post(valid({ name: 'conflict', client_token: 'conflict-1', hyperparameters: { epochs: 2, batch_size: 8 } }));
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('CONFLICT');
    expect(other.body.error.message).toContain("client_token 'conflict-1' already created the experiment 'conflict'");
    expect(other.body.error.message).toContain('another body');
    // starting a run is part of the request too
    const withRun = await post(valid({ name: 'conflict', client_token: 'conflict-1', start_run: true }));
    expect(withRun.status).toBe(409);
    expect((await experimentNames()).filter((n) => n === 'conflict')).toHaveLength(1);

    const disagree = await post(valid({ name: 'disagree', client_token: 'body-token' }), { 'idempotency-key': 'header-token' });
    expect(disagree.status).toBe(400);
    expect(disagree.body.error.code).toBe('VALIDATION_ERROR');
    expect(disagree.body.error.message).toMatch(/client_token.*Idempotency-Key header differ/);
    for (const [bodyToken, header] of [['has space', undefined], ['', undefined], ['x'.repeat(129), undefined], [undefined, 'bad/key'], [undefined, 'ü']] as const) {
      const res = await post(valid({ name: 'disagree', ...(bodyToken === undefined ? {} : { client_token: bodyToken }) }), header === undefined ? {} : { 'idempotency-key': header });
      expect(res.status, `${bodyToken} ${header}`).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
      expect(res.body.error.message).toMatch(/client_token|idempotency-key/);
    }
    expect(await experimentNames()).not.toContain('disagree');
    // the body stays strict beside the new fields
    const unknown = await post(valid({ name: 'disagree', client_token: 'strict-1', start: true }));
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toContain('start');
  });

  it('concurrent requests with one token create exactly one experiment', async () => {
    const body = valid({ name: 'race', client_token: 'race-token', start_run: true });
    const answers = await Promise.all(Array.from({ length: 12 }, () => post(body)));
    expect(answers.map((a) => a.status)).toEqual(Array(12).fill(201));
    const ids = new Set(answers.map((a) => a.body.data.id));
    expect(ids.size).toBe(1);
    expect(answers.filter((a) => a.replayed === undefined)).toHaveLength(1);
    expect(new Set(answers.map((a) => a.body.data.run?.id)).size).toBe(1);
    expect((await experimentNames()).filter((n) => n === 'race')).toHaveLength(1);
    const [id] = ids;
    expect(await runsOf(id)).toHaveLength(1);
    await settle(id);
  }, 120_000);

  it('without a token, every POST creates (as before)', async () => {
    const body = valid({ name: 'no-token' });
    const a = await post(body);
    const b = await post(body);
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(a.replayed).toBeUndefined();
    expect(b.replayed).toBeUndefined();
    expect(a.body.data.id).not.toBe(b.body.data.id);
    expect((await experimentNames()).filter((n) => n === 'no-token')).toHaveLength(2);
    // start_run without a token: two experiments, two runs
    const c = await post({ ...body, name: 'no-token-run', start_run: true });
    const d = await post({ ...body, name: 'no-token-run', start_run: true });
    expect(c.body.data.run?.id).toBeTruthy();
    expect(d.body.data.run?.id).not.toBe(c.body.data.run?.id);
    await settle(c.body.data.id);
    await settle(d.body.data.id);
  }, 120_000);

  it('keeps reading experiment files written before tokens and second datasets', async () => {
    const created = await post(valid({ name: 'old-file' }));
    const id = created.body.data.id;
    const { store } = s.app.studio;
    const file = `${store.projectDir(p.pid)}/experiments/${id}/experiment.json`;
    const fs = await import('node:fs/promises');
    const json = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
    delete json.val_dataset_id;
    delete json.test_dataset_id;
    delete json.client_token;
    await fs.writeFile(file, JSON.stringify(json));
    const got = await call<{ val_dataset_id: unknown; test_dataset_id: unknown }>(s.app, 'GET', `${base}/${id}`);
    expect(got.status).toBe(200);
    expect(got.body.data).toMatchObject({ val_dataset_id: null, test_dataset_id: null });
  });
});
