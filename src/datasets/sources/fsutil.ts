import fs from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../../kernel/errors.ts';
import { SkipError } from '../types.ts';

/** True when `child` is `root` or lies below it (both already resolved). */
export function isInside(root: string, child: string): boolean {
  const rel = path.relative(root, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel) && rel.split(path.sep)[0] !== '..');
}

/** The real path of a source root the user named; refused with VALIDATION_ERROR when it is not there. */
export async function realDirectory(p: string, what: string): Promise<string> {
  try {
    const real = await fs.realpath(path.resolve(p));
    if (!(await fs.stat(real)).isDirectory()) throw new AppError('VALIDATION_ERROR', `${what} is not a folder: ${p}`);
    return real;
  } catch (e) {
    if (e instanceof AppError) throw e;
    throw new AppError('VALIDATION_ERROR', `${what} does not exist: ${p}`);
  }
}

export async function realFile(p: string, what: string): Promise<string> {
  try {
    const real = await fs.realpath(path.resolve(p));
    if (!(await fs.stat(real)).isFile()) throw new AppError('VALIDATION_ERROR', `${what} is not a file: ${p}`);
    return real;
  } catch (e) {
    if (e instanceof AppError) throw e;
    throw new AppError('VALIDATION_ERROR', `${what} does not exist: ${p}`);
  }
}

/** Reads a whole file, refusing it (too_large) before reading when it is over the limit. */
export async function readBounded(file: string, maxBytes: number): Promise<Buffer> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(file, 'r');
    const { size } = await handle.stat();
    if (size > maxBytes) throw new SkipError('too_large', `${size} bytes exceeds the ${maxBytes}-byte limit`);
    return await handle.readFile();
  } catch (e) {
    if (e instanceof SkipError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new SkipError(code === 'ENOENT' ? 'missing' : 'corrupt', e instanceof Error ? e.message : String(e));
  } finally {
    await handle?.close();
  }
}

/** An index file (CSV, COCO JSON, data.yaml) read whole, with its own size bound. */
export async function readIndexFile(file: string, maxBytes: number, what: string): Promise<string> {
  try {
    return (await readBounded(file, maxBytes)).toString('utf8');
  } catch (e) {
    throw new AppError('VALIDATION_ERROR', `${what} cannot be read: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Resolves a path the user wrote (CSV row, COCO file_name) against its root and checks that it,
 * and whatever a symlink makes of it, stays inside. Throws SkipError (outside_root / missing).
 */
export async function resolveInside(rootReal: string, relative: string): Promise<string> {
  if (relative.includes('\0')) throw new SkipError('outside_root', 'NUL in path');
  const resolved = path.resolve(rootReal, relative);
  if (!isInside(rootReal, resolved)) throw new SkipError('outside_root', `${relative} is outside the images root`);
  let real: string;
  try {
    real = await fs.realpath(resolved);
  } catch {
    throw new SkipError('missing', `${relative} does not exist`);
  }
  if (!isInside(rootReal, real)) throw new SkipError('outside_root', `${relative} links outside the images root`);
  return real;
}

/** Dot-files, dot-folders and macOS resource forks are never data. */
export function isHiddenName(name: string): boolean {
  return name.startsWith('.') || name === '__MACOSX' || name === 'Thumbs.db' || name === 'desktop.ini';
}

/** Relative paths in reports use forward slashes on every platform. */
export function toPosix(rel: string): string {
  return rel.split(path.sep).join('/');
}
