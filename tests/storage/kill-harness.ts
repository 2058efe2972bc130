import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { DatasetDoc } from '../../src/schemas/dataset.ts';
import { ProjectDoc } from '../../src/schemas/project.ts';
import { StudioDoc } from '../../src/schemas/studio.ts';
import { parseDoc } from '../../src/storage/json-doc.ts';

/**
 * The SIGKILL harness of the crash tests (kill.test.ts in `npm test`, crash.ts behind
 * `npm run test:crash`): a writer process (kill-writer.ts) that keeps rewriting a workspace's JSON
 * files, killed at a random moment, and the check that every JSON file still parses and validates.
 */

// node itself with tsx as a loader, not the tsx CLI: the CLI runs the script in a child
// process, and SIGKILL on the CLI would leave that child writing.
const writer = path.resolve(import.meta.dirname, 'kill-writer.ts');

export async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await allFiles(full)));
    else out.push(full);
  }
  return out;
}

/** Every JSON file must parse and validate against its schema; returns the problems found. */
export async function checkWorkspace(root: string): Promise<string[]> {
  const problems: string[] = [];
  for (const f of await allFiles(root)) {
    if (!f.endsWith('.json')) continue;
    const doc = path.basename(f) === 'dataset.json' ? DatasetDoc : path.basename(f) === 'studio.json' ? StudioDoc : ProjectDoc;
    try {
      parseDoc(doc as typeof ProjectDoc, await fs.readFile(f, 'utf8'), f);
    } catch (e) {
      problems.push(`${path.relative(root, f)}: ${(e as Error).message.slice(0, 200)}`);
    }
  }
  return problems;
}

export function runAndKill(root: string, round: number, delayMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', writer, root, String(round)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`writer exited ${code}: ${err}`))));
  });
}

