import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { DocType } from '../../src/schemas/common.ts';
import { DatasetDoc, DatasetV1Doc, ShardDoc, SplitDoc } from '../../src/schemas/dataset.ts';
import { Workspace } from '../../src/storage/workspace.ts';
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

/** The schema a workspace JSON file is written with, by its name and folder. */
function docFor(f: string, text: string): DocType<{ schema_version: number }> {
  const base = path.basename(f);
  const dir = path.basename(path.dirname(f));
  if (base === 'dataset.json') return (text.includes('"schema_version": 1,') ? DatasetV1Doc : DatasetDoc) as DocType<{ schema_version: number }>;
  if (dir === 'shards') return ShardDoc as DocType<{ schema_version: number }>;
  if (dir === 'splits') return SplitDoc as DocType<{ schema_version: number }>;
  return (base === 'studio.json' ? StudioDoc : ProjectDoc) as DocType<{ schema_version: number }>;
}

/**
 * Every JSON file must parse and validate against its schema, and every dataset's header must
 * name only shard and split files that exist, with counts equal to its records; returns the
 * problems found.
 */
export async function checkWorkspace(root: string): Promise<string[]> {
  const problems: string[] = [];
  const datasets: { pid: string; did: string }[] = [];
  for (const f of await allFiles(root)) {
    if (!f.endsWith('.json')) continue;
    try {
      const text = await fs.readFile(f, 'utf8');
      parseDoc(docFor(f, text), text, f);
    } catch (e) {
      problems.push(`${path.relative(root, f)}: ${(e as Error).message.slice(0, 200)}`);
    }
    const parts = path.relative(root, f).split(path.sep);
    if (parts.length === 5 && parts[0] === 'projects' && parts[2] === 'datasets' && parts[4] === 'dataset.json') datasets.push({ pid: parts[1], did: parts[3] });
  }
  if (problems.length) return problems;
  // Read-only: a plain Workspace (no start-up sweep) reading through the dataset store.
  const ws = new Workspace(root);
  for (const { pid, did } of datasets) {
    const header = await ws.read(DatasetDoc, ws.datasetFile(pid, did)).catch(() => null);
    if (header === null) continue; // version 1: checked by its schema above
    for (const p of await ws.datasets.verify(pid, did)) problems.push(`${pid}/${did}: ${p}`);
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

