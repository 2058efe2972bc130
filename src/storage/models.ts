import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BackboneIdSchema } from '../schemas/common.ts';
import { ModelDoc, ModelFileSchema, type ModelFile } from '../schemas/model.ts';
import { notFound } from '../kernel/errors.ts';
import { writeFileAtomic } from './atomic.ts';
import type { Workspace } from './workspace.ts';

/**
 * Imported ONNX backbones: `models/<bb-id>/model.onnx` (the file as given) and `model.json` (what
 * the import found in it). The folder is written under a temp name and renamed into place, so a
 * crash never leaves a model.json without its model.onnx.
 */

export function modelsDir(store: Workspace): string {
  return path.join(store.root, 'models');
}

export function modelDir(store: Workspace, id: string): string {
  if (!BackboneIdSchema.safeParse(id).success) throw notFound('model', id);
  return path.join(modelsDir(store), id);
}

export async function readModelRecord(store: Workspace, id: string): Promise<ModelFile> {
  return store.get(ModelDoc, path.join(modelDir(store, id), 'model.json'), 'model', id);
}

/** Imported models, oldest first; unreadable folders are skipped. */
export async function listModelRecords(store: Workspace): Promise<ModelFile[]> {
  const out: ModelFile[] = [];
  for (const id of await store.listDirs(modelsDir(store))) {
    if (!BackboneIdSchema.safeParse(id).success) continue;
    const rec = await store.read(ModelDoc, path.join(modelDir(store, id), 'model.json')).catch(() => null);
    if (rec) out.push(rec);
  }
  return out.sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
}

export async function readModelBytes(store: Workspace, id: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await fs.readFile(path.join(modelDir(store, id), 'model.onnx')));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw notFound('model', id);
    throw e;
  }
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Stores a new imported model (bytes and record) as one folder rename. */
export async function writeModel(store: Workspace, record: Omit<ModelFile, 'schema_version'>, bytes: Uint8Array): Promise<ModelFile> {
  const full: ModelFile = ModelFileSchema.parse({ schema_version: 1, ...record });
  const scratch = await store.tempDir('model');
  try {
    await writeFileAtomic(path.join(scratch, 'model.onnx'), bytes);
    await store.write(ModelDoc, path.join(scratch, 'model.json'), full);
    await fs.mkdir(modelsDir(store), { recursive: true });
    await fs.rename(scratch, modelDir(store, full.id));
  } catch (e) {
    await store.removeTemp(scratch).catch(() => undefined);
    throw e;
  }
  return full;
}

export async function removeModel(store: Workspace, id: string): Promise<void> {
  await store.removeTree(modelDir(store, id));
}
