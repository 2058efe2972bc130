import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadSettings } from '../../src/config.ts';
import { LOCK_FILE, lockWorkspace } from '../../src/storage/workspace-lock.ts';

/**
 * One studio per workspace (the hardening issue: a second server's start-up recovery marked the
 * first one's live run interrupted and deleted an import's images). The lock is taken before any
 * recovery; a live holder's pid is named; a killed studio's lock is taken over.
 */

const dirs: string[] = [];
async function workspace(): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-lock-'));
  dirs.push(d);
  return path.join(d, 'ws');
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

/** A process that stays alive until killed (another studio, as far as the lock can tell). */
function sleeper() {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  return { pid: child.pid!, stop: () => new Promise<void>((r) => (child.once('exit', () => r()), child.kill('SIGKILL'))) };
}

const holder = (pid: number) => JSON.stringify({ pid, host: os.hostname(), started_at: '2026-12-07T00:00:00.000Z' });

describe('the workspace lock', () => {
  it('a second studio on a workspace another live studio holds does not start, and says which pid holds it', async () => {
    const ws = await workspace();
    await fs.mkdir(ws, { recursive: true });
    const other = sleeper();
    try {
      await fs.writeFile(path.join(ws, LOCK_FILE), holder(other.pid));
      const start = buildApp(loadSettings({ STUDIO_WORKSPACE: ws, STUDIO_EXAMPLE: 'off' }));
      await expect(start).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringContaining(`pid ${other.pid}`) });
      // nothing of the workspace was touched: no recovery ran
      expect(await fs.readdir(ws)).toEqual([LOCK_FILE]);
    } finally {
      await other.stop();
    }
  });

  it('takes over the lock of a studio that was killed, and releases its own on close', async () => {
    const ws = await workspace();
    await fs.mkdir(ws, { recursive: true });
    const dead = sleeper();
    await dead.stop();
    await fs.writeFile(path.join(ws, LOCK_FILE), holder(dead.pid));
    const app = await buildApp(loadSettings({ STUDIO_WORKSPACE: ws, STUDIO_EXAMPLE: 'off' }));
    expect(JSON.parse(await fs.readFile(path.join(ws, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    await app.close();
    await expect(fs.access(path.join(ws, LOCK_FILE))).rejects.toThrow();
  });

  it('a torn lock file is taken over too; one process may open its workspace twice', async () => {
    const ws = await workspace();
    await fs.mkdir(ws, { recursive: true });
    await fs.writeFile(path.join(ws, LOCK_FILE), '{"pid":');
    const first = await lockWorkspace(ws);
    const second = await lockWorkspace(ws);
    await second.release();
    expect(JSON.parse(await fs.readFile(path.join(ws, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    await first.release();
    await expect(fs.access(path.join(ws, LOCK_FILE))).rejects.toThrow();
  });
});
