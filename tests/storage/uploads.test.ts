import { closeSync, promises as fs, fstatSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkUpload, openUpload } from '../../src/storage/uploads.ts';
import { openWorkspace, type Workspace } from '../../src/storage/workspace.ts';
import { tempRoot } from './helpers.ts';

let cleanup: () => Promise<void>;
let dir: string;
let ws: Workspace;
beforeEach(async () => {
  const t = await tempRoot('uploads');
  cleanup = t.cleanup;
  dir = t.dir;
  ws = await openWorkspace(path.join(t.dir, 'ws'));
});
afterEach(() => cleanup());

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

describe('checkUpload', () => {
  it('accepts an upload temp file of the workspace', async () => {
    const file = await ws.writeTempFrom(Readable.from([Buffer.from('PK\x05\x06')]));
    await expect(checkUpload(ws, file)).resolves.toBeUndefined();
  });

  it('refuses a path outside tmp/, a missing file, a folder and a symlink', async () => {
    const outside = path.join(dir, 'elsewhere.zip');
    await fs.writeFile(outside, 'x');
    await expect(checkUpload(ws, outside)).rejects.toMatchObject({ code: 'PATH_OUTSIDE_ROOT' });
    await expect(checkUpload(ws, ws.studioFile())).rejects.toMatchObject({ code: 'PATH_OUTSIDE_ROOT' });
    await expect(checkUpload(ws, ws.tmpDir())).rejects.toMatchObject({ code: 'PATH_OUTSIDE_ROOT' });
    await expect(checkUpload(ws, path.join(ws.tmpDir(), '..', 'studio.json'))).rejects.toMatchObject({ code: 'PATH_OUTSIDE_ROOT' });
    await expect(checkUpload(ws, await ws.tempFile())).rejects.toMatchObject({ code: 'VALIDATION_ERROR', message: expect.stringContaining('does not exist') });
    await expect(checkUpload(ws, await ws.tempDir())).rejects.toMatchObject({ code: 'VALIDATION_ERROR', message: expect.stringContaining('is not a file') });
    const link = await ws.tempFile();
    await fs.symlink(outside, link);
    await expect(checkUpload(ws, link)).rejects.toMatchObject({ code: 'VALIDATION_ERROR', message: expect.stringContaining('is not a file') });
  });
});

describe('openUpload', () => {
  it('hands an open read-only descriptor to adopt and returns its result', async () => {
    const file = await ws.writeTempFrom(Readable.from([Buffer.from('hello')]));
    let seen = -1;
    const size = await openUpload(file, async (fd) => {
      seen = fd;
      return fstatSync(fd).size;
    });
    expect(size).toBe(5);
    // Adopted: the descriptor is the adopter's to close.
    expect(isOpen(seen)).toBe(true);
    closeSync(seen);
  });

  it('closes the descriptor when adopt fails, and passes the error on', async () => {
    const file = await ws.writeTempFrom(Readable.from([Buffer.from('hello')]));
    let seen = -1;
    await expect(
      openUpload(file, async (fd) => {
        seen = fd;
        throw new Error('not a zip');
      }),
    ).rejects.toThrow('not a zip');
    expect(seen).toBeGreaterThanOrEqual(0);
    expect(isOpen(seen)).toBe(false);
  });

  it('does not follow a symlink nor open a missing file', async () => {
    const target = path.join(dir, 'target.zip');
    await fs.writeFile(target, 'x');
    const link = await ws.tempFile();
    await fs.symlink(target, link);
    await expect(openUpload(link, async () => 1)).rejects.toMatchObject({ code: 'ELOOP' });
    await expect(openUpload(await ws.tempFile(), async () => 1)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
