import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import { z } from 'zod';
import { AppError } from '../kernel/errors.ts';
import { allocTyped, BYTES_PER_ELEMENT } from '../onnx/dtypes.ts';
import type { DataType, TensorData } from '../onnx/ir.ts';

/**
 * The training checkpoint format, safetensors-style so that any reader can find a tensor without
 * parsing the rest:
 *
 *   u64 LE  header length H
 *   H bytes UTF-8 JSON header, space-padded so the data starts 8-byte aligned
 *   data    raw little-endian tensors, each starting 8-byte aligned (offsets relative to data start)
 *
 * The header carries schema_version, step, RNG state, metadata and a sha256 of the data section,
 * so a torn or bit-flipped file is refused instead of resuming from garbage. Pure functions over
 * bytes: src/storage writes and reads the file.
 */

export const CHECKPOINT_FORMAT = 'ai-studio-checkpoint';
export const CHECKPOINT_SCHEMA_VERSION = 1;

export interface CheckpointContent {
  params: Record<string, TensorData>;
  optimizerState: Record<string, TensorData>;
  bnStats: Record<string, TensorData>;
  /** Optimizer steps taken so far. */
  step: number;
  /** The data-order RNG's state words (unsigned 32-bit integers), restored as they were. */
  rng: number[];
  metadata: Record<string, string>;
}

const GROUPS = { params: 'params', optimizerState: 'optimizer', bnStats: 'bn' } as const;
type GroupKey = keyof typeof GROUPS;

const dtypeSchema = z.enum(['float32', 'float16', 'float64', 'int64', 'int32', 'int8', 'uint8', 'bool']);
const headerSchema = z.object({
  format: z.literal(CHECKPOINT_FORMAT),
  schema_version: z.number().int(),
  step: z.number().int().nonnegative(),
  rng: z.array(z.number().int().min(0).max(0xffffffff)),
  metadata: z.record(z.string(), z.string()),
  data_length: z.number().int().nonnegative(),
  data_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  tensors: z.record(
    z.string(),
    z.object({
      dtype: dtypeSchema,
      shape: z.array(z.number().int().nonnegative()),
      data_offsets: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
    }),
  ),
});
type Header = z.infer<typeof headerSchema>;

const align8 = (n: number) => Math.ceil(n / 8) * 8;
const corrupt = (why: string) => new AppError('STORAGE_CORRUPT', `checkpoint is corrupt or truncated: ${why}`);

function assertLittleEndian(): void {
  // typed arrays use the host byte order; the format is little-endian on disk
  if (endianness() !== 'LE') throw new AppError('INTERNAL', 'checkpoints need a little-endian host');
}

function bytesOf(t: TensorData): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

export function encodeCheckpoint(c: CheckpointContent): Uint8Array {
  assertLittleEndian();
  if (!Number.isSafeInteger(c.step) || c.step < 0) throw new AppError('BAD_INPUT', `checkpoint step must be a non-negative integer, got ${c.step}`);
  const tensors: Header['tensors'] = {};
  const chunks: { at: number; bytes: Uint8Array }[] = [];
  let offset = 0;
  for (const key of Object.keys(GROUPS) as GroupKey[]) {
    for (const [name, t] of Object.entries(c[key])) {
      const n = t.dims.reduce((a, d) => a * d, 1);
      if (t.data.length !== n) throw new AppError('BAD_INPUT', `checkpoint tensor '${name}': ${t.data.length} values for shape [${t.dims.join(',')}]`);
      const bytes = bytesOf(t);
      offset = align8(offset);
      tensors[`${GROUPS[key]}/${name}`] = { dtype: t.dtype, shape: [...t.dims], data_offsets: [offset, offset + bytes.length] };
      chunks.push({ at: offset, bytes });
      offset += bytes.length;
    }
  }
  const data = new Uint8Array(align8(offset));
  for (const ch of chunks) data.set(ch.bytes, ch.at);

  const header: Header = {
    format: CHECKPOINT_FORMAT,
    schema_version: CHECKPOINT_SCHEMA_VERSION,
    step: c.step,
    rng: [...c.rng],
    metadata: { ...c.metadata },
    data_length: data.length,
    data_sha256: createHash('sha256').update(data).digest('hex'),
    tensors,
  };
  const json = Buffer.from(JSON.stringify(headerSchema.parse(header)), 'utf8');
  const headerLen = align8(8 + json.length) - 8;
  const out = new Uint8Array(8 + headerLen + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.fill(0x20, 8, 8 + headerLen);
  out.set(json, 8);
  out.set(data, 8 + headerLen);
  return out;
}

export function decodeCheckpoint(bytes: Uint8Array): CheckpointContent {
  assertLittleEndian();
  if (bytes.length < 8) throw corrupt(`${bytes.length} bytes, no header length`);
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (headerLen > BigInt(bytes.length - 8)) throw corrupt(`header of ${headerLen} bytes in a ${bytes.length}-byte file`);
  const dataStart = 8 + Number(headerLen);

  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, Number(headerLen)).toString('utf8'));
  } catch {
    throw corrupt('header is not JSON');
  }
  const version = (raw as { schema_version?: unknown } | null)?.schema_version;
  if (typeof version === 'number' && version !== CHECKPOINT_SCHEMA_VERSION) {
    throw new AppError('SCHEMA_VERSION', `checkpoint schema_version ${version} is not supported (this build reads ${CHECKPOINT_SCHEMA_VERSION})`);
  }
  const parsed = headerSchema.safeParse(raw);
  if (!parsed.success) throw corrupt(`bad header (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message})`);
  const h = parsed.data;

  if (bytes.length - dataStart !== h.data_length) throw corrupt(`data is ${bytes.length - dataStart} bytes, header says ${h.data_length}`);
  const data = bytes.subarray(dataStart);
  if (createHash('sha256').update(data).digest('hex') !== h.data_sha256) throw corrupt('data checksum mismatch');

  const out: CheckpointContent = { params: {}, optimizerState: {}, bnStats: {}, step: h.step, rng: h.rng, metadata: h.metadata };
  const byPrefix = new Map(Object.entries(GROUPS).map(([k, v]) => [v as string, k as GroupKey]));
  for (const [key, t] of Object.entries(h.tensors)) {
    const slash = key.indexOf('/');
    const group = byPrefix.get(key.slice(0, slash));
    if (slash < 0 || !group) throw corrupt(`tensor '${key}' is in no known group`);
    out[group][key.slice(slash + 1)] = readTensor(key, t.dtype, t.shape, t.data_offsets, data);
  }
  return out;
}

function readTensor(key: string, dtype: DataType, shape: number[], [begin, end]: [number, number], data: Uint8Array): TensorData {
  const n = shape.reduce((a, d) => a * d, 1);
  if (end - begin !== n * BYTES_PER_ELEMENT[dtype] || end > data.length || begin % 8 !== 0) {
    throw corrupt(`tensor '${key}' offsets [${begin}, ${end}) do not fit ${dtype}[${shape.join(',')}]`);
  }
  // copy into a fresh, owned buffer: the caller may keep tensors after dropping the file bytes
  const typed = allocTyped(dtype, n);
  new Uint8Array(typed.buffer).set(data.subarray(begin, end));
  return { dtype, dims: [...shape], data: typed };
}
