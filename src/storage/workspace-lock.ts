import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { AppError } from '../kernel/errors.ts';
import { processAlive } from './cleanup.ts';

/**
 * One studio per workspace. A second server on the same folder would run its start-up recovery
 * over the first one's live work (marking a training run `interrupted` while it trains, deleting
 * the images of an import in progress), so the workspace is locked before any recovery: a file
 * `.studio.lock` created exclusively, naming the holder's pid. A lock whose process is gone (the
 * studio was killed) is taken over; a live holder makes the second start fail with its pid.
 */

export const LOCK_FILE = '.studio.lock';

const HolderSchema = z.object({ pid: z.number().int().positive(), host: z.string(), started_at: z.string() });
type Holder = z.infer<typeof HolderSchema>;

export interface WorkspaceLock {
  release(): Promise<void>;
}

async function readHolder(file: string): Promise<Holder | null> {
  try {
    const r = HolderSchema.safeParse(JSON.parse(await fs.readFile(file, 'utf8')));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

export async function lockWorkspace(root: string): Promise<WorkspaceLock> {
  await fs.mkdir(root, { recursive: true });
  const file = path.join(root, LOCK_FILE);
  const me: Holder = { pid: process.pid, host: os.hostname(), started_at: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fs.writeFile(file, `${JSON.stringify(me)}\n`, { flag: 'wx' });
      return {
        async release() {
          // only our own lock: a later holder's is not ours to remove
          if ((await readHolder(file))?.pid === process.pid) await fs.rm(file, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = await readHolder(file);
    // This process already holds it (services built twice in one process, as tests do): share it.
    if (holder?.pid === process.pid) return { release: async () => {} };
    if (holder && holder.host === me.host && processAlive(holder.pid)) {
      throw new AppError(
        'CONFLICT',
        `the workspace ${root} is in use by another studio (pid ${holder.pid}, since ${holder.started_at}): stop it, or start this one with another STUDIO_WORKSPACE`,
      );
    }
    // A killed studio's lock (or a torn one): take it over.
    await fs.rm(file, { force: true });
  }
  throw new AppError('CONFLICT', `the workspace ${root} could not be locked: another studio is starting on it`);
}
