import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { notFound } from '../kernel/errors.ts';

/**
 * Static files: our own `public/` under /static, and the browser libraries straight from
 * node_modules under /vendor (no CDN, no copy step that could drift from package.json). Only
 * listed extensions are served, with a fixed content type, from inside their root.
 */
const PUBLIC_ROOT = fileURLToPath(new URL('../../public/', import.meta.url));

const TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

const require = createRequire(import.meta.url);
// chart.js exports no subpaths, so its UMD build is found beside its resolved main file.
const VENDOR: Record<string, string> = {
  'htmx.min.js': require.resolve('htmx.org/dist/htmx.min.js'),
  // htmx 2's SSE extension: live widgets whose fragments the server renders per job event.
  'htmx-sse.js': require.resolve('htmx-ext-sse/sse.js'),
  'chart.umd.min.js': path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js'),
  'alpine.min.js': require.resolve('alpinejs/dist/cdn.min.js'),
};

export function publicFile(rel: string): string | null {
  const file = path.resolve(PUBLIC_ROOT, rel);
  if (!file.startsWith(PUBLIC_ROOT) || !(path.extname(file) in TYPES)) return null;
  return file;
}

export default async function assetRoutes(app: FastifyInstance): Promise<void> {
  app.get<{ Params: { '*': string } }>('/static/*', async (req, reply) => {
    const rel = req.params['*'];
    const file = publicFile(rel);
    const body = file ? await fs.readFile(file).catch(() => null) : null;
    if (!file || !body) throw notFound('file', rel.slice(0, 200));
    // Short cache: the files change with the code and carry no version in their names.
    return reply.type(TYPES[path.extname(file)]).header('Cache-Control', 'public, max-age=300').send(body);
  });

  const vendorCache = new Map<string, Buffer>();
  app.get<{ Params: { name: string } }>('/vendor/:name', async (req, reply) => {
    const { name } = req.params;
    const file = Object.hasOwn(VENDOR, name) ? VENDOR[name] : undefined;
    if (!file) throw notFound('file', name.slice(0, 200));
    let body = vendorCache.get(name);
    if (!body) {
      body = await fs.readFile(file);
      vendorCache.set(name, body);
    }
    return reply.type(TYPES['.js']).header('Cache-Control', 'public, max-age=86400').send(body);
  });
}
