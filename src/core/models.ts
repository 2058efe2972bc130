import { promises as fs } from 'node:fs';
import path from 'node:path';
import { countParams, createModel, importOnnxBytes, listModels, modelMeta } from '../models/index.ts';
import { DisplayNameSchema } from '../schemas/common.ts';
import type { ModelFile } from '../schemas/model.ts';
import {
  listModelRecords,
  readModelBytes,
  readModelRecord,
  removeModel,
  sha256Hex,
  writeModel,
} from '../storage/models.ts';
import { listExperimentIds, readExperiment } from '../storage/experiments.ts';
import { newId } from '../storage/ids.ts';
import type { Workspace } from '../storage/workspace.ts';
import { AppError, badInput, conflict, validation } from '../kernel/errors.ts';

/**
 * The "Models" list: the catalog's architectures and the ONNX backbones imported into this
 * workspace. An import is checked by running the backbone import itself (cut the classifier,
 * attach a head): a file that would fail in a run is refused at the door, with the reason.
 */

type Triple = [number, number, number];

export interface ModelEntry {
  name: string;
  kind: 'catalog' | 'imported';
  /** The backbone id (`bb-…`) of an imported model; absent for the catalog. */
  id?: string;
  /** Catalog: with a 1000-class head (torchvision's figure); imported: the backbone without its head. */
  param_count: number;
  input_size: number;
  mean: Triple;
  std: Triple;
  /** Blocks before the head (what `trainable: {last_blocks: K}` counts, the head being one more). */
  block_count?: number;
  description?: string;
  family?: string;
  created_at?: string;
}

export interface ImportModelRequest {
  path: string;
  name: string;
}

export interface ModelsService {
  list(): Promise<ModelEntry[]>;
  /** An imported model's entry; NOT_FOUND when there is none. */
  get(id: string): Promise<ModelEntry>;
  /** Catalog name → its entry; NOT_FOUND for a name that is not in the catalog. */
  catalogEntry(name: string): ModelEntry;
  importFromPath(req: ImportModelRequest): Promise<ModelEntry>;
  importUpload(data: Uint8Array, name: string): Promise<ModelEntry>;
  remove(id: string): Promise<void>;
  /** The stored .onnx bytes of an imported model (the training worker reads them itself). */
  bytes(id: string): Promise<Uint8Array>;
}

export const MAX_MODEL_BYTES = 1024 * 1024 * 1024;

const IMAGENET_MEAN: Triple = [0.485, 0.456, 0.406];
const IMAGENET_STD: Triple = [0.229, 0.224, 0.225];

/** Building a catalog model to count its parameters takes seconds for the big ones: done once, lazily. */
const catalogCounts = new Map<string, number>();

function catalogParamCount(name: string): number {
  const meta = modelMeta(name);
  if (meta.torchvisionParams1000 !== undefined) return meta.torchvisionParams1000;
  let n = catalogCounts.get(name);
  if (n === undefined) {
    n = countParams(createModel(name, { numClasses: 1000 }));
    catalogCounts.set(name, n);
  }
  return n;
}

const catalogBlocks = new Map<string, number>();

/**
 * A catalog model's blocks before its head (what `trainable: {last_blocks}` counts), built once
 * lazily: only an experiment that asks for the last K blocks needs it.
 */
export function catalogBlockCount(name: string): number {
  let n = catalogBlocks.get(name);
  if (n === undefined) {
    n = Math.max(0, createModel(name, { numClasses: 2 }).blocks.length - 1);
    catalogBlocks.set(name, n);
  }
  return n;
}

function catalogEntry(name: string): ModelEntry {
  const meta = modelMeta(name);
  return {
    name,
    kind: 'catalog',
    param_count: catalogParamCount(name),
    input_size: meta.defaultInputSize,
    mean: [...IMAGENET_MEAN],
    std: [...IMAGENET_STD],
    description: meta.description,
    family: meta.family,
  };
}

