import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redactUrl, requestLogSerializer } from '../../src/http/security.ts';
import { body, makeStudio, type TestStudio } from './helpers.ts';

let s: TestStudio;
beforeAll(async () => {
  s = await makeStudio();
});
afterAll(async () => s.close());

const create = (headers: Record<string, string>, payload: string = JSON.stringify({ name: 'p' })) =>
  s.app.inject({ method: 'POST', url: '/api/projects', payload, headers: { 'content-type': 'application/json', ...headers } });

describe('same-origin guard for state-changing requests', () => {
  it('accepts no Origin (curl, scripts) and our own origin', async () => {
    expect((await create({})).statusCode).toBe(201);
    expect((await create({ origin: 'http://localhost:80', host: 'localhost:80' })).statusCode).toBe(201);
    expect((await create({ origin: 'http://127.0.0.1:3000', host: '127.0.0.1:3000', 'sec-fetch-site': 'same-origin' })).statusCode).toBe(201);
  });

  it('refuses a foreign Origin, Origin: null and a cross-site fetch with FORBIDDEN_ORIGIN', async () => {
    const cases: Record<string, string>[] = [
      { origin: 'http://evil.example' },
      { origin: 'http://localhost:3001', host: 'localhost:3000' },
      { origin: 'null' },
      { origin: 'not a url' },
      { 'sec-fetch-site': 'cross-site' },
    ];
    for (const headers of cases) {
      const res = await create(headers);
      expect(res.statusCode, JSON.stringify(headers)).toBe(403);
      expect(body(res).error.code).toBe('FORBIDDEN_ORIGIN');
    }
  });

  it('refuses a text/plain POST (the CORS-preflight dodge), even with a JSON body', async () => {
    const res = await create({ 'content-type': 'text/plain' });
    expect(res.statusCode).toBe(403);
    expect(body(res).error.code).toBe('FORBIDDEN_ORIGIN');
    const res2 = await create({ 'content-type': 'text/plain;charset=UTF-8' });
    expect(body(res2).error.code).toBe('FORBIDDEN_ORIGIN');
  });

  it('guards PATCH and DELETE too, but not reads', async () => {
    const p = body<{ id: string }>(await create({})).data;
    const del = await s.app.inject({ method: 'DELETE', url: `/api/projects/${p.id}`, headers: { origin: 'https://evil.example' } });
    expect(body(del).error.code).toBe('FORBIDDEN_ORIGIN');
    const patch = await s.app.inject({ method: 'PATCH', url: `/api/projects/${p.id}`, payload: { name: 'x' }, headers: { origin: 'null' } });
    expect(body(patch).error.code).toBe('FORBIDDEN_ORIGIN');
    const read = await s.app.inject({ method: 'GET', url: `/api/projects/${p.id}`, headers: { origin: 'https://evil.example' } });
    expect(read.statusCode).toBe(200);
    expect(body<{ name: string }>(read).data.name).toBe('p');
  });

  it('refuses a non-loopback Host while bound to loopback (DNS rebinding)', async () => {
    const res = await s.app.inject({ method: 'GET', url: '/api/projects', headers: { host: 'evil.example:3000' } });
    expect(res.statusCode).toBe(403);
    expect(body(res).error.code).toBe('FORBIDDEN_ORIGIN');
    for (const host of ['localhost:3000', '127.0.0.1:3000', '[::1]:3000']) {
      expect((await s.app.inject({ method: 'GET', url: '/api/projects', headers: { host } })).statusCode, host).toBe(200);
    }
  });

  it('sends nosniff on every answer', async () => {
    const res = await s.app.inject({ method: 'GET', url: '/api/projects' });
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });
});

describe('token auth (STUDIO_TOKEN)', () => {
  let t: TestStudio;
  const token = 'correct-horse-battery';
  beforeAll(async () => {
    t = await makeStudio({}, { STUDIO_TOKEN: token, HOST: '0.0.0.0' });
  });
  afterAll(async () => t.close());

  it('refuses requests without the token with UNAUTHORIZED', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-token-123' }, { authorization: token }, { cookie: 'studio_token=nope' }]) {
      const res = await t.app.inject({ method: 'GET', url: '/api/projects', headers });
      expect(res.statusCode, JSON.stringify(headers)).toBe(401);
      expect(body(res).error.code).toBe('UNAUTHORIZED');
    }
  });

  it('accepts a Bearer token, whatever the case of the scheme (RFC 7235)', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const res = await t.app.inject({ method: 'GET', url: '/api/projects', headers: { authorization: `${scheme} ${token}` } });
      expect(res.statusCode, scheme).toBe(200);
    }
  });

  it('never logs the token of /login?token=…', () => {
    expect(redactUrl(`/login?token=${token}`)).toBe('/login?token=[redacted]');
    expect(redactUrl(`/login?next=%2F&TOKEN=${token}&x=1`)).toBe('/login?next=%2F&TOKEN=[redacted]&x=1');
    const logged = requestLogSerializer({ method: 'GET', url: `/login?token=${token}`, hostname: 'localhost', ip: '127.0.0.1' });
    expect(JSON.stringify(logged)).not.toContain(token);
  });

  it('/login?token= sets an HttpOnly SameSite cookie that then works', async () => {
    const bad = await t.app.inject({ method: 'GET', url: '/login?token=wrong' });
    expect(bad.statusCode).toBe(401);
    const res = await t.app.inject({ method: 'GET', url: `/login?token=${token}` });
    expect(res.statusCode).toBe(302);
    const cookie = String(res.headers['set-cookie']);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const pair = cookie.split(';')[0];
    const ok = await t.app.inject({ method: 'GET', url: '/api/projects', headers: { cookie: `other=1; ${pair}` } });
    expect(ok.statusCode).toBe(200);
  });

  it('accepts any Host when exposed on the network (the token is the guard)', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/api/projects',
      headers: { host: 'studio.lan:3000', authorization: `Bearer ${token}` },
    });
    expect(res.statusCode).toBe(200);
  });
});
