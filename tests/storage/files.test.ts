import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openWorkspace, type Workspace } from '../../src/storage/workspace.ts';
import { tempRoot } from './helpers.ts';

let dir: string;
let cleanup: () => Promise<void>;
let ws: Workspace;
beforeEach(async () => {
  ({ dir, cleanup } = await tempRoot('files'));
  ws = await openWorkspace(path.join(dir, 'ws'));
});
afterEach(() => cleanup());

const PID = 'proj-aaaaaaaa';
const DID = 'ds-bbbbbbbb';
const bytes = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 251));

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('writeTempFrom', () => {
  it('streams the source into a fresh temp file that removeTemp deletes', async () => {
    const file = await ws.writeTempFrom(Readable.from([bytes.subarray(0, 100), bytes.subarray(100)]), 'upload');
    expect(path.dirname(file)).toBe(ws.tmpDir());
    expect(path.basename(file)).toMatch(/^\.upload\./);
    expect(await fs.readFile(file)).toEqual(bytes);
    await ws.removeTemp(file);
    expect(await fs.readdir(ws.tmpDir())).toEqual([]);
  });

  it('leaves no partial file when the source fails half way (a client abort or a size limit)', async () => {
    async function* failing() {
      yield bytes.subarray(0, 100);
      throw new Error('client went away');
    }
    await expect(ws.writeTempFrom(Readable.from(failing()))).rejects.toThrow('client went away');
    expect(await fs.readdir(ws.tmpDir())).toEqual([]);
  });
});

describe('reading stored files', () => {
  let file: string;
  beforeEach(async () => {
    const rel = await ws.writeImage(PID, DID, 'a.bin', bytes);
    file = await ws.datasetFilePath(PID, DID, rel);
  });

  it('reads the head (short files give what they have), the whole file and a stream', async () => {
    expect(await ws.readHead(file, 4)).toEqual(bytes.subarray(0, 4));
    expect(await ws.readHead(file, 1000)).toEqual(bytes);
    expect(await ws.readFile(file)).toEqual(bytes);
    expect(await drain(await ws.openReadStream(file))).toEqual(bytes);
  });

  it('answers a vanished file with NOT_FOUND named as asked, before any stream exists', async () => {
    await fs.rm(file);
    await expect(ws.readHead(file, 4, 'image file')).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'image file not found' });
    await expect(ws.readFile(file)).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'file not found' });
    await expect(ws.openReadStream(file, 'image file')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses paths outside the workspace', async () => {
    const outside = path.join(dir, 'secret.txt');
    await fs.writeFile(outside, 'secret');
    const climbing = path.join(ws.root, '..', 'secret.txt');
    for (const p of [outside, climbing]) {
      await expect(ws.readHead(p, 4)).rejects.toMatchObject({ code: 'PATH_OUTSIDE_ROOT' });
      await expect(ws.readFile(p)).rejects.toMatchObject({ code: 'PATH_OUTSIDE_ROOT' });
      await expect(ws.openReadStream(p)).rejects.toMatchObject({ code: 'PATH_OUTSIDE_ROOT' });
    }
  });

  it('accepts the real paths datasetFilePath returns when the workspace is reached through a symlink', async () => {
    const link = path.join(dir, 'link');
    await fs.symlink(ws.root, link);
    const viaLink = await openWorkspace(link);
    const real = await viaLink.datasetFilePath(PID, DID, 'images/a.bin');
    expect(real.startsWith(viaLink.root + path.sep)).toBe(false);
    expect(await viaLink.readHead(real, 4)).toEqual(bytes.subarray(0, 4));
    expect(await drain(await viaLink.openReadStream(real))).toEqual(bytes);
    await expect(viaLink.readFile(path.join(dir, 'elsewhere.bin'))).rejects.toMatchObject({ code: 'PATH_OUTSIDE_ROOT' });
  });
});
