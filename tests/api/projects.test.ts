import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { body, call, makeStudio, type TestStudio } from './helpers.ts';

interface Project {
  id: string;
  name: string;
  description: string;
}

let s: TestStudio;
beforeAll(async () => {
  s = await makeStudio();
});
afterAll(async () => s.close());

describe('projects API', () => {
  it('creates, lists, reads, renames and deletes a project', async () => {
    const created = await call<Project>(s.app, 'POST', '/api/projects', { name: 'Shapes', description: 'circles and squares' });
    expect(created.status).toBe(201);
    expect(created.body.status).toBe('ok');
    const p = created.body.data;
    expect(p.id).toMatch(/^proj-[0-9a-z]{8}$/);
    expect(p).toMatchObject({ name: 'Shapes', description: 'circles and squares' });

    const list = await call<Project[]>(s.app, 'GET', '/api/projects');
    expect(list.body.data.map((x) => x.id)).toContain(p.id);

    const got = await call<Project>(s.app, 'GET', `/api/projects/${p.id}`);
    expect(got.body.data.name).toBe('Shapes');

    const renamed = await call<Project>(s.app, 'PATCH', `/api/projects/${p.id}`, { name: 'Shapes 2' });
    expect(renamed.status).toBe(200);
    expect(renamed.body.data.name).toBe('Shapes 2');

    const del = await call(s.app, 'DELETE', `/api/projects/${p.id}`);
    expect(del.status).toBe(200);
    const gone = await call(s.app, 'GET', `/api/projects/${p.id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('NOT_FOUND');
  });

  it('keeps a name with HTML as data (escaping is the pages\' job) and returns it as JSON', async () => {
    const name = '<img src=x onerror=alert(1)>"\'';
    const r = await call<Project>(s.app, 'POST', '/api/projects', { name });
    expect(r.status).toBe(201);
    expect(r.res.headers['content-type']).toMatch(/^application\/json/);
    expect(r.body.data.name).toBe(name);
  });

  it('answers NOT_FOUND for unknown and malformed ids, and unknown routes', async () => {
    for (const url of ['/api/projects/proj-zzzzzzzz', '/api/projects/..%2F..%2Fetc', '/api/projects/PROJ-1', '/api/nothing-here']) {
      const r = await call(s.app, 'GET', url);
      expect(r.status, url).toBe(404);
      expect(r.body).toMatchObject({ status: 'error', error: { code: 'NOT_FOUND' } });
    }
    const del = await call(s.app, 'DELETE', '/api/projects/proj-00000000');
    expect(del.body.error.code).toBe('NOT_FOUND');
  });
});

describe('bad input never crashes the server', () => {
  const post = (payload: string, type = 'application/json') =>
    s.app.inject({ method: 'POST', url: '/api/projects', payload, headers: { 'content-type': type } });

  it('malformed JSON → VALIDATION_ERROR', async () => {
    for (const payload of ['{"name":', '{name: "x"}', '', 'null']) {
      const res = await post(payload);
      expect(res.statusCode, payload).toBe(400);
      expect(body(res).error.code, payload).toBe('VALIDATION_ERROR');
    }
  });

  it('wrong types, unknown fields and empty names → VALIDATION_ERROR', async () => {
    const cases: unknown[] = [
      { name: 42 },
      { name: ['a'] },
      { name: 'ok', extra: true },
      { name: '' },
      { name: '   ' },
      { name: 'a'.repeat(201) },
      { name: 'ok', description: 5 },
      [],
      'just a string',
    ];
    for (const c of cases) {
      const res = await post(JSON.stringify(c));
      expect(res.statusCode, JSON.stringify(c)).toBe(400);
      expect(body(res).error.code).toBe('VALIDATION_ERROR');
    }
    const patch = await s.app.inject({ method: 'POST', url: '/api/projects', payload: { name: 'p' } });
    const id = body<Project>(patch).data.id;
    const bad = await call(s.app, 'PATCH', `/api/projects/${id}`, { nam: 'typo' });
    expect(bad.body.error.code).toBe('VALIDATION_ERROR');
  });

  it('__proto__ and constructor.prototype keys are refused and pollute nothing', async () => {
    for (const payload of ['{"name":"x","__proto__":{"polluted":true}}', '{"name":"x","constructor":{"prototype":{"polluted":true}}}']) {
      const res = await post(payload);
      expect(res.statusCode).toBe(400);
      expect(body(res).error.code).toBe('VALIDATION_ERROR');
      // the refusal names the key, not "not valid JSON"
      expect(body(res).error.message).toMatch(/^body: the key "(__proto__|constructor\.prototype)" is not allowed$/);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const list = await call<Project[]>(s.app, 'GET', '/api/projects');
    expect(list.body.data.every((p) => p.name !== 'x')).toBe(true);
  });

  it('a body over 1 MiB → PAYLOAD_TOO_LARGE', async () => {
    const res = await post(JSON.stringify({ name: 'big', description: 'x'.repeat(1024 * 1024 + 10) }));
    expect(res.statusCode).toBe(413);
    expect(body(res).error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('an unsupported content type → UNSUPPORTED_MEDIA', async () => {
    const res = await post('<xml/>', 'application/xml');
    expect(res.statusCode).toBe(415);
    expect(body(res).error.code).toBe('UNSUPPORTED_MEDIA');
  });

  it('bad query strings → VALIDATION_ERROR', async () => {
    const p = body<Project>(await post(JSON.stringify({ name: 'q' }))).data;
    const res = await s.app.inject({ method: 'GET', url: `/api/projects/${p.id}/datasets/ds-00000000/images?page=-1` });
    expect(body(res).error.code).toBe('VALIDATION_ERROR');
    const res2 = await s.app.inject({ method: 'GET', url: `/api/projects/${p.id}/datasets/ds-00000000/images?page=1&bogus=1` });
    expect(body(res2).error.code).toBe('VALIDATION_ERROR');
  });
});
