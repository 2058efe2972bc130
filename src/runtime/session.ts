import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { AppError } from '../kernel/errors.ts';
import { encodeModel } from '../onnx/codec.ts';
import type { DataType, Dim, Model, TensorData, TypedArray, ValueInfo } from '../onnx/ir.ts';

/**
 * The one place that imports onnxruntime-node. A Session wraps an ort.InferenceSession with
 * plain TensorData in and out (`run`), and a low-copy path for training loops (`runHandles`):
 * outputs stay as opaque RuntimeTensor handles that are fed straight back as the next step's
 * inputs (parameters, optimizer state) without converting, and outputs can be bound to
 * preallocated handles so a step writes into the same buffers every time.
 */

export type Provider = 'cpu' | 'cuda';

export interface SessionOptions {
  /** Intra-op threads; defaults to os.availableParallelism(). */
  threads?: number;
  /** Inter-op threads (only used when independent branches may run in parallel); default 1. */
  interOpThreads?: number;
  provider?: Provider;
  graphOptimization?: 'all' | 'basic' | 'disabled';
  /**
   * Whether idle intra-op threads spin while waiting for work (onnxruntime's default: true). Off,
   * they sleep: a training step of thousands of nodes then uses about half the CPU time for the
   * same wall time on an idle machine, and much less wall time on a shared one.
   */
  spinning?: boolean;
  /**
   * onnxruntime's CPU memory arena (default true). Off, every tensor is a fresh allocation: lower
   * peak memory with the memory pattern on, but slower (measured +30% step time on MobileNetV3).
   */
  memoryArena?: boolean;
  /**
   * onnxruntime's memory pattern (default true): after the first run it allocates one block sized
   * for every intermediate tensor's planned offset. For a training step that block is far above the
   * live peak (MobileNetV3-Small at 224, batch 32: 1.41 GB peak RSS with it, 0.84 GB without, at
   * the same step time), so the Trainer turns it off.
   */
  memoryPattern?: boolean;
}

const DTYPES: ReadonlySet<string> = new Set<DataType>(['float32', 'float16', 'float64', 'int64', 'int32', 'int8', 'uint8', 'bool']);

const HANDLE_TOKEN: unique symbol = Symbol('RuntimeTensor');
// Set by RuntimeTensor's static block: reads the private field without exposing it.
let unwrap: (h: RuntimeTensor) => ort.Tensor;

/**
 * An opaque tensor owned by the runtime. `dtype` and `dims` are readable; the data is reached
 * through `toTensorData` (a view, no copy). Handles from one session may be fed to another.
 */
export class RuntimeTensor {
  readonly #tensor: ort.Tensor;
  /** Only this file can make handles: the constructor needs a token it does not export. */
  constructor(token: typeof HANDLE_TOKEN, t: ort.Tensor) {
    if (token !== HANDLE_TOKEN) throw new TypeError('RuntimeTensor is made by the runtime only');
    if (!DTYPES.has(t.type)) throw new AppError('INTERNAL', `runtime returned a tensor of unsupported type ${t.type}`);
    this.#tensor = t;
  }
  get dtype(): DataType {
    return this.#tensor.type as DataType;
  }
  get dims(): readonly number[] {
    return this.#tensor.dims;
  }
  static {
    unwrap = (h) => h.#tensor;
  }
}

const wrap = (t: ort.Tensor) => new RuntimeTensor(HANDLE_TOKEN, t);

function toOrt(t: TensorData): ort.Tensor {
  // ort's typings want a specific array class per type string; ir.ts guarantees the pairing
  // (float16 as Uint16Array bits, bool as Uint8Array).
  return new ort.Tensor(t.dtype, t.data as ort.Tensor.DataType & TypedArray, t.dims);
}

/** Wraps TensorData as a handle once (e.g. initial parameters), so later steps skip the wrap. */
export function toRuntimeTensor(t: TensorData): RuntimeTensor {
  return wrap(toOrt(t));
}

