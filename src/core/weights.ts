import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Settings } from '../config.ts';
import { AppError, notFound, validation } from '../kernel/errors.ts';
import type { JobView } from '../jobs/registry.ts';
import type { JobsService } from '../jobs/service.ts';
import { createThreadPool, type DedicatedPool } from '../jobs/pool.ts';
import { submitWorkerJob } from '../jobs/submit.ts';
import { listModels } from '../models/index.ts';
import { pinnedWeights, PINNED_WEIGHTS, sniffWeightsFormat, WEIGHTS_LIMITS, type PinnedWeights, type WeightsFormat } from '../models/weights/index.ts';
import type { WeightsFile, WeightsView } from '../schemas/weights.ts';
import { listExperimentIds, readExperiment } from '../storage/experiments.ts';
import {
  cachePaths,
  fileSize,
  listWeightsRecords,
  makeWeightsId,
  readWeightsRecord,
  removeWeights,
  updateWeightsRecord,
  writeWeightsRecord,
} from '../storage/weights.ts';
import type { Workspace } from '../storage/workspace.ts';
import { manualHint, type WeightsSource, type WeightsWorkerMessage, type WeightsWorkerPayload, type WeightsWorkerResult } from '../workers/weights.ts';

/**
 * Pretrained weights for the catalog's architectures (plan/weights.md): a file loaded by upload or
 * server path, or torchvision's published file downloaded. Each is a record (`loading` → `ready` |
 * `failed`) and a job whose worker reads the file with the restricted readers and stores the
 * converted tensors; an experiment names a `ready` record of its architecture (`model.weights_id`).
 */

export interface WeightsStarted {
  weights: WeightsView;
  job: JobView;
}

export interface DownloadOffer extends PinnedWeights {
  url: string;
  cached: boolean;
}

export interface WeightsService {
  /** The model's weights records, oldest first; NOT_FOUND for a name not in the catalog. */
  list(model: string): Promise<WeightsView[]>;
  /** Every model's records, oldest first (the Models page counts them per architecture). */
  listAll(): Promise<WeightsView[]>;
  get(model: string, id: string): Promise<WeightsView>;
  /** An upload already streamed to a temp file of the workspace (this service owns it from here). */
  loadUpload(model: string, upload: { tempPath: string; fileName: string }): Promise<WeightsStarted>;
  loadPath(model: string, filePath: string): Promise<WeightsStarted>;
  download(model: string, variant?: string): Promise<WeightsStarted>;
  /** The published files a model can download (empty when torchvision publishes none). */
  downloads(model: string): Promise<DownloadOffer[]>;
  remove(model: string, id: string): Promise<void>;
  /** The experiments that start from each weights record (what `remove` refuses on): weights id → their ids. */
  usage(): Promise<Map<string, { project_id: string; experiment_id: string }[]>>;
  /** For an experiment: the record, which must be `ready` and of this architecture (VALIDATION_ERROR otherwise). */
  requireReady(architecture: string, id: string): Promise<WeightsView>;
  /** At start-up: records a crash left `loading` become `failed` (their job was interrupted). */
  settleInterrupted(): Promise<void>;
  close(): Promise<void>;
}

export interface WeightsDeps {
  settings: Pick<Settings, 'weightsBaseUrl' | 'weightsTimeoutMs'>;
  store: Workspace;
  jobs: JobsService;
  /** The published files per model (tests pin their own); PINNED_WEIGHTS by default. */
  pinned?: Readonly<Record<string, readonly PinnedWeights[]>>;
}

const view = ({ schema_version: _v, ...rest }: WeightsFile): WeightsView => rest;

const WORKER_FILE = new URL('../workers/weights.ts', import.meta.url).href;

function requireCatalog(model: string): void {
  if (!listModels().includes(model)) throw notFound('catalog model', model);
}

function safeFileName(name: string): string | null {
  const base = path.basename(name.replace(/\\/g, '/')).replace(/[\u0000-\u001f]/g, '').slice(0, 255);
  return base.length ? base : null;
}

