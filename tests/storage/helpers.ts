import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A fresh temp folder per test; removed by the returned cleanup. */
export async function tempRoot(label = 'ws'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `studio-${label}-`));
  return { dir, cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
}
