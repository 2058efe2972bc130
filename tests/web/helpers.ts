import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { loadSettings } from '../../src/config.ts';

/** A studio over a fresh temp workspace, for page tests through inject(). */
export interface PageStudio {
  app: FastifyInstance;
  dir: string;
  close(): Promise<void>;
}

export async function makePageStudio(): Promise<PageStudio> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-pages-'));
  const app = await buildApp(loadSettings({ STUDIO_WORKSPACE: path.join(dir, 'ws'), STUDIO_EXAMPLE: 'off' }));
  await app.ready();
  return {
    app,
    dir,
    async close() {
      await app.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const HX = { 'hx-request': 'true' };

/** A page load (no htmx headers). */
export const get = (app: FastifyInstance, url: string): Promise<LightMyRequestResponse> => app.inject({ method: 'GET', url });

/** What htmx sends: its header, and for bodies an urlencoded form. */
export function hx(
  app: FastifyInstance,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  url: string,
  form?: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  const opts: InjectOptions = { method, url, headers: { ...HX, ...headers } };
  if (form) {
    opts.headers = { ...opts.headers, ...FORM };
    opts.payload = new URLSearchParams(form).toString();
  }
  return app.inject(opts);
}

/** Every element with `attr="value"` (the attribute as written in the HTML). */
export function count(html: string, needle: string): number {
  return html.split(needle).length - 1;
}
