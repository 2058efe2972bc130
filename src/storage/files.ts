import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { notFound } from '../kernel/errors.ts';

/**
 * Raw byte I/O on files the workspace already resolved and checked (see the `Workspace` methods
 * that call these): image and thumbnail bytes, upload temp files. A missing file is NOT_FOUND(`what`),
 * so a file deleted between resolving and reading answers 404, never a bare ENOENT.
 */

function missing(e: unknown, what: string): unknown {
  return (e as NodeJS.ErrnoException).code === 'ENOENT' ? notFound(what) : e;
}

/** The first `n` bytes of the file (fewer when it is shorter). */
export async function readHead(file: string, n: number, what: string): Promise<Buffer> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(file, 'r');
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } catch (e) {
    throw missing(e, what);
  } finally {
    await fh?.close();
  }
}

export async function readWhole(file: string, what: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (e) {
    throw missing(e, what);
  }
}

/**
 * A stream of the file's bytes, opened before it is returned: a file that vanished is NOT_FOUND
 * here, not an error event after the response headers went out.
 */
export async function openRead(file: string, what: string): Promise<Readable> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch (e) {
    throw missing(e, what);
  }
  // The stream owns the handle from here and closes it when it ends, fails or is destroyed.
  return createReadStream('', { fd: fh });
}

/**
 * Streams `source` into a new file (`wx`: never over an existing one). When the copy fails — the
 * client aborted, the source errored on a size limit, the disk is full — the partial file is
 * removed before the error is passed on.
 */
export async function writeNewFrom(file: string, source: Readable): Promise<void> {
  try {
    await pipeline(source, createWriteStream(file, { flags: 'wx' }));
  } catch (e) {
    // EEXIST: the file is not ours to remove.
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') await fs.rm(file, { force: true });
    throw e;
  }
}
