import { close, constants, open } from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { AppError } from '../kernel/errors.ts';
import { isInside } from './safe-path.ts';
import type { Workspace } from './workspace.ts';

/**
 * Uploaded archives: `Workspace.writeTempFrom` streams one into `tmp/`, the import job reads it and
 * deletes it. Both the check and the open live here because only `src/storage` touches the workspace.
 */

const openFd = promisify(open);
const closeFd = promisify(close);

/**
 * Before a dataset is made for an upload: `file` must be a temp path of this workspace and a
 * regular file (not a symlink: an upload is always written in place). VALIDATION_ERROR otherwise.
 */
export async function checkUpload(store: Workspace, file: string, what = 'uploaded archive'): Promise<void> {
  const full = path.resolve(file);
  if (!isInside(store.tmpDir(), full) || full === store.tmpDir()) throw new AppError('PATH_OUTSIDE_ROOT', `${what} is not a workspace upload: ${file}`);
  let isFile: boolean;
  try {
    isFile = (await fs.lstat(full)).isFile();
  } catch {
    throw new AppError('VALIDATION_ERROR', `${what} does not exist: ${file}`);
  }
  if (!isFile) throw new AppError('VALIDATION_ERROR', `${what} is not a file: ${file}`);
}

/**
 * Opens an upload read-only and hands the raw descriptor to `adopt` (yauzl's `fromFd`: random
 * access, nothing extracted), which owns it once it resolves and closes it with the archive. When
 * `adopt` rejects, the descriptor is closed here, as yauzl's own `open` does. The last path
 * component is not followed if it is a symlink. Errors are Node's (ENOENT, ELOOP) or `adopt`'s.
 */
export async function openUpload<T>(file: string, adopt: (fd: number) => Promise<T>): Promise<T> {
  const fd = await openFd(path.resolve(file), constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return await adopt(fd);
  } catch (e) {
    await closeFd(fd).catch(() => undefined);
    throw e;
  }
}
