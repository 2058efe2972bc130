import { promises as fs } from 'node:fs';
import path from 'node:path';
import { customAlphabet } from 'nanoid';
import { ID_ALPHABET, ID_LENGTH } from '../schemas/common.ts';
import { WeightsDoc, WeightsFileSchema, WeightsIdSchema, type WeightsFile } from '../schemas/weights.ts';
import { AppError, notFound } from '../kernel/errors.ts';
import { writeFileAtomic } from './atomic.ts';
import type { Workspace } from './workspace.ts';

/**
 * Pretrained weights (plan/weights.md): `models/weights/<wt-id>/weights.json` (the record) and
 * `tensors.ckpt` (the converted tensors, float32 under the catalog's names, in the checkpoint
 * format: src/models/checkpoint.ts, checksummed). The record is written first (`loading`), the
 * tensors then the record (`ready`) last, each atomically: a crash leaves a record that says
 * `loading` (settled as `failed` at start-up) and never a `ready` one without its tensors.
 * Downloads resume from `models/weights/cache/<file>.part`; a complete file sits beside it.
 */

const newWeightsId = customAlphabet(ID_ALPHABET, ID_LENGTH);
export const makeWeightsId = () => `wt-${newWeightsId()}`;

export function weightsRoot(store: Workspace): string {
  return path.join(store.root, 'models', 'weights');
}

export function weightsDir(store: Workspace, id: string): string {
  if (!WeightsIdSchema.safeParse(id).success) throw notFound('weights', id);
  return path.join(weightsRoot(store), id);
}

const recordFile = (store: Workspace, id: string) => path.join(weightsDir(store, id), 'weights.json');
const tensorsFile = (store: Workspace, id: string) => path.join(weightsDir(store, id), 'tensors.ckpt');

export async function writeWeightsRecord(store: Workspace, rec: WeightsFile): Promise<WeightsFile> {
  return store.write(WeightsDoc, recordFile(store, rec.id), WeightsFileSchema.parse(rec));
}

export async function readWeightsRecord(store: Workspace, id: string): Promise<WeightsFile> {
  return store.get(WeightsDoc, recordFile(store, id), 'weights', id);
}

/** Read-modify-write of a record under its lock; NOT_FOUND once it was deleted. */
export async function updateWeightsRecord(store: Workspace, id: string, fn: (w: WeightsFile) => WeightsFile): Promise<WeightsFile> {
  return store.modify(WeightsDoc, recordFile(store, id), 'weights', id, (w) => ({ ...fn(w), updated_at: new Date().toISOString() }));
}

/** Every weights record (of one model, when given), oldest first; unreadable ones are skipped. */
export async function listWeightsRecords(store: Workspace, model?: string): Promise<WeightsFile[]> {
  const out: WeightsFile[] = [];
  for (const id of await store.listDirs(weightsRoot(store))) {
    if (!WeightsIdSchema.safeParse(id).success) continue;
    const rec = await store.read(WeightsDoc, recordFile(store, id)).catch(() => null);
    if (rec && (model === undefined || rec.model === model)) out.push(rec);
  }
  return out.sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
}

export async function writeWeightsTensors(store: Workspace, id: string, bytes: Uint8Array): Promise<void> {
  const dir = weightsDir(store, id);
  await fs.mkdir(dir, { recursive: true });
  await writeFileAtomic(tensorsFile(store, id), bytes);
}

export async function readWeightsTensors(store: Workspace, id: string): Promise<Uint8Array> {
  return new Uint8Array(await store.readFile(tensorsFile(store, id), 'weights'));
}

export async function removeWeights(store: Workspace, id: string): Promise<void> {
  await store.removeTree(weightsDir(store, id));
}

// ── the download cache ─────────────────────────────────────────────────────────────────────
export function downloadCacheDir(store: Workspace): string {
  return path.join(weightsRoot(store), 'cache');
}

/** `<cache>/<file>` (complete) and `<file>.part` (resumable); the name is a pinned file name, checked again here. */
export function cachePaths(store: Workspace, fileName: string): { done: string; part: string } {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$/.test(fileName) || fileName.includes('..')) throw new AppError('PATH_OUTSIDE_ROOT', `bad cache file name: ${fileName}`);
  const dir = downloadCacheDir(store);
  return { done: path.join(dir, fileName), part: path.join(dir, `${fileName}.part`) };
}

export async function fileSize(file: string): Promise<number | null> {
  try {
    return (await fs.stat(file)).size;
  } catch {
    return null;
  }
}

/** Appends a chunk to a `.part` file of the cache (created when missing). */
export async function openCacheAppend(store: Workspace, fileName: string, truncate: boolean): Promise<fs.FileHandle> {
  const { part } = cachePaths(store, fileName);
  await fs.mkdir(path.dirname(part), { recursive: true });
  return fs.open(part, truncate ? 'w' : 'a');
}

/** The finished `.part` becomes the cached file (one rename). */
export async function finishCacheFile(store: Workspace, fileName: string): Promise<string> {
  const { done, part } = cachePaths(store, fileName);
  await fs.rename(part, done);
  return done;
}

export async function removeCacheFile(store: Workspace, fileName: string): Promise<void> {
  const { done, part } = cachePaths(store, fileName);
  await fs.rm(done, { force: true });
  await fs.rm(part, { force: true });
}
