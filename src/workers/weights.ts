import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { AppError } from '../kernel/errors.ts';
import type { WorkerTask } from '../jobs/pool.ts';
import { createModel, modelMeta } from '../models/index.ts';
import { headClassesOf, matchWeights, readWeightsFile, WEIGHTS_LIMITS, type SkippedTensor, type WeightsFormat } from '../models/weights/index.ts';
import { f32, type TensorData } from '../onnx/ir.ts';
import { cachePaths, fileSize, finishCacheFile, openCacheAppend, removeCacheFile, writeWeightsTensors } from '../storage/weights.ts';
import type { Workspace } from '../storage/workspace.ts';
import { encodeCheckpoint } from '../models/checkpoint.ts';
import { cancelledFailure, runWorkerTask, type WorkerFailure, type WorkerLog, type WorkerScope } from './worker-task.ts';

/**
 * Thread entry point of a weights job: gets the file's bytes (an upload's temp file, a server
 * path, or a download into the workspace's resumable cache), reads them with the restricted
 * readers, matches them to the catalog model and writes the converted tensors through storage.
 * The record itself is the main thread's to update (src/core/weights.ts).
 */

export type WeightsSource =
  | { kind: 'temp'; path: string }
  | { kind: 'path'; path: string }
  | { kind: 'download'; url: string; file_name: string; sha256: string | null; sha256_prefix: string; idle_timeout_ms: number };

export interface WeightsWorkerPayload {
  workspace: string;
  weights_id: string;
  model: string;
  source: WeightsSource;
}

export type WeightsWorkerMessage = { type: 'progress'; fraction: number; detail: Record<string, number> } | WorkerLog;

export interface WeightsLoaded {
  format: WeightsFormat;
  sha256: string;
  bytes: number;
  tensors_loaded: number;
  tensors_skipped: SkippedTensor[];
  tensors_missing: string[];
  num_classes: number | null;
}

export type WeightsWorkerResult = ({ ok: true } & WeightsLoaded) | WorkerFailure;

const PROGRESS_EVERY_MS = 200;

export default async function weightsWorker(task: WorkerTask<WeightsWorkerPayload>): Promise<WeightsWorkerResult> {
  const { payload } = task;
  return runWorkerTask(task, { cancelled: () => cancelledFailure() }, async ({ signal, post, log, store }: WorkerScope<WeightsWorkerMessage>) => {
    const s = payload.source;
    const { bytes, sha256 } =
      s.kind === 'download'
        ? await download(store, s, signal, (done, total) => post({ type: 'progress', fraction: total ? 0.9 * (done / total) : 0, detail: { bytes_done: done, ...(total ? { bytes_total: total } : {}) } }), log)
        : hashed(await readSource(store, s));
    signal.throwIfAborted();
    const base = s.kind === 'download' ? 0.9 : 0;
    post({ type: 'progress', fraction: base + 0.02, detail: { bytes_done: bytes.length, bytes_total: bytes.length } });
    if (s.kind === 'download') checkHash(s, sha256);
    const loaded = convert(payload.model, bytes, sha256);
    signal.throwIfAborted();
    post({ type: 'progress', fraction: base + 0.08, detail: { bytes_done: bytes.length, bytes_total: bytes.length, tensors: loaded.result.tensors_loaded } });
    await writeWeightsTensors(store, payload.weights_id, encodeCheckpoint({ params: loaded.values, optimizerState: {}, bnStats: {}, step: 0, rng: [], metadata: { model: payload.model, weights_id: payload.weights_id, sha256 } }));
    log(`loaded ${loaded.result.tensors_loaded} tensors into ${payload.model}` + (loaded.result.tensors_skipped.length ? `; skipped ${loaded.result.tensors_skipped.length}` : ''));
    return { ok: true as const, ...loaded.result };
  });
}

