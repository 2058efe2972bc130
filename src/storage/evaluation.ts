import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { AppError } from '../kernel/errors.ts';
import { AggregateMetricsSchema, type AggregateMetrics } from '../evaluation/metrics/schema.ts';
import { ResultRecordSchema, type ResultRecord } from '../evaluation/results.ts';
import { fsyncDir, writeFileAtomic } from './atomic.ts';
import { experimentDir } from './experiments.ts';
import { workspacePath } from './safe-path.ts';
import type { Workspace } from './workspace.ts';

/**
 * An experiment's evaluation on disk: `experiments/<exp-id>/evaluation/{evaluation.json,
 * aggregate.json, results.jsonl}`. An evaluation in progress writes into a staging folder beside it
 * (`.evaluation-next/`, hidden from folder listings) that replaces `evaluation/` in two renames once
 * it is finished, so readers always see one complete evaluation — the old one or the new one.
 */

export {
  AggregateDoc,
  AggregateFileSchema,
  EVALUATION_STATUSES,
  EvaluationConfigSchema,
  EvaluationDoc,
  EvaluationFileSchema,
  EvaluationProblemSchema,
  EvaluationStatusSchema,
  LastAttemptSchema,
  MAX_STORED_PROBLEMS,
  type AggregateFile,
  type EvaluationConfig,
  type EvaluationFile,
  type EvaluationProblem,
  type EvaluationStatus,
  type LastAttempt,
} from '../schemas/evaluation.ts';
import { AggregateDoc, EvaluationDoc, type AggregateFile, type EvaluationFile } from '../schemas/evaluation.ts';

/** A schema the stored aggregate and records are checked with (the task's). */
type Schema<T> = z.ZodType<T>;

/** Which of the two folders: the current evaluation, or the one being made. */
export type EvaluationSlot = 'current' | 'staging';

export interface EvaluationRef {
  projectId: string;
  experimentId: string;
}

export function evaluationDir(store: Workspace, r: EvaluationRef, slot: EvaluationSlot = 'current'): string {
  return path.join(experimentDir(store, r.projectId, r.experimentId), slot === 'current' ? 'evaluation' : '.evaluation-next');
}

const file = (store: Workspace, r: EvaluationRef, slot: EvaluationSlot, name: string) => path.join(evaluationDir(store, r, slot), name);

/** Raw files (results.jsonl, folder renames) bypass the JSON document API, so they get the same guard. */
const guarded = (store: Workspace, p: string): string => workspacePath(store.root, p);

export async function readEvaluation(store: Workspace, r: EvaluationRef, slot: EvaluationSlot = 'current'): Promise<EvaluationFile | null> {
  return store.read(EvaluationDoc, file(store, r, slot, 'evaluation.json'));
}

export async function writeEvaluation(store: Workspace, r: EvaluationRef, slot: EvaluationSlot, value: EvaluationFile): Promise<EvaluationFile> {
  return store.write(EvaluationDoc, file(store, r, slot, 'evaluation.json'), value);
}

/** Read-modify-write of a slot's evaluation.json under its lock; `updated_at` is set here. */
export async function modifyEvaluation(
  store: Workspace,
  r: EvaluationRef,
  slot: EvaluationSlot,
  fn: (cur: EvaluationFile) => EvaluationFile,
): Promise<EvaluationFile> {
  return store.modify(EvaluationDoc, file(store, r, slot, 'evaluation.json'), 'evaluation', r.experimentId, (cur) => ({
    ...fn(cur),
    updated_at: new Date().toISOString(),
  }));
}

/** The aggregate, checked with `schema` (classification's by default); a file that does not fit it is STORAGE_CORRUPT. */
export async function readAggregate(store: Workspace, r: EvaluationRef, slot?: EvaluationSlot): Promise<AggregateMetrics | null>;
export async function readAggregate<T>(store: Workspace, r: EvaluationRef, slot: EvaluationSlot, schema: Schema<T>): Promise<T | null>;
export async function readAggregate(store: Workspace, r: EvaluationRef, slot: EvaluationSlot = 'current', schema: Schema<unknown> = AggregateMetricsSchema): Promise<unknown> {
  const metrics = (await store.read(AggregateDoc, file(store, r, slot, 'aggregate.json')))?.metrics;
  if (metrics === undefined) return null;
  const p = schema.safeParse(metrics);
  if (!p.success) throw new AppError('STORAGE_CORRUPT', `aggregate.json: ${p.error.issues[0]?.path.join('.') ?? ''} ${p.error.issues[0]?.message ?? 'invalid'}`);
  return p.data;
}

export async function writeAggregate(store: Workspace, r: EvaluationRef, slot: EvaluationSlot, metrics: AggregateMetrics): Promise<void>;
export async function writeAggregate<T>(store: Workspace, r: EvaluationRef, slot: EvaluationSlot, metrics: T, schema: Schema<T>): Promise<void>;
export async function writeAggregate(store: Workspace, r: EvaluationRef, slot: EvaluationSlot, metrics: unknown, schema: Schema<unknown> = AggregateMetricsSchema): Promise<void> {
  await store.write(AggregateDoc, file(store, r, slot, 'aggregate.json'), { schema_version: 1, metrics: schema.parse(metrics) as Record<string, unknown> });
}