/** Whether the host answers at all: a network error or no answer in time means offline. */
async function probe(url: string, timeoutMs: number): Promise<'ok' | 'offline' | { status: number }> {
  try {
    const res = await fetch(url, { method: 'HEAD', redirect: 'follow', signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel().catch(() => undefined);
    return res.ok ? 'ok' : { status: res.status };
  } catch {
    return 'offline';
  }
}

export function createWeightsService({ settings, store, jobs, pinned = PINNED_WEIGHTS }: WeightsDeps): WeightsService {
  let pool: DedicatedPool<WeightsWorkerPayload, WeightsWorkerMessage, WeightsWorkerResult> | null = null;
  const poolOf = () => (pool ??= createThreadPool(WORKER_FILE, { maxThreads: 1, idleTimeoutMs: 30_000, maxOldGenerationSizeMb: 8192, abortGraceMs: 10_000 }));

  async function start(rec: WeightsFile, source: WeightsSource, onDone?: () => Promise<void>): Promise<WeightsStarted> {
    await writeWeightsRecord(store, rec);
    const payload: WeightsWorkerPayload = { workspace: store.root, weights_id: rec.id, model: rec.model, source };
    let job: JobView;
    try {
      job = await submitWorkerJob<WeightsWorkerMessage, Extract<WeightsWorkerResult, { ok: true }>>(jobs, {
        kind: rec.source === 'download' ? 'weights_download' : 'weights_load',
        work: ({ signal, onMessage }) => poolOf().run(payload, { signal, onMessage }) as never,
        onMessage(m, handle) {
          if (m.type === 'progress') handle.progress(m.fraction, m.detail);
          else if (m.type === 'log') handle.log(m.message);
        },
        async onSettled(outcome) {
          await onDone?.().catch(() => undefined);
          await updateWeightsRecord(store, rec.id, (w) => {
            if (outcome.status === 'succeeded') {
              const { ok: _ok, ...r } = outcome.result;
              return { ...w, ...r, status: 'ready', error: null };
            }
            return { ...w, status: 'failed', error: outcome.error };
          }).catch(() => undefined); // deleted meanwhile
        },
      });
    } catch (e) {
      await removeWeights(store, rec.id).catch(() => undefined);
      await onDone?.().catch(() => undefined);
      throw e;
    }
    const withJob = await updateWeightsRecord(store, rec.id, (w) => ({ ...w, job_id: job.id })).catch(() => rec);
    return { weights: view(withJob), job };
  }

  function record(model: string, source: WeightsFile['source'], format: WeightsFormat | null, fields: Partial<WeightsFile>): WeightsFile {
    const now = new Date().toISOString();
    return {
      schema_version: 1,
      id: makeWeightsId(),
      model,
      source,
      format,
      status: 'loading',
      file_name: null,
      source_path: null,
      url: null,
      sha256: null,
      bytes: null,
      tensors_loaded: 0,
      tensors_skipped: [],
      tensors_missing: [],
      num_classes: null,
      job_id: null,
      error: null,
      created_at: now,
      updated_at: now,
      ...fields,
    };
  }

  async function usage(): Promise<Map<string, { project_id: string; experiment_id: string }[]>> {
    const out = new Map<string, { project_id: string; experiment_id: string }[]>();
    for (const projectId of await store.listDirs(store.projectsDir())) {
      for (const experimentId of await listExperimentIds(store, projectId).catch(() => [])) {
        const exp = await readExperiment(store, projectId, experimentId).catch(() => null);
        const id = exp?.model.weights_id;
        if (id !== undefined) out.set(id, [...(out.get(id) ?? []), { project_id: projectId, experiment_id: experimentId }]);
      }
    }
    return out;
  }

  async function experimentsUsing(id: string): Promise<string[]> {
    return ((await usage()).get(id) ?? []).map((u) => `${u.project_id}/${u.experiment_id}`);
  }

  function offer(model: string, p: PinnedWeights): { url: string; file_name: string } {
    return { url: new URL(p.file, settings.weightsBaseUrl).href, file_name: p.file };
  }

  return {
    async list(model) {
      requireCatalog(model);
      return (await listWeightsRecords(store, model)).map(view);
    },

    async listAll() {
      return (await listWeightsRecords(store)).map(view);
    },

    async get(model, id) {
      requireCatalog(model);
      const rec = await readWeightsRecord(store, id);
      if (rec.model !== model) throw notFound('weights', id);
      return view(rec);
    },

    async loadUpload(model, upload) {
      try {
        requireCatalog(model);
        const format = sniffWeightsFormat(new Uint8Array(await store.readHead(upload.tempPath, 128, 'upload')));
        const rec = record(model, 'file', format, { file_name: safeFileName(upload.fileName) });
        return await start(rec, { kind: 'temp', path: upload.tempPath }, () => store.removeTemp(upload.tempPath));
      } catch (e) {
        await store.removeTemp(upload.tempPath).catch(() => undefined);
        throw e;
      }
    },

    async loadPath(model, filePath) {
      requireCatalog(model);
      if (!path.isAbsolute(filePath)) throw validation('path: must be an absolute path on the server');
      let real: string;
      let head: Buffer;
      try {
        real = await fs.realpath(filePath);
        const st = await fs.stat(real);
        if (!st.isFile()) throw validation(`path: not a file: ${filePath}`);
        if (st.size > WEIGHTS_LIMITS.maxFileBytes) throw new AppError('PAYLOAD_TOO_LARGE', `the weights file is larger than ${WEIGHTS_LIMITS.maxFileBytes} bytes`);
        const fh = await fs.open(real, 'r');
        try {
          const b = Buffer.alloc(128);
          const { bytesRead } = await fh.read(b, 0, 128, 0);
          head = b.subarray(0, bytesRead);
        } finally {
          await fh.close();
        }
      } catch (e) {
        if (e instanceof AppError) throw e;
        throw validation(`path: no such file: ${filePath}`);
      }
      const format = sniffWeightsFormat(new Uint8Array(head));
      return start(record(model, 'file', format, { file_name: safeFileName(real), source_path: real }), { kind: 'path', path: real });
    },

    async download(model, variant) {
      requireCatalog(model);
      const p = pinnedWeights(model, variant, pinned);
      if (!p) {
        const known = (pinned[model] ?? []).map((x) => x.variant);
        throw validation(known.length ? `variant: '${variant}' is not published for ${model} (one of: ${known.join(', ')})` : `torchvision publishes no weights for ${model}: load a file instead`);
      }
      const o = offer(model, p);
      const cached = (await fileSize(cachePaths(store, p.file).done)) !== null;
      if (!cached) {
        const answer = await probe(o.url, settings.weightsTimeoutMs);
        const hint = manualHint({ ...o, sha256: p.sha256, sha256_prefix: p.sha256_prefix }).replace('<name>', model);
        if (answer === 'offline') throw new AppError('OFFLINE', `${new URL(o.url).host} cannot be reached from this machine: ${hint}`);
        if (answer !== 'ok') throw new AppError('DOWNLOAD_FAILED', `${o.url} answered HTTP ${answer.status}: ${hint}`);
      }
      const rec = record(model, 'download', 'torchvision_pth', { file_name: p.file, url: o.url });
      return start(rec, { kind: 'download', url: o.url, file_name: p.file, sha256: p.sha256, sha256_prefix: p.sha256_prefix, idle_timeout_ms: settings.weightsTimeoutMs });
    },

    async downloads(model) {
      requireCatalog(model);
      const out: DownloadOffer[] = [];
      for (const p of pinned[model] ?? []) {
        out.push({ ...p, url: offer(model, p).url, cached: (await fileSize(cachePaths(store, p.file).done)) !== null });
      }
      return out;
    },

    async remove(model, id) {
      const rec = await this.get(model, id);
      if (rec.status === 'loading' && rec.job_id) {
        await jobs.cancel(rec.job_id).catch(() => undefined);
        await jobs.wait(rec.job_id).catch(() => undefined);
      }
      const users = await experimentsUsing(id);
      if (users.length > 0) {
        throw new AppError('CONFLICT', `the weights are used by ${users.length} experiment(s) (${users.slice(0, 10).join(', ')}): change or delete them first`);
      }
      await removeWeights(store, id);
    },

    usage,

    async requireReady(architecture, id) {
      let rec: WeightsFile;
      try {
        rec = await readWeightsRecord(store, id);
      } catch {
        throw validation(`model.weights_id: no weights '${id}' (load some under /api/models/${architecture}/weights)`);
      }
      if (rec.model !== architecture) throw validation(`model.weights_id: the weights '${id}' are for ${rec.model}, not ${architecture}`);
      if (rec.status !== 'ready') throw validation(`model.weights_id: the weights '${id}' are ${rec.status}${rec.error ? ` (${rec.error.message})` : ''}`);
      return view(rec);
    },

    async settleInterrupted() {
      for (const rec of await listWeightsRecords(store)) {
        if (rec.status !== 'loading') continue;
        await updateWeightsRecord(store, rec.id, (w) => ({ ...w, status: 'failed', error: { code: 'INTERRUPTED', message: 'the studio stopped while these weights were loading' } })).catch(() => undefined);
      }
    },

    async close() {
      await pool?.destroy();
      pool = null;
    },
  };
}
