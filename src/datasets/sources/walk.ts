import type { Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { SkippedFile } from '../types.ts';
import { isHiddenName, isInside, toPosix } from './fsutil.ts';

export interface WalkedFile {
  /** Real path to read. */
  real: string;
  /** Path relative to the walked root, forward slashes. */
  rel: string;
}

/**
 * Lists the files under a folder, any depth, in a stable (sorted) order. Symlinks are followed
 * only while they stay inside `rootReal`; one that escapes is reported `outside_root`, a broken
 * one `missing`. Hidden files and folders are passed over silently; a folder reached twice
 * through links is walked once.
 */
export async function walkFolder(startReal: string, rootReal: string, signal?: AbortSignal): Promise<{ files: WalkedFile[]; skipped: SkippedFile[] }> {
  const files: WalkedFile[] = [];
  const skipped: SkippedFile[] = [];
  const visited = new Set<string>();

  async function visit(dirReal: string, relDir: string): Promise<void> {
    if (visited.has(dirReal)) return;
    visited.add(dirReal);
    signal?.throwIfAborted();
    let entries: Dirent[];
    try {
      entries = await fs.readdir(dirReal, { withFileTypes: true });
    } catch (e) {
      skipped.push({ file: relDir === '' ? '.' : relDir, reason: 'unsupported', detail: `folder cannot be read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` });
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (isHiddenName(entry.name)) continue;
      const rel = relDir === '' ? entry.name : `${relDir}/${entry.name}`;
      const full = path.join(dirReal, entry.name);
      if (entry.isSymbolicLink()) {
        let real: string;
        try {
          real = await fs.realpath(full);
        } catch {
          skipped.push({ file: rel, reason: 'missing', detail: 'broken symbolic link' });
          continue;
        }
        if (!isInside(rootReal, real)) {
          skipped.push({ file: rel, reason: 'outside_root', detail: 'symbolic link leads outside the root' });
          continue;
        }
        const st = await fs.stat(real).catch(() => null);
        if (st === null) skipped.push({ file: rel, reason: 'missing', detail: 'vanished while scanning' });
        else if (st.isDirectory()) await visit(real, rel);
        else if (st.isFile()) files.push({ real, rel });
        else skipped.push({ file: rel, reason: 'unsupported', detail: 'not a regular file' });
      } else if (entry.isDirectory()) {
        await visit(full, rel);
      } else if (entry.isFile()) {
        files.push({ real: full, rel });
      } else {
        skipped.push({ file: rel, reason: 'unsupported', detail: 'not a regular file' });
      }
    }
  }

  await visit(startReal, toPosix(path.relative(rootReal, startReal)));
  return { files, skipped };
}
