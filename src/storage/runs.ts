import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import {
  MetricsLineSchema,
  RunConfigDoc,
  RunDoc,
  RunIdSchema,
  type CheckpointInfo,
  type MetricsLine,
  type RunConfigFile,
  type RunFile,
} from '../schemas/experiment.ts';
import { notFound } from '../kernel/errors.ts';
import { writeFileAtomic } from './atomic.ts';
import { experimentDir } from './experiments.ts';
import { workspacePath } from './safe-path.ts';
import type { Workspace } from './workspace.ts';

/**
 * A run's folder: `experiments/<exp-id>/runs/<run-id>/{run.json, config.json, metrics.jsonl,
 * checkpoints/{best,last}.ckpt}`. Called from the main thread (status) and from the training
 * worker (metrics, checkpoints, progress of run.json); run.json changes go through its lock.
 */

export type CheckpointName = CheckpointInfo['name'];

export interface RunRef {
  projectId: string;
  experimentId: string;
  runId: string;
}

export function runsDir(store: Workspace, projectId: string, experimentId: string): string {
  return path.join(experimentDir(store, projectId, experimentId), 'runs');
}

export function runDir(store: Workspace, r: RunRef): string {
  if (!RunIdSchema.safeParse(r.runId).success) throw notFound('run', r.runId);
  return path.join(runsDir(store, r.projectId, r.experimentId), r.runId);
}

const runFile = (store: Workspace, r: RunRef) => path.join(runDir(store, r), 'run.json');
const configFile = (store: Workspace, r: RunRef) => path.join(runDir(store, r), 'config.json');
const metricsFile = (store: Workspace, r: RunRef) => path.join(runDir(store, r), 'metrics.jsonl');
const checkpointFile = (store: Workspace, r: RunRef, name: CheckpointName) => path.join(runDir(store, r), 'checkpoints', `${name}.ckpt`);

/** Raw files (metrics, checkpoints) bypass the JSON document API, so they get the same guard. */
const guarded = (store: Workspace, file: string): string => workspacePath(store.root, file);

export async function readRun(store: Workspace, r: RunRef): Promise<RunFile> {
  return store.get(RunDoc, runFile(store, r), 'run', r.runId);
}

export async function writeRun(store: Workspace, run: RunFile): Promise<RunFile> {
  return store.write(RunDoc, runFile(store, { projectId: run.project_id, experimentId: run.experiment_id, runId: run.id }), run);
}

/** Read-modify-write of run.json under its lock; `updated_at` is set here. */
export async function modifyRun(store: Workspace, r: RunRef, fn: (run: RunFile) => RunFile): Promise<RunFile> {
  return store.modify(RunDoc, runFile(store, r), 'run', r.runId, (cur) => ({ ...fn(cur), updated_at: new Date().toISOString() }));
}

export async function listRunIds(store: Workspace, projectId: string, experimentId: string): Promise<string[]> {
  return (await store.listDirs(runsDir(store, projectId, experimentId))).filter((d) => RunIdSchema.safeParse(d).success);
}

export async function readRunConfig(store: Workspace, r: RunRef): Promise<RunConfigFile | null> {
  return store.read(RunConfigDoc, configFile(store, r));
}

export async function writeRunConfig(store: Workspace, r: RunRef, config: RunConfigFile): Promise<RunConfigFile> {
  return store.write(RunConfigDoc, configFile(store, r), config);
}

/** Every valid line of metrics.jsonl, in order (the file is rewritten atomically, so none is torn). */
export async function readMetrics(store: Workspace, r: RunRef): Promise<MetricsLine[]> {
  let text: string;
  try {
    text = await fs.readFile(guarded(store, metricsFile(store, r)), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: MetricsLine[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      continue;
    }
    const p = MetricsLineSchema.safeParse(raw);
    if (p.success) out.push(p.data);
  }
  return out;
}

/**
 * Appends one epoch's line, dropping any line of that epoch or later first (a resumed run redoes
 * the epochs after its checkpoint). The whole file is replaced atomically: a few hundred short
 * lines cost nothing to rewrite, and a crash can never leave half a line.
 */
export async function appendMetrics(store: Workspace, r: RunRef, line: MetricsLine): Promise<void> {
  const valid = MetricsLineSchema.parse(line);
  const kept = (await readMetrics(store, r)).filter((m) => m.epoch < valid.epoch);
  await writeMetricsLines(store, r, [...kept, valid]);
}

/** Keeps the lines of epochs ≤ `epoch` (resume from a checkpoint taken after that epoch). */
export async function truncateMetrics(store: Workspace, r: RunRef, epoch: number): Promise<void> {
  const lines = await readMetrics(store, r);
  const kept = lines.filter((m) => m.epoch <= epoch);
  if (kept.length !== lines.length) await writeMetricsLines(store, r, kept);
}

async function writeMetricsLines(store: Workspace, r: RunRef, lines: MetricsLine[]): Promise<void> {
  const file = guarded(store, metricsFile(store, r));
  await fs.mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
}

/** Writes a checkpoint atomically (temp, fsync, rename) and returns what run.json records of it. */
export async function writeCheckpoint(
  store: Workspace,
  r: RunRef,
  name: CheckpointName,
  bytes: Uint8Array,
  at: { epoch: number; step: number },
): Promise<CheckpointInfo> {
  const file = guarded(store, checkpointFile(store, r, name));
  await fs.mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, bytes);
  return {
    name,
    epoch: at.epoch,
    step: at.step,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    bytes: bytes.length,
    created_at: new Date().toISOString(),
  };
}

/** Whether the run's checkpoint file is there (run.json lists what was written; a file may be gone since). */
export async function checkpointExists(store: Workspace, r: RunRef, name: CheckpointName): Promise<boolean> {
  return store.exists(guarded(store, checkpointFile(store, r, name)));
}

/** The checkpoint's bytes, or null when it does not exist. Its integrity is checked by the decoder. */
export async function readCheckpoint(store: Workspace, r: RunRef, name: CheckpointName): Promise<Uint8Array | null> {
  try {
    return new Uint8Array(await fs.readFile(guarded(store, checkpointFile(store, r, name))));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

export async function removeRun(store: Workspace, r: RunRef): Promise<void> {
  await store.removeTree(runDir(store, r));
}
