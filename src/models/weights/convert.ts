import { AppError } from '../../kernel/errors.ts';
import { bfloat16ToFloat32, halfToFloat32 } from './half.ts';
import type { StorageDtype } from './pickle.ts';
import { numel } from './types.ts';

export const DTYPE_BYTES: Record<StorageDtype, number> = {
  float32: 4, float16: 2, bfloat16: 2, float64: 8, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

export const isFloatDtype = (d: StorageDtype) => d === 'float32' || d === 'float16' || d === 'bfloat16' || d === 'float64';

/** `n` contiguous little-endian values of `dtype` at byte `at` of `bytes`, as float32. */
export function toFloat32(bytes: Uint8Array, at: number, n: number, dtype: StorageDtype): Float32Array {
  if (dtype === 'float16') return halfToFloat32(bytes, at, n);
  if (dtype === 'bfloat16') return bfloat16ToFloat32(bytes, at, n);
  const out = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'float32') {
    // a copy: the caller may drop the file's bytes
    new Uint8Array(out.buffer).set(bytes.subarray(at, at + 4 * n));
    return out;
  }
  if (dtype === 'float64') {
    for (let i = 0; i < n; i++) out[i] = dv.getFloat64(at + 8 * i, true);
    return out;
  }
  throw new AppError('INTERNAL', `no float conversion for ${dtype}`);
}

/**
 * A tensor that views `storageBytes` (of `storageNumel` values of `dtype`) at element `offset`
 * with `size`/`stride`, materialized contiguous as float32. Every index the view can reach is
 * checked to lie inside the storage before anything is read.
 */
export function viewToFloat32(name: string, storageBytes: Uint8Array, storageNumel: number, dtype: StorageDtype, offset: number, size: number[], stride: number[]): Float32Array {
  const n = numel(size);
  const esize = DTYPE_BYTES[dtype];
  if (n === 0) return new Float32Array(0);
  let last = offset;
  for (let i = 0; i < size.length; i++) last += (size[i] - 1) * stride[i];
  if (last >= storageNumel) throw new AppError('BAD_INPUT', `tensor '${name}' reads past the end of its storage (element ${last} of ${storageNumel})`);
  if (storageBytes.length < storageNumel * esize) {
    throw new AppError('BAD_INPUT', `the storage of tensor '${name}' holds ${storageBytes.length} bytes, ${storageNumel * esize} expected: the file is truncated`);
  }
  // Contiguous (row-major) views read one run.
  let contiguous = true;
  for (let i = size.length - 1, want = 1; i >= 0; i--) {
    if (size[i] !== 1 && stride[i] !== want) contiguous = false;
    want *= size[i];
  }
  if (contiguous) return toFloat32(storageBytes, offset * esize, n, dtype);
  // Any other view (a transpose, an expand) is gathered element by element.
  const out = new Float32Array(n);
  const idx = new Array<number>(size.length).fill(0);
  for (let k = 0; k < n; k++) {
    let at = offset;
    for (let i = 0; i < size.length; i++) at += idx[i] * stride[i];
    out[k] = toFloat32(storageBytes, at * esize, 1, dtype)[0];
    for (let i = size.length - 1; i >= 0; i--) {
      if (++idx[i] < size[i]) break;
      idx[i] = 0;
    }
  }
  return out;
}
