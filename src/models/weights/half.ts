/** IEEE half and bfloat16 bit patterns → float32, as PyTorch converts them. */

const HALF = new Float32Array(65536);
for (let h = 0; h < 65536; h++) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  HALF[h] = e === 0 ? s * f * 2 ** -24 : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * 2 ** (e - 15);
}

/** `n` little-endian float16 values starting at byte `at` of `bytes`, into `out` from `outAt`. */
export function halfToFloat32(bytes: Uint8Array, at: number, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0, p = at; i < n; i++, p += 2) out[i] = HALF[bytes[p] | (bytes[p + 1] << 8)];
  return out;
}

/** bfloat16 is the upper half of a float32. */
export function bfloat16ToFloat32(bytes: Uint8Array, at: number, n: number): Float32Array {
  const out = new Float32Array(n);
  const u = new Uint32Array(out.buffer);
  for (let i = 0, p = at; i < n; i++, p += 2) u[i] = ((bytes[p] | (bytes[p + 1] << 8)) << 16) >>> 0;
  return out;
}