function importedEntry(rec: ModelFile): ModelEntry {
  return {
    name: rec.name,
    kind: 'imported',
    id: rec.id,
    param_count: rec.param_count,
    input_size: rec.input_size,
    mean: [...rec.mean],
    std: [...rec.std],
    block_count: rec.block_count,
    created_at: rec.created_at,
  };
}

export function createModelsService(store: Workspace): ModelsService {
  /** Experiments (as `proj-…/exp-…`) whose settings name the backbone: deleting it would break their next run. */
  async function experimentsUsing(id: string): Promise<string[]> {
    const out: string[] = [];
    for (const projectId of await store.listDirs(store.projectsDir())) {
      for (const experimentId of await listExperimentIds(store, projectId).catch(() => [])) {
        const exp = await readExperiment(store, projectId, experimentId).catch(() => null);
        if (exp?.model.backbone_id === id) out.push(`${projectId}/${experimentId}`);
      }
    }
    return out;
  }

  async function store_(bytes: Uint8Array, name: string, source: ModelFile['source'], sourcePath: string | null): Promise<ModelEntry> {
    const parsedName = DisplayNameSchema.safeParse(name);
    if (!parsedName.success) throw validation(`invalid name: ${parsedName.error.issues[0]?.message ?? 'bad name'}`);
    if (bytes.length === 0) throw badInput('the model file is empty');
    let spec;
    try {
      spec = importOnnxBytes(bytes, { numClasses: 2, name: parsedName.data });
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      throw new AppError(e instanceof AppError && e.code === 'UNSUPPORTED_OP' ? 'UNSUPPORTED_OP' : 'BAD_INPUT', `not a usable ONNX backbone: ${msg}`);
    }
    const head = new Set(spec.head);
    const rec = await writeModel(
      store,
      {
        id: newId('bb'),
        name: parsedName.data,
        input_size: spec.inputSize,
        mean: [...spec.mean],
        std: [...spec.std],
        param_count: countParams(spec, spec.params.filter((p) => !head.has(p))),
        block_count: Math.max(0, spec.blocks.length - 1),
        source,
        source_path: sourcePath,
        sha256: sha256Hex(bytes),
        bytes: bytes.length,
        created_at: new Date().toISOString(),
      },
      bytes,
    );
    return importedEntry(rec);
  }

  return {
    async list() {
      const catalog = listModels().map(catalogEntry);
      const imported = (await listModelRecords(store)).map(importedEntry);
      return [...catalog, ...imported];
    },
    async get(id) {
      return importedEntry(await readModelRecord(store, id));
    },
    catalogEntry,
    async importFromPath(req) {
      if (!path.isAbsolute(req.path)) throw validation('path: must be an absolute path on the server');
      let real: string;
      try {
        real = await fs.realpath(req.path);
        const st = await fs.stat(real);
        if (!st.isFile()) throw validation(`path: not a file: ${req.path}`);
        if (st.size > MAX_MODEL_BYTES) throw new AppError('PAYLOAD_TOO_LARGE', `the model file is larger than ${MAX_MODEL_BYTES} bytes`);
      } catch (e) {
        if (e instanceof AppError) throw e;
        throw validation(`path: no such file: ${req.path}`);
      }
      return store_(new Uint8Array(await fs.readFile(real)), req.name, 'path', real);
    },
    async importUpload(data, name) {
      if (data.length > MAX_MODEL_BYTES) throw new AppError('PAYLOAD_TOO_LARGE', `the model file is larger than ${MAX_MODEL_BYTES} bytes`);
      return store_(data, name, 'upload', null);
    },
    async remove(id) {
      await readModelRecord(store, id);
      const users = await experimentsUsing(id);
      if (users.length > 0) {
        const shown = users.slice(0, 10).join(', ');
        throw conflict(`the model is used by ${users.length} experiment(s) (${shown}${users.length > 10 ? ', …' : ''}): change or delete them first`);
      }
      await removeModel(store, id);
    },
    bytes: (id) => readModelBytes(store, id),
  };
}