/** A zero-filled handle to bind as a preallocated output of `runHandles`. */
export function allocRuntimeTensor(dtype: DataType, dims: number[]): RuntimeTensor {
  const n = dims.reduce((a, b) => a * b, 1);
  const data: TypedArray =
    dtype === 'float32' ? new Float32Array(n)
    : dtype === 'float64' ? new Float64Array(n)
    : dtype === 'float16' ? new Uint16Array(n)
    : dtype === 'int64' ? new BigInt64Array(n)
    : dtype === 'int32' ? new Int32Array(n)
    : dtype === 'int8' ? new Int8Array(n)
    : new Uint8Array(n);
  return toRuntimeTensor({ dtype, dims, data });
}

/**
 * The handle's data as TensorData. No copy: the result shares memory with the handle, so if the
 * handle is later bound as a preallocated output its contents change with the next run.
 */
export function toTensorData(h: RuntimeTensor): TensorData {
  const t = unwrap(h);
  let data = t.data as TypedArray;
  // Where the JS engine has Float16Array, ort hands back numbers in one; keep the IR's bits form.
  if (t.type === 'float16' && !(data instanceof Uint16Array)) {
    const d = data as unknown as ArrayBufferView;
    data = new Uint16Array(d.buffer, d.byteOffset, d.byteLength / 2);
  }
  return { dtype: t.type as DataType, dims: [...t.dims], data };
}

/** Copies the handle's data out, safe to keep across later runs. */
export function copyTensorData(h: RuntimeTensor): TensorData {
  const t = toTensorData(h);
  return { dtype: t.dtype, dims: t.dims, data: t.data.slice() };
}

export type Feeds = Record<string, TensorData | RuntimeTensor>;
/** Output names to fetch, or a map of output name → preallocated handle (null: let ort allocate). */
export type Fetches = string[] | Record<string, RuntimeTensor | null>;

export interface Session {
  readonly inputNames: string[];
  readonly outputNames: string[];
  /**
   * Tensor inputs and outputs as the runtime sees them, symbolic dims as names. onnxruntime reports
   * an undeclared shape as [], like a scalar's.
   */
  readonly inputs: ValueInfo[];
  readonly outputs: ValueInfo[];
  /** The provider actually in use (a 'cuda' request falls back to 'cpu' when unavailable). */
  readonly provider: Provider;
  /** Runs with plain TensorData; fetches `outputs` (default: all). */
  run(feeds: Record<string, TensorData>, outputs?: string[]): Promise<Record<string, TensorData>>;
  /**
   * The low-copy path: handles or TensorData in, handles out. Inputs are read in place (no copy);
   * outputs bound to preallocated handles are written in place. Never bind an output to a handle
   * that is also an input of the same run: alternate two sets of buffers (ping-pong) instead.
   */
  runHandles(feeds: Feeds, fetches?: Fetches): Promise<Record<string, RuntimeTensor>>;
  /** Alias of runHandles. */
  runKeep(feeds: Feeds, fetches?: Fetches): Promise<Record<string, RuntimeTensor>>;
  release(): Promise<void>;
}

/**
 * Execution providers the installed onnxruntime-node can load. The binding lists 'cuda' on
 * linux-x64 even when its provider libraries were never downloaded (the default, offline install
 * skips them), so CUDA also needs libonnxruntime_providers_cuda beside the binding.
 */
export function availableProviders(): Provider[] {
  const names = new Set(ort.listSupportedBackends().map((b) => b.name));
  return names.has('cuda') && cudaLibraryPresent() ? ['cpu', 'cuda'] : ['cpu'];
}

function cudaLibraryPresent(): boolean {
  const bin = path.resolve(path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '../bin');
  if (!fs.existsSync(bin)) return false;
  return fs.readdirSync(bin).some((napi) =>
    fs.existsSync(path.join(bin, napi, process.platform, process.arch, 'libonnxruntime_providers_cuda.so')));
}

function ortOptions(opts: SessionOptions, provider: Provider): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: opts.threads ?? os.availableParallelism(),
    interOpNumThreads: opts.interOpThreads ?? 1,
    graphOptimizationLevel: opts.graphOptimization ?? 'all',
    executionProviders: provider === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    // A failed CUDA attempt would log an error before we fall back; only fatal ones are worth it.
    logSeverityLevel: provider === 'cuda' ? 4 : 3,
    ...(opts.memoryArena === false ? { enableCpuMemArena: false } : {}),
    ...(opts.memoryPattern === false ? { enableMemPattern: false } : {}),
    ...(opts.spinning === false ? { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } } : {}),
  };
}

