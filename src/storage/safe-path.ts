import { promises as fs } from 'node:fs';
import path from 'node:path';
import { AppError } from '../kernel/errors.ts';

/** True when `child` is `root` itself or lies below it (both absolute, normalized). */
export function isInside(root: string, child: string): boolean {
  const rel = path.relative(root, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/**
 * A path the studio built itself below the workspace, checked before raw file I/O that bypasses
 * the JSON document API (metrics, checkpoints, artifacts, evaluation folders): a bug elsewhere can
 * never read, write or remove outside the workspace, nor the workspace folder itself.
 */
export function workspacePath(root: string, p: string): string {
  const full = path.resolve(p);
  if (!isInside(root, full) || full === root) throw new AppError('PATH_OUTSIDE_ROOT', `path outside the workspace: ${p}`);
  return full;
}

/**
 * Joins a relative path from an untrusted source onto `root` and refuses anything that leaves it:
 * absolute paths, `..` segments that climb out, NUL bytes. Lexical only; see `realpathInside`
 * for symlinks.
 */
export function resolveInside(root: string, rel: string): string {
  if (rel.includes('\0')) throw new AppError('PATH_OUTSIDE_ROOT', 'path contains a NUL byte');
  if (path.isAbsolute(rel) || /^[a-zA-Z]:[\\/]/.test(rel)) throw new AppError('PATH_OUTSIDE_ROOT', `absolute path not allowed: ${rel}`);
  const base = path.resolve(root);
  const full = path.resolve(base, rel);
  if (!isInside(base, full)) throw new AppError('PATH_OUTSIDE_ROOT', `path leaves its root: ${rel}`);
  return full;
}

/**
 * Resolves symlinks of an existing path and checks the real location is still inside the real
 * root: a symlink planted inside the root cannot point the studio at /etc/passwd.
 * Returns the real path; a missing file is a NOT_FOUND.
 */
export async function realpathInside(root: string, p: string): Promise<string> {
  const realRoot = await fs.realpath(root);
  let real: string;
  try {
    real = await fs.realpath(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new AppError('NOT_FOUND', 'file not found');
    throw e;
  }
  if (!isInside(realRoot, real)) throw new AppError('PATH_OUTSIDE_ROOT', 'path leaves its root through a symlink');
  return real;
}