/** results.jsonl, one record a line validated with `schema` (classification's by default), written atomically as a whole. */
export async function writeResults(store: Workspace, r: EvaluationRef, slot: EvaluationSlot, records: readonly ResultRecord[]): Promise<void>;
export async function writeResults<T>(store: Workspace, r: EvaluationRef, slot: EvaluationSlot, records: readonly T[], schema: Schema<T>): Promise<void>;
export async function writeResults(store: Workspace, r: EvaluationRef, slot: EvaluationSlot, records: readonly unknown[], schema: Schema<unknown> = ResultRecordSchema): Promise<void> {
  const target = guarded(store, file(store, r, slot, 'results.jsonl'));
  await fs.mkdir(path.dirname(target), { recursive: true });
  let text = '';
  for (const rec of records) text += `${JSON.stringify(schema.parse(rec))}\n`;
  await writeFileAtomic(target, text);
}

interface ResultsCacheEntry {
  ino: number;
  mtimeMs: number;
  size: number;
  /** The schema the records were checked with: another one reads the file again. */
  schema: Schema<unknown>;
  records: unknown[];
}
// Every page of the results grid reads the whole list (filters and sorts span all of it): parse
// each version of the file once. Keyed by path, checked against the file's identity on every read.
const resultsCache = new Map<string, ResultsCacheEntry>();
const RESULTS_CACHE_MAX = 16;

/** Every record of results.jsonl (empty when there is none), checked with `schema`. A line that does not parse is refused. */
export async function readResults(store: Workspace, r: EvaluationRef, slot?: EvaluationSlot): Promise<ResultRecord[]>;
export async function readResults<T>(store: Workspace, r: EvaluationRef, slot: EvaluationSlot, schema: Schema<T>): Promise<T[]>;
export async function readResults(store: Workspace, r: EvaluationRef, slot: EvaluationSlot = 'current', schema: Schema<unknown> = ResultRecordSchema): Promise<unknown[]> {
  const target = guarded(store, file(store, r, slot, 'results.jsonl'));
  let st: Awaited<ReturnType<typeof fs.stat>>;
  try {
    st = await fs.stat(target);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const hit = resultsCache.get(target);
  if (hit && hit.ino === st.ino && hit.mtimeMs === st.mtimeMs && hit.size === st.size && hit.schema === schema) return hit.records;
  const text = await fs.readFile(target, 'utf8');
  const records: unknown[] = [];
  let n = 0;
  for (const line of text.split('\n')) {
    n++;
    if (line === '') continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      throw new AppError('STORAGE_CORRUPT', `results.jsonl line ${n} is not JSON`);
    }
    const p = schema.safeParse(raw);
    if (!p.success) throw new AppError('STORAGE_CORRUPT', `results.jsonl line ${n}: ${p.error.issues[0]?.message ?? 'invalid'}`);
    records.push(p.data);
  }
  resultsCache.delete(target);
  resultsCache.set(target, { ino: st.ino, mtimeMs: st.mtimeMs, size: st.size, schema, records });
  while (resultsCache.size > RESULTS_CACHE_MAX) {
    const oldest = resultsCache.keys().next().value;
    if (oldest === undefined) break;
    resultsCache.delete(oldest);
  }
  return records;
}

/** Deletes a slot's folder (and what the staging one had written). */
export async function removeEvaluation(store: Workspace, r: EvaluationRef, slot: EvaluationSlot = 'current'): Promise<void> {
  await store.removeTree(evaluationDir(store, r, slot));
}

/** Removes the staging folder's result files (kept: evaluation.json), e.g. after a failure. */
export async function clearStagedResults(store: Workspace, r: EvaluationRef): Promise<void> {
  for (const name of ['aggregate.json', 'results.jsonl']) await fs.rm(guarded(store, file(store, r, 'staging', name)), { force: true });
}

/**
 * The staging folder becomes the evaluation: the current folder is renamed aside, the staging one
 * renamed into its place, the experiment folder fsynced, the old one deleted. A crash between the two
 * renames leaves no `evaluation/` and a finished staging folder, which the next `promote` completes.
 */
export async function promoteStaging(store: Workspace, r: EvaluationRef): Promise<void> {
  const current = guarded(store, evaluationDir(store, r, 'current'));
  const staging = guarded(store, evaluationDir(store, r, 'staging'));
  const parent = path.dirname(current);
  const aside = path.join(parent, `.evaluation-old.${randomBytes(6).toString('hex')}`);
  // Already promoted (e.g. by a concurrent reader that found the same finished staging folder).
  if (!(await store.exists(staging))) return;
  let moved = false;
  try {
    await fs.rename(current, aside);
    moved = true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await fs.rename(staging, current);
  await fsyncDir(parent);
  if (moved) await store.removeTree(aside);
}

/** Leftovers of an interrupted promote (`.evaluation-old.*`): removed. */
export async function removeAsideFolders(store: Workspace, r: EvaluationRef): Promise<void> {
  const parent = guarded(store, experimentDir(store, r.projectId, r.experimentId));
  let names: string[];
  try {
    names = await fs.readdir(parent);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  for (const n of names) if (/^\.evaluation-old\.[0-9a-f]{12}$/.test(n)) await store.removeTree(path.join(parent, n));
}
