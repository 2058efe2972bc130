import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { threadId } from 'node:worker_threads';

/**
 * Temp files are named `.<target>.<pid>.<thread>.<random>.tmp` beside their target, so that the
 * start-up cleanup can tell an orphan (its process is gone) from a write in flight.
 */
export const TEMP_FILE_RE = /^\..*\.(\d+)\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/** What identifies one version of a file: an atomic replace always changes the inode. */
export interface FileIdentity {
  ino: number;
  mtimeMs: number;
  size: number;
}

export function tempPathFor(file: string): string {
  const dir = path.dirname(file);
  return path.join(dir, `.${path.basename(file)}.${process.pid}.${threadId}.${randomBytes(6).toString('hex')}.tmp`);
}

/** fsync on a directory makes a rename in it durable; some filesystems refuse it, which is harmless. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(dir, 'r');
    await fh.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw e;
  } finally {
    await fh?.close();
  }
}

/**
 * Replaces `file` so that a crash at any instant leaves either the old or the new content:
 * write a temp file in the same folder (same filesystem, so rename is atomic), fsync it,
 * rename it over the target, then fsync the folder so the rename itself survives a power cut.
 * `durable: false` skips both fsyncs (content-addressed images: a torn one is re-importable,
 * and fsyncing thousands of them would dominate an import).
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, opts: { durable?: boolean } = {}): Promise<FileIdentity> {
  const durable = opts.durable ?? true;
  const tmp = tempPathFor(file);
  let fh: fs.FileHandle | undefined;
  let identity: FileIdentity;
  try {
    fh = await fs.open(tmp, 'wx', 0o644);
    await fh.writeFile(data);
    if (durable) await fh.sync();
    // Taken before the rename (which keeps inode and mtime): it names exactly this content.
    const st = await fh.stat();
    identity = { ino: st.ino, mtimeMs: st.mtimeMs, size: st.size };
    await fh.close();
    fh = undefined;
    await fs.rename(tmp, file);
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
  if (durable) await fsyncDir(path.dirname(file));
  return identity;
}