async function readSource(store: Workspace, s: Extract<WeightsSource, { kind: 'temp' | 'path' }>): Promise<Uint8Array> {
  if (s.kind === 'temp') return new Uint8Array(await store.readFile(s.path, 'upload'));
  let st;
  try {
    st = await fs.stat(s.path);
  } catch {
    throw new AppError('VALIDATION_ERROR', `path: no such file: ${s.path}`);
  }
  if (!st.isFile()) throw new AppError('VALIDATION_ERROR', `path: not a file: ${s.path}`);
  if (st.size > WEIGHTS_LIMITS.maxFileBytes) throw new AppError('PAYLOAD_TOO_LARGE', `the weights file is larger than ${WEIGHTS_LIMITS.maxFileBytes} bytes`);
  return new Uint8Array(await fs.readFile(s.path));
}

/** A file's bytes and their sha256 (hex). */
function hashed(bytes: Uint8Array): { bytes: Uint8Array; sha256: string } {
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Whether a sha256 is the pinned file's: the full hash where known, else its published prefix. */
function matchesPin(s: Extract<WeightsSource, { kind: 'download' }>, sha256: string): boolean {
  return s.sha256 ? sha256 === s.sha256 : sha256.startsWith(s.sha256_prefix);
}

function checkHash(s: Extract<WeightsSource, { kind: 'download' }>, sha256: string): void {
  if (!matchesPin(s, sha256)) {
    throw new AppError('HASH_MISMATCH', `${s.file_name}: sha256 ${sha256} does not match the pinned ${s.sha256 ?? `prefix ${s.sha256_prefix}`}; the download was discarded`);
  }
}

/** The file's tensors matched to the model (its head sized as the file's, so an ImageNet head is kept). */
function convert(model: string, bytes: Uint8Array, sha256: string): { values: Record<string, TensorData>; result: WeightsLoaded } {
  const r = readWeightsFile(bytes);
  if (r.format === 'studio_ckpt' && r.model && r.model !== model) {
    throw new AppError('BAD_INPUT', `the checkpoint is of a run of '${r.model}', not '${model}'`);
  }
  const family = modelMeta(model).family;
  let spec = createModel(model, { numClasses: 1000 });
  const classes = headClassesOf(spec, family, r.tensors);
  if (classes !== null && classes !== 1000 && classes <= 100_000) spec = createModel(model, { numClasses: classes });
  const m = matchWeights(spec, family, r.tensors);
  const head = new Set(spec.head);
  const body = [...spec.params, ...spec.bnStats].filter((n) => !head.has(n));
  const bodyLoaded = body.filter((n) => m.values.has(n)).length;
  if (bodyLoaded === 0 || bodyLoaded < body.length / 2) {
    const first = m.skipped.slice(0, 3).map((s) => `${s.name}: ${s.reason}`).join('; ');
    throw new AppError('BAD_INPUT', `the file's tensors do not fit ${model}: ${bodyLoaded} of its ${body.length} backbone tensors found${first ? ` (${first})` : ''}`);
  }
  const values: Record<string, TensorData> = {};
  for (const [name, t] of m.values) values[name] = f32(t.dims, t.data);
  return {
    values,
    result: {
      format: r.format,
      sha256,
      bytes: bytes.length,
      tensors_loaded: m.values.size,
      tensors_skipped: [...r.skipped, ...m.skipped],
      tensors_missing: m.missing,
      num_classes: classes,
    },
  };
}

/**
 * The pinned file into the workspace's cache, resuming a `.part` left by an earlier try (HTTP
 * Range), then its bytes. A complete cached file is used as it is (no network).
 */
async function download(
  store: Workspace,
  s: Extract<WeightsSource, { kind: 'download' }>,
  signal: AbortSignal,
  progress: (done: number, total: number | null) => void,
  log: (m: string) => void,
): Promise<{ bytes: Uint8Array; sha256: string }> {
  const { done, part } = cachePaths(store, s.file_name);
  if ((await fileSize(done)) !== null) {
    const cached = hashed(new Uint8Array(await store.readFile(done, 'weights')));
    if (matchesPin(s, cached.sha256)) {
      log(`using the cached ${s.file_name}`);
      return cached;
    }
    log(`the cached ${s.file_name} does not match its sha256: downloading it again`);
    await removeCacheFile(store, s.file_name);
  }
  let have = (await fileSize(part)) ?? 0;
  // A stalled server: no byte for idle_timeout_ms aborts the request (the part is kept).
  const idle = new AbortController();
  let timer = setTimeout(() => idle.abort(), s.idle_timeout_ms);
  const kick = () => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(), s.idle_timeout_ms);
  };
  const both = AbortSignal.any([signal, idle.signal]);
  let fh: Awaited<ReturnType<typeof openCacheAppend>> | null = null;
  try {
    let res: Response;
    try {
      res = await fetch(s.url, { signal: both, redirect: 'follow', headers: have > 0 ? { Range: `bytes=${have}-` } : {} });
    } catch (e) {
      if (signal.aborted) throw e;
      throw new AppError(idle.signal.aborted ? 'DOWNLOAD_FAILED' : 'OFFLINE', `${s.url} cannot be reached (${idle.signal.aborted ? 'no answer' : describe(e)}): ${manualHint(s)}`);
    }
    let total: number | null = null;
    const length = Number(res.headers.get('content-length') ?? NaN);
    if (res.status === 206 && have > 0 && (res.headers.get('content-range') ?? '').startsWith(`bytes ${have}-`)) {
      log(`resuming ${s.file_name} at ${have} bytes`);
      total = Number.isFinite(length) ? have + length : null;
    } else if (res.status === 200) {
      if (have > 0) log(`the server does not resume: downloading ${s.file_name} from the start`);
      have = 0;
      total = Number.isFinite(length) ? length : null;
    } else if (res.status === 416 && have > 0) {
      // Our part is no prefix the server knows (it changed, or the part is whole): start over next time.
      await removeCacheFile(store, s.file_name);
      throw new AppError('DOWNLOAD_FAILED', `${s.url}: the server refused to resume at ${have} bytes; the partial file was dropped, try again`);
    } else {
      throw new AppError('DOWNLOAD_FAILED', `${s.url} answered HTTP ${res.status}`);
    }
    if (total !== null && total > WEIGHTS_LIMITS.maxFileBytes) throw new AppError('PAYLOAD_TOO_LARGE', `${s.file_name} is ${total} bytes, more than ${WEIGHTS_LIMITS.maxFileBytes}`);
    fh = await openCacheAppend(store, s.file_name, have === 0);
    let last = 0;
    progress(have, total);
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        kick();
        await fh.write(chunk);
        have += chunk.length;
        if (have > WEIGHTS_LIMITS.maxFileBytes) throw new AppError('PAYLOAD_TOO_LARGE', `${s.file_name} is larger than ${WEIGHTS_LIMITS.maxFileBytes} bytes`);
        const now = Date.now();
        if (now - last >= PROGRESS_EVERY_MS) {
          last = now;
          progress(have, total);
        }
      }
    } catch (e) {
      if (signal.aborted || e instanceof AppError) throw e;
      throw new AppError('DOWNLOAD_FAILED', `${s.file_name}: the transfer broke after ${have} bytes (${idle.signal.aborted ? 'no data for a while' : describe(e)}); what arrived is kept, try again to resume`);
    }
    await fh.close();
    fh = null;
    if (total !== null && have < total) throw new AppError('DOWNLOAD_FAILED', `${s.file_name}: the server sent ${have} of ${total} bytes; what arrived is kept, try again to resume`);
    progress(have, total ?? have);
    const file = await finishCacheFile(store, s.file_name);
    const got = hashed(new Uint8Array(await store.readFile(file, 'weights')));
    // A file that is whole but wrong is dropped, so the next try downloads it afresh.
    if (!matchesPin(s, got.sha256)) await removeCacheFile(store, s.file_name);
    return got;
  } finally {
    clearTimeout(timer);
    await fh?.close().catch(() => undefined);
  }
}

function describe(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } } | null)?.cause;
  return cause?.code ?? cause?.message ?? (e instanceof Error ? e.message : String(e));
}

export function manualHint(s: { url: string; file_name: string; sha256: string | null; sha256_prefix: string }): string {
  return `download ${s.url} on a machine that is online (sha256 ${s.sha256 ?? `starting ${s.sha256_prefix}`}), copy ${s.file_name} here, then load it: the Models page's Weights panel ("Server path" or "Upload"), or POST /api/models/<name>/weights with {"path": "/abs/path/${s.file_name}"}`;
}
