import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { request } from 'undici';

/**
 * The studio as its own process, for tests that kill it (SIGKILL) and start it again on the same
 * workspace and port.
 */
const REPO = path.resolve(import.meta.dirname, '..');

export interface Envelope<T> {
  status: string;
  data: T;
  error?: { code: string; message: string };
}

export interface StudioProcess {
  /** JSON request to the process on `port`: status and the parsed envelope. */
  api<T>(method: 'GET' | 'POST', url: string, body?: unknown): Promise<{ status: number; body: Envelope<T> }>;
  /** Starts the server and resolves once it answers; its stderr is kept for error messages. */
  start(): Promise<ChildProcess>;
  /** What the processes started so far wrote to stderr. */
  stderr(): string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

export function studioProcess(port: number, workspace: string): StudioProcess {
  let stderr = '';
  const api = async <T>(method: 'GET' | 'POST', url: string, body?: unknown) => {
    const res = await request(`http://127.0.0.1:${port}${url}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.statusCode, body: (await res.body.json()) as Envelope<T> };
  };
  return {
    api,
    stderr: () => stderr,
    async start() {
      // node with tsx as a loader (not the tsx CLI, whose child would survive a SIGKILL of the CLI).
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
        cwd: REPO,
        env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', STUDIO_WORKSPACE: workspace, STUDIO_EXAMPLE: 'off' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child.stderr?.on('data', (d: Buffer) => void (stderr += d.toString()));
      const t0 = Date.now();
      for (;;) {
        if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${stderr.slice(-2000)}`);
        try {
          if ((await api('GET', '/api/projects')).status === 200) return child;
        } catch {
          // not listening yet
        }
        if (Date.now() - t0 > 60_000) throw new Error('server did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}