/**
 * Opens a session on a model (IR or ONNX bytes). CPU unless `provider: 'cuda'` is asked for:
 * CUDA is used only when ort.listSupportedBackends() lists it (onnxruntime-node's CUDA binaries
 * are an opt-in download the default install skips) and the session opens with it; otherwise the
 * session runs on CPU and says so in `provider`.
 */
export async function createSession(model: Model | Uint8Array, opts: SessionOptions = {}): Promise<Session> {
  const bytes = model instanceof Uint8Array ? model : encodeModel(model);
  let provider: Provider = opts.provider === 'cuda' && availableProviders().includes('cuda') ? 'cuda' : 'cpu';
  let inner: ort.InferenceSession;
  try {
    inner = await ort.InferenceSession.create(bytes, ortOptions(opts, provider));
  } catch (e) {
    if (provider !== 'cuda') throw runtimeError('could not load the model', e);
    provider = 'cpu';
    inner = await ort.InferenceSession.create(bytes, ortOptions(opts, provider)).catch((e2: unknown) => {
      throw runtimeError('could not load the model', e2);
    });
  }
  return new OrtSession(inner, provider);
}

function runtimeError(what: string, e: unknown, code: 'BAD_INPUT' | 'INTERNAL' = 'BAD_INPUT'): AppError {
  const msg = e instanceof Error ? e.message : String(e);
  return new AppError(code, `onnxruntime: ${what}: ${msg}`);
}

/** Tensor values of a type the IR models; others (sequences, strings) are left out of inputs/outputs. */
function tensorInfos(ms: readonly ort.InferenceSession.ValueMetadata[]): ValueInfo[] {
  return ms.flatMap((m) => (m.isTensor && DTYPES.has(m.type)
    ? [{ name: m.name, dtype: m.type as DataType, shape: m.shape.map((d): Dim => (typeof d === 'number' && d >= 0 ? d : typeof d === 'string' && d !== '' ? d : null)) }]
    : []));
}

class OrtSession implements Session {
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly inputs: ValueInfo[];
  readonly outputs: ValueInfo[];
  readonly #inner: ort.InferenceSession;
  readonly provider: Provider;

  constructor(inner: ort.InferenceSession, provider: Provider) {
    this.#inner = inner;
    this.inputNames = [...inner.inputNames];
    this.outputNames = [...inner.outputNames];
    this.inputs = tensorInfos(inner.inputMetadata);
    this.outputs = tensorInfos(inner.outputMetadata);
    this.provider = provider;
  }

  async run(feeds: Record<string, TensorData>, outputs?: string[]): Promise<Record<string, TensorData>> {
    const out = await this.runHandles(feeds, outputs);
    const res: Record<string, TensorData> = {};
    for (const [k, h] of Object.entries(out)) res[k] = toTensorData(h);
    return res;
  }

  async runHandles(feeds: Feeds, fetches?: Fetches): Promise<Record<string, RuntimeTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = v instanceof RuntimeTensor ? unwrap(v) : toOrt(v);
    let ortFetches: string[] | Record<string, ort.Tensor | null>;
    if (fetches === undefined) ortFetches = this.outputNames;
    else if (Array.isArray(fetches)) ortFetches = fetches;
    else {
      ortFetches = {};
      for (const [k, v] of Object.entries(fetches)) ortFetches[k] = v === null ? null : unwrap(v);
    }
    let result: ort.InferenceSession.ReturnType;
    try {
      result = await this.#inner.run(ortFeeds, ortFetches);
    } catch (e) {
      throw runtimeError('run failed', e, 'INTERNAL');
    }
    const out: Record<string, RuntimeTensor> = {};
    for (const [k, v] of Object.entries(result)) out[k] = wrap(v as ort.Tensor);
    return out;
  }

  runKeep(feeds: Feeds, fetches?: Fetches): Promise<Record<string, RuntimeTensor>> {
    return this.runHandles(feeds, fetches);
  }

  async release(): Promise<void> {
    await this.#inner.release();
  }
}
