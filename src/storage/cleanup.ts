import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TEMP_FILE_RE } from './atomic.ts';

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temp files and temp folders whose process is gone (a crash between write and rename
 * leaves one; so does a crash during an upload). Those of live processes, ours included, are
 * work in flight and stay, so this is safe to run from any process or thread.
 * Walks the JSON folders and the image folders of every dataset; `maxDepth` bounds the walk.
 */
export async function removeOrphanTemps(root: string, maxDepth = 8): Promise<string[]> {
  const removed: string[] = [];
  async function walk(dir: string, depth: number): Promise<void> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const full = path.join(dir, e.name);
      const m = TEMP_FILE_RE.exec(e.name);
      if (m && (e.isFile() || e.isDirectory())) {
        if (!processAlive(Number(m[1]))) {
          await fs.rm(full, { recursive: true, force: true });
          removed.push(full);
        }
        continue;
      }
      if (e.isDirectory()) {
        // Lock folders (`x.json.lock`) are proper-lockfile's; it handles their staleness itself.
        if (depth < maxDepth && !e.name.endsWith('.lock')) await walk(full, depth + 1);
        continue;
      }
    }
  }
  await walk(root, 0);
  return removed;
}
