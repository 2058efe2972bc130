import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
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

/** Debian's chromium, which the browser tests drive (CI installs it). */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Chromium headless as this machine allows it (no sandbox as root, no GPU, none of its background
 * network calls, which the closed network refuses), and a page at `viewport` whose script errors
 * are collected in `errors`.
 */
export async function launchBrowser(viewport = { width: 1280, height: 800 }): Promise<{ browser: Browser; page: Page; errors: string[] }> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return { browser, page, errors };
}

/** Elements whose right edge passes their card's (by more than a pixel), named for the message. */
export const overflowing = (page: Page): Promise<string[]> =>
  page.evaluate(() => {
    const out: string[] = [];
    for (const card of Array.from(document.querySelectorAll<HTMLElement>('main .card'))) {
      const box = card.getBoundingClientRect();
      if (box.width === 0) continue;
      for (const el of Array.from(card.querySelectorAll<HTMLElement>('*'))) {
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) continue;
        // inside a scroller the overflow is scrolled to, not cut
        let scroller = false;
        for (let p = el.parentElement; p && p !== card; p = p.parentElement) {
          const o = getComputedStyle(p).overflowX;
          if (o === 'auto' || o === 'scroll' || o === 'hidden') scroller = true;
        }
        if (scroller) continue;
        if (r.right > box.right + 1) out.push(`${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}.${el.className.toString().split(' ').join('.')} (${Math.round(r.right - box.right)} px past ${card.id || card.className})`);
      }
    }
    return out.slice(0, 10);
  });

/**
 * Selects whose chosen option's text is wider than the select shows (a select cuts its text
 * without an ellipsis): measured with the select's own font, less its padding and arrow.
 */
export const cutSelects = (page: Page, selector = 'main select'): Promise<string[]> =>
  page.evaluate((sel) => {
    const ctx = document.createElement('canvas').getContext('2d')!;
    const out: string[] = [];
    for (const s of Array.from(document.querySelectorAll<HTMLSelectElement>(sel))) {
      if (s.offsetParent === null || s.selectedIndex < 0) continue;
      const cs = getComputedStyle(s);
      ctx.font = `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
      const text = s.options[s.selectedIndex].text;
      const room = s.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight) - 20;
      if (ctx.measureText(text).width > room) out.push(`${s.name}: “${text}” (${Math.round(ctx.measureText(text).width)} px in ${Math.round(room)})`);
    }
    return out;
  }, selector);
