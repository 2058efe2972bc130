import { AppError } from '../../kernel/errors.ts';
import { DTYPE_BYTES, isFloatDtype, toFloat32 } from './convert.ts';
import type { StorageDtype } from './pickle.ts';
import { WEIGHTS_LIMITS, type LoadedTensor, type ReadWeights, type SkippedTensor } from './types.ts';

/**
 * `.safetensors` (Hugging Face): u64 LE header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {…}}`, then the data
 * (offsets relative to its start, little-endian). Every declaration is checked against the file
 * before anything is allocated: the header's size, each tensor's byte count against its shape
 * and dtype, offsets inside the data, no two tensors overlapping.
 */

const DTYPES: Record<string, StorageDtype> = {
  F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};

const bad = (why: string) => new AppError('BAD_INPUT', `not a valid .safetensors file: ${why}`);

export interface SafetensorsHeader {
  headerLength: number;
  json: Record<string, unknown>;
}

/** The header's length and JSON (null when the bytes do not start like a safetensors file). */
export function readSafetensorsHeader(bytes: Uint8Array): SafetensorsHeader | null {
  if (bytes.length < 10) return null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getBigUint64(0, true);
  if (bytes[8] !== 0x7b) return null; // '{'
  if (n > BigInt(WEIGHTS_LIMITS.maxHeaderBytes)) throw bad(`a header of ${n} bytes (at most ${WEIGHTS_LIMITS.maxHeaderBytes})`);
  if (n > BigInt(bytes.length - 8)) throw bad(`a header of ${n} bytes in a ${bytes.length}-byte file (truncated?)`);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, Number(n)).toString('utf8'));
  } catch {
    throw bad('the header is not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('the header is not a JSON object');
  return { headerLength: Number(n), json: json as Record<string, unknown> };
}

export function readSafetensors(bytes: Uint8Array): ReadWeights {
  const h = readSafetensorsHeader(bytes);
  if (!h) throw bad('it does not start with a header length and a JSON header');
  const dataStart = 8 + h.headerLength;
  const dataLength = bytes.length - dataStart;
  const entries: { name: string; dtype: StorageDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(h.json)) {
    if (name === '__metadata__') continue;
    if (entries.length >= WEIGHTS_LIMITS.maxTensors) throw bad('too many tensors');
    const t = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (typeof t !== 'object' || t === null) throw bad(`tensor '${name}' is not described by an object`);
    const dtype = typeof t.dtype === 'string' ? DTYPES[t.dtype] : undefined;
    if (!dtype) throw bad(`tensor '${name}' has dtype ${JSON.stringify(t.dtype)} (known: ${Object.keys(DTYPES).join(', ')})`);
    const shape = t.shape;
    if (!Array.isArray(shape) || shape.length > WEIGHTS_LIMITS.maxRank || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad(`tensor '${name}' has a bad shape`);
    const off = t.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isSafeInteger(o) && o >= 0)) throw bad(`tensor '${name}' has bad data_offsets`);
    const [begin, end] = off as [number, number];
    // The declared size, in float arithmetic: a 10 GB (or 10^30-byte) declaration is refused here, never allocated.
    const bytesNeeded = (shape as number[]).reduce((a, d) => a * d, 1) * DTYPE_BYTES[dtype];
    if (end < begin) throw bad(`tensor '${name}' ends (${end}) before it begins (${begin})`);
    if (end - begin !== bytesNeeded) throw bad(`tensor '${name}' declares ${end - begin} bytes for ${dtype}[${(shape as number[]).join(', ')}] (${bytesNeeded} bytes)`);
    if (end > dataLength) throw bad(`tensor '${name}' lies at bytes [${begin}, ${end}) of a ${dataLength}-byte data section (truncated, or a lying header)`);
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end) throw bad(`tensors '${sorted[i - 1].name}' and '${sorted[i].name}' overlap`);
  }
  const tensors = new Map<string, LoadedTensor>();
  const skipped: SkippedTensor[] = [];
  for (const e of entries) {
    if (!isFloatDtype(e.dtype)) {
      skipped.push({ name: e.name, reason: e.name.endsWith('num_batches_tracked') ? 'batch-norm step counter: not used' : `${e.dtype} tensor: not a weight` });
      continue;
    }
    const n = (e.end - e.begin) / DTYPE_BYTES[e.dtype];
    tensors.set(e.name, { dims: [...e.shape], data: toFloat32(bytes, dataStart + e.begin, n, e.dtype) });
  }
  return { format: 'safetensors', tensors, skipped };
}
