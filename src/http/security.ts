import { createHash, timingSafeEqual } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Settings } from '../config.ts';
import { AppError } from '../kernel/errors.ts';
import { mapError } from './errors.ts';
import { fail } from './envelope.ts';

/**
 * App-wide guards of a local-first server (registered with fastify-plugin so they cover the API
 * and the pages alike):
 * - state-changing requests must come from our own origin: a foreign or `null` Origin, a
 *   cross-site Sec-Fetch-Site, or a `text/plain` body (the content type a cross-site form or
 *   fetch can send without a CORS preflight) is refused with FORBIDDEN_ORIGIN;
 * - while bound to loopback, the Host header must be a loopback name too (DNS rebinding);
 * - with STUDIO_TOKEN set, every request needs `Authorization: Bearer <token>` or the cookie
 *   that `/login?token=` sets, else UNAUTHORIZED.
 */
export const TOKEN_COOKIE = 'studio_token';
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const LOOPBACK_BINDS = new Set(['127.0.0.1', 'localhost', '::1']);
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

export interface SecurityOptions {
  settings: Settings;
}

async function security(app: FastifyInstance, { settings }: SecurityOptions): Promise<void> {
  const loopbackOnly = LOOPBACK_BINDS.has(settings.host);
  const tokenDigest = settings.token ? digest(settings.token) : null;

  app.addHook('onRequest', async (req, reply) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('X-Frame-Options', 'DENY');
    reply.header('Referrer-Policy', 'same-origin');
    if (loopbackOnly && !LOOPBACK_HOSTS.has(hostName(req.headers.host))) {
      throw new AppError('FORBIDDEN_ORIGIN', 'requests must address this machine by a loopback name');
    }
    if (UNSAFE.has(req.method)) checkOrigin(req);
    if (tokenDigest && !isLoginRoute(req) && !hasToken(req, tokenDigest)) {
      throw new AppError('UNAUTHORIZED', 'a valid token is required (Authorization: Bearer …, or /login?token=…)');
    }
  });

  // The root context's handler: /api and the pages set their own, so this answers only for routes
  // outside both (`/login`) and as the fallback — the envelope where JSON is wanted, text otherwise.
  app.setErrorHandler(async (err, req, reply) => {
    const m = mapError(err);
    if (m.status >= 500) req.log.error(err);
    reply.code(m.status);
    if (wantsJson(req)) return fail(m.code, m.message);
    return reply.type('text/plain; charset=utf-8').send(`${m.code}: ${m.message}`);
  });

  app.get('/login', async (req, reply) => {
    const token = (req.query as Record<string, unknown> | undefined)?.token;
    if (!tokenDigest) return reply.redirect('/');
    if (typeof token !== 'string' || !equalDigest(digest(token), tokenDigest)) {
      throw new AppError('UNAUTHORIZED', 'wrong token');
    }
    const secure = req.protocol === 'https' ? '; Secure' : '';
    reply.header('Set-Cookie', `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict${secure}`);
    return reply.redirect('/');
  });
}

function checkOrigin(req: FastifyRequest): void {
  const origin = req.headers.origin;
  if (origin !== undefined) {
    if (origin === 'null') throw new AppError('FORBIDDEN_ORIGIN', 'requests from an opaque (null) origin are refused');
    let originHost: string;
    try {
      originHost = new URL(origin).host;
    } catch {
      throw new AppError('FORBIDDEN_ORIGIN', 'malformed Origin header');
    }
    if (originHost !== normalizeHost(req.headers.host, new URL(origin).protocol)) {
      throw new AppError('FORBIDDEN_ORIGIN', 'cross-origin requests are refused');
    }
  }
  if (req.headers['sec-fetch-site'] === 'cross-site') {
    throw new AppError('FORBIDDEN_ORIGIN', 'cross-site requests are refused');
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'text/plain') {
    throw new AppError('FORBIDDEN_ORIGIN', 'text/plain bodies are refused (send application/json)');
  }
}

/** The Host header as URL.host spells it (lower case, default port dropped), for comparing with an Origin. */
function normalizeHost(host: string | undefined, protocol: string): string {
  if (!host) return '';
  try {
    return new URL(`${protocol}//${host}`).host;
  } catch {
    return '';
  }
}

function hostName(host: string | undefined): string {
  if (!host) return '';
  const h = host.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  return colon === -1 ? h : h.slice(0, colon);
}

function isLoginRoute(req: FastifyRequest): boolean {
  return req.method === 'GET' && (req.url === '/login' || req.url.startsWith('/login?'));
}

function hasToken(req: FastifyRequest, expected: Buffer): boolean {
  const auth = req.headers.authorization;
  // The scheme's name is case-insensitive (RFC 7235 §2.1): "bearer" and "BEARER" are Bearer too.
  const bearer = auth ? /^bearer\s+(.+)$/i.exec(auth) : null;
  if (bearer && equalDigest(digest(bearer[1].trim()), expected)) return true;
  const cookie = readCookie(req.headers.cookie, TOKEN_COOKIE);
  return cookie !== undefined && equalDigest(digest(cookie), expected);
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

// Comparing fixed-length digests keeps the comparison constant-time whatever the input length.
const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
const equalDigest = (a: Buffer, b: Buffer): boolean => timingSafeEqual(a, b);

function wantsJson(req: FastifyRequest): boolean {
  return req.url.startsWith('/api/') || req.url === '/api' || (req.headers.accept ?? '').includes('application/json');
}

export default fp(security, { name: 'studio-security', fastify: '5.x' });

/** A URL as logs may show it: the value of a `token` query parameter is never written out. */
export function redactUrl(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, '$1[redacted]');
}

/**
 * The request log's view of a request (Fastify's default fields), with secrets left out: the
 * token in `/login?token=…` is redacted, and headers (Authorization, cookies) are not logged.
 */
export const requestLogSerializer = (req: { method: string; url: string; hostname?: string; ip?: string; socket?: { remotePort?: number } }) => ({
  method: req.method,
  url: redactUrl(req.url),
  host: req.hostname,
  remoteAddress: req.ip,
  remotePort: req.socket?.remotePort,
});
