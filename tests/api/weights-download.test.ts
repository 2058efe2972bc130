import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createWeightsService, type WeightsService } from '../../src/core/weights.ts';
import { createJobRegistry } from '../../src/jobs/registry.ts';
import { createJobsService, type JobsService } from '../../src/jobs/service.ts';
import type { PinnedWeights } from '../../src/models/weights/index.ts';
import { openWorkspace, type Workspace } from '../../src/storage/workspace.ts';
import { WEIGHTS_FIXTURES } from '../models/weights/fixtures.ts';

/**
 * Downloads against a local HTTP server (never the network): a redirect, a body cut short then
 * resumed with Range, a wrong hash, a stalled server, a cancel, an unreachable host.
 */

let file: Buffer;
let sha: string;
let server: http.Server;
let base: string;
let mode: 'ok' | 'truncate' | 'stall' | 'slow' | 'wrong' = 'ok';
const ranges: (string | undefined)[] = [];

let dir: string;
let store: Workspace;
let jobs: JobsService;
let weights: WeightsService;
let pinned: Record<string, PinnedWeights[]>;

const NAME = () => `mobilenet_v3_small-${sha.slice(0, 8)}.pth`;

beforeAll(async () => {
  file = await fs.readFile(path.join(WEIGHTS_FIXTURES, 'mobilenet_v3_small.pth'));
  sha = createHash('sha256').update(file).digest('hex');
  server = http.createServer((req, res) => {
    if (req.url === `/old/${NAME()}`) {
      res.writeHead(302, { location: `/models/${NAME()}` });
      res.end();
      return;
    }
    if (req.url !== `/models/${NAME()}`) {
      res.writeHead(404);
      res.end();
      return;
    }
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'content-length': file.length });
      res.end();
      return;
    }
    ranges.push(req.headers.range);
    const body = mode === 'wrong' ? Buffer.from(file).fill(7, 5000, 6000) : file;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const from = m ? Number(m[1]) : 0;
    const part = body.subarray(from);
    res.writeHead(m ? 206 : 200, { 'content-length': part.length, ...(m ? { 'content-range': `bytes ${from}-${body.length - 1}/${body.length}` } : {}) });
    if (mode === 'truncate') {
      res.write(part.subarray(0, 1_000_000), () => res.socket?.destroy());
      mode = 'ok';
      return;
    }
    if (mode === 'stall') {
      res.write(part.subarray(0, 1000)); // then nothing
      return;
    }
    if (mode === 'slow') {
      let at = 0;
      const t = setInterval(() => {
        if (res.destroyed) return clearInterval(t);
        res.write(part.subarray(at, at + 1000));
        at += 1000;
      }, 20);
      return;
    }
    res.end(part);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/models/`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

beforeEach(async () => {
  if (jobs) await jobs.close();
  if (weights) await weights.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'weights-dl-'));
  store = await openWorkspace(dir);
  jobs = createJobsService(createJobRegistry(store));
  pinned = { mobilenet_v3_small: [{ variant: 'TEST', file: NAME(), sha256: sha, sha256_prefix: sha.slice(0, 8), acc1: 0, default: true }] };
  weights = createWeightsService({ settings: { weightsBaseUrl: base, weightsTimeoutMs: 1500 }, store, jobs, pinned });
  mode = 'ok';
  ranges.length = 0;
});

afterAll(async () => {
  await jobs?.close();
  await weights?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const cacheDir = () => path.join(dir, 'models', 'weights', 'cache');

async function run(variant?: string) {
  const started = await weights.download('mobilenet_v3_small', variant);
  const job = await jobs.wait(started.job.id);
  return { job, weights: await weights.get('mobilenet_v3_small', started.weights.id) };
}

describe('weights download', () => {
  it('downloads, checks the sha256, caches the file and loads it', async () => {
    const { job, weights: w } = await run();
    expect(job.status).toBe('succeeded');
    expect(job.kind).toBe('weights_download');
    expect(w).toMatchObject({ status: 'ready', source: 'download', sha256: sha, url: `${base}${NAME()}`, file_name: NAME(), num_classes: 1000 });
    expect(await fs.readdir(cacheDir())).toEqual([NAME()]);
    // a second download uses the cache: no request
    const n = ranges.length;
    expect((await run()).job.status).toBe('succeeded');
    expect(ranges.length).toBe(n);
  });

  it('follows a redirect', async () => {
    weights = createWeightsService({ settings: { weightsBaseUrl: base.replace('/models/', '/old/'), weightsTimeoutMs: 1500 }, store, jobs, pinned });
    expect((await run()).job.status).toBe('succeeded');
  });

  it('a body cut short fails, keeps the part, and the next try resumes it with Range', async () => {
    mode = 'truncate';
    const first = await run();
    expect(first.job.status).toBe('failed');
    expect(first.job.error?.code).toBe('DOWNLOAD_FAILED');
    expect(first.weights.status).toBe('failed');
    const part = await fs.stat(path.join(cacheDir(), `${NAME()}.part`));
    expect(part.size).toBe(1_000_000);
    const second = await run();
    expect(second.job.status).toBe('succeeded');
    expect(ranges.at(-1)).toBe('bytes=1000000-');
    expect(second.weights.sha256).toBe(sha);
  });

  it('a wrong hash fails with HASH_MISMATCH and drops the file', async () => {
    mode = 'wrong';
    const r = await run();
    expect(r.job.error?.code).toBe('HASH_MISMATCH');
    expect(r.weights.error?.message).toMatch(/does not match the pinned/);
    expect(await fs.readdir(cacheDir())).toEqual([]);
  });

  it('a stalled server fails after the timeout, keeping what arrived', async () => {
    mode = 'stall';
    const r = await run();
    expect(r.job.error?.code).toBe('DOWNLOAD_FAILED');
    expect(r.weights.error?.message).toMatch(/kept, try again to resume/);
  });

  it('a download can be cancelled', async () => {
    mode = 'slow';
    const started = await weights.download('mobilenet_v3_small');
    await new Promise((r) => setTimeout(r, 300));
    await jobs.cancel(started.job.id);
    const job = await jobs.wait(started.job.id);
    expect(job.status).toBe('cancelled');
    const w = await weights.get('mobilenet_v3_small', started.weights.id);
    expect(w.status).toBe('failed');
    expect(w.error?.code).toBe('CANCELLED');
  });

  it('an unreachable host is OFFLINE at once, with the manual way; an unknown variant is refused', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    weights = createWeightsService({ settings: { weightsBaseUrl: `http://127.0.0.1:${port}/`, weightsTimeoutMs: 1500 }, store, jobs, pinned });
    await expect(weights.download('mobilenet_v3_small')).rejects.toMatchObject({ code: 'OFFLINE', status: 503, message: expect.stringMatching(/download http.*on a machine that is online.*then load it/) });
    await expect(weights.download('mobilenet_v3_small', 'NOPE')).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(await weights.list('mobilenet_v3_small')).toEqual([]);
  });
});
