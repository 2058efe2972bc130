import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import sharp from 'sharp';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { loadSettings, type Settings } from '../../src/config.ts';

/** A studio over a fresh temp workspace; `close()` stops it and deletes the folder. */
export interface TestStudio {
  app: FastifyInstance;
  settings: Settings;
  dir: string;
  close(): Promise<void>;
}

export async function makeStudio(overrides: Partial<Settings> = {}, env: NodeJS.ProcessEnv = {}): Promise<TestStudio> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-api-'));
  const settings = loadSettings({ STUDIO_WORKSPACE: path.join(dir, 'ws'), STUDIO_EXAMPLE: 'off', ...env }, overrides);
  const app = await buildApp(settings);
  await app.ready();
  return {
    app,
    settings,
    dir,
    async close() {
      await app.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

export interface Envelope<T = unknown> {
  status: 'ok' | 'error';
  data: T;
  error: { code: string; message: string };
}

export function body<T = unknown>(res: LightMyRequestResponse): Envelope<T> {
  return res.json() as Envelope<T>;
}

/** Shorthand for JSON calls. */
export async function call<T = unknown>(
  app: FastifyInstance,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  url: string,
  payload?: unknown,
): Promise<{ status: number; body: Envelope<T>; res: LightMyRequestResponse }> {
  const res = await app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { status: res.statusCode, body: res.json() as Envelope<T>, res };
}

const COLORS = ['#e33', '#3a3', '#33e', '#da2', '#2cc', '#c2c'];

/** A synthetic image: a shape on a plain background, rendered by sharp from SVG. */
export async function shapeImage(
  shape: string,
  seed: number,
  opts: { width?: number; height?: number; format?: 'jpeg' | 'png' | 'webp' } = {},
): Promise<Buffer> {
  const w = opts.width ?? 64;
  const h = opts.height ?? 48;
  const color = COLORS[seed % COLORS.length];
  const x = 8 + (seed * 7) % Math.max(1, w - 32);
  const y = 8 + (seed * 5) % Math.max(1, h - 32);
  const figure =
    shape === 'circle'
      ? `<circle cx="${x + 12}" cy="${y + 12}" r="12" fill="${color}"/>`
      : shape === 'triangle'
        ? `<polygon points="${x},${y + 24} ${x + 12},${y} ${x + 24},${y + 24}" fill="${color}"/>`
        : `<rect x="${x}" y="${y}" width="24" height="24" fill="${color}"/>`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><rect width="100%" height="100%" fill="#${(seed * 2654435761 % 0xffffff).toString(16).padStart(6, '0')}"/>${figure}</svg>`;
  const img = sharp(Buffer.from(svg));
  const format = opts.format ?? 'png';
  return format === 'jpeg' ? img.jpeg({ quality: 85 }).toBuffer() : format === 'webp' ? img.webp().toBuffer() : img.png().toBuffer();
}

/** An ImageNet-style folder: one sub-folder per class with `perClass` distinct images each. */
export async function makeImageFolder(root: string, classes: Record<string, number>): Promise<void> {
  let seed = 1;
  for (const [cls, n] of Object.entries(classes)) {
    await fs.mkdir(path.join(root, cls), { recursive: true });
    for (let i = 0; i < n; i++) await fs.writeFile(path.join(root, cls, `${cls}-${i}.png`), await shapeImage(cls, seed++));
  }
}

export interface ZipEntry {
  name: string;
  data: Buffer;
  /** A symlink entry: the data is the link target. */
  symlink?: boolean;
  /** Store the entry deflated (for bombs: zeros compress ~1000:1). */
  deflate?: boolean;
}

/**
 * A minimal zip writer, because the tests need archives a well-behaved writer refuses to make:
 * entries named `../x` or `/etc/x`, symlinks, and bombs.
 */
export function makeZip(entries: ZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const payload = e.deflate ? deflateRawSync(e.data) : e.data;
    const method = e.deflate ? 8 : 0;
    const crc = crc32(e.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(payload.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, payload);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    // "made by" Unix (3) so the external attributes carry a file mode.
    central.writeUInt16LE((3 << 8) | 20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(payload.length, 20);
    central.writeUInt32LE(e.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    const mode = e.symlink ? 0o120777 : 0o100644;
    central.writeUInt32LE((mode << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += local.length + name.length + payload.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** A multipart/form-data body by hand, so tests control every part (and can send thousands). */
export function multipart(
  parts: Array<{ name: string; value: string } | { name: string; filename: string; data: Buffer; type?: string }>,
): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----studio${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    if ('filename' in p) {
      chunks.push(
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"; filename="${p.filename}"\r\nContent-Type: ${p.type ?? 'application/zip'}\r\n\r\n`,
        ),
        p.data,
        Buffer.from('\r\n'),
      );
    } else {
      chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"\r\n\r\n${p.value}\r\n`));
    }
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

export interface SseEvent {
  id?: number;
  event: string;
  data: unknown;
}

/** Parses an SSE body into its events (comments and `retry:` lines dropped). */
export function parseSse(text: string): SseEvent[] {
  const out: SseEvent[] = [];
  for (const block of text.split('\n\n')) {
    let id: number | undefined;
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('id: ')) id = Number(line.slice(4));
      else if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length > 0) out.push({ id, event, data: JSON.parse(data.join('\n')) });
  }
  return out;
}

/** Polls a job until it is finished. */
export async function waitForJob(app: FastifyInstance, jobId: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  const t0 = Date.now();
  for (;;) {
    const res = await app.inject({ method: 'GET', url: `/api/jobs/${jobId}` });
    const job = (res.json() as Envelope<Record<string, unknown>>).data;
    if (['succeeded', 'failed', 'cancelled', 'interrupted'].includes(String(job.status))) return job;
    if (Date.now() - t0 > timeoutMs) throw new Error(`job ${jobId} still ${String(job.status)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
