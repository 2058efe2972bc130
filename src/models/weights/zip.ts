import { inflateRawSync } from 'node:zlib';
import { AppError } from '../../kernel/errors.ts';
import { WEIGHTS_LIMITS } from './types.ts';

/**
 * A small zip reader over bytes in memory, for PyTorch's zip checkpoints (torch.save ≥ 1.6 writes
 * them stored, 64-byte aligned, zip64 past 4 GB). Entries are only *read*, never extracted: but a
 * name that would leave a folder (`../x`, `/x`, `C:\x`, a backslash, NUL) makes the whole archive
 * refused, as a file that was built to attack an extractor.
 */

export interface ZipEntry {
  name: string;
  /** Stored (0) or deflated (8). */
  method: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

const bad = (why: string) => new AppError('BAD_ARCHIVE', `not a readable PyTorch zip: ${why}`);

function checkName(name: string): void {
  if (
    name.length === 0 ||
    name.includes('\0') ||
    name.includes('\\') ||
    name.startsWith('/') ||
    /^[A-Za-z]:/.test(name) ||
    name.split('/').some((seg) => seg === '..')
  ) {
    throw new AppError('BAD_ARCHIVE', `the zip has an entry named '${name.replace(/[^\x20-\x7e]/g, '?').slice(0, 200)}', which leaves its folder: refused`);
  }
}

function u64(dv: DataView, at: number): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad('a 64-bit size out of range');
  return Number(v);
}

export function readZipDirectory(bytes: Uint8Array): ZipEntry[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // End of central directory: the last signature within 64 kB + 22 bytes of the end.
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (dv.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad('no end-of-central-directory record (truncated?)');
  let count = dv.getUint16(eocd + 10, true);
  let cdSize = dv.getUint32(eocd + 12, true);
  let cdOffset = dv.getUint32(eocd + 16, true);
  if ((count === 0xffff || cdOffset === 0xffffffff || cdSize === 0xffffffff) && eocd >= 20 && dv.getUint32(eocd - 20, true) === 0x07064b50) {
    const z64 = u64(dv, eocd - 20 + 8);
    if (z64 + 56 > bytes.length || dv.getUint32(z64, true) !== 0x06064b50) throw bad('a broken zip64 record');
    count = u64(dv, z64 + 32);
    cdSize = u64(dv, z64 + 40);
    cdOffset = u64(dv, z64 + 48);
  }
  if (count > WEIGHTS_LIMITS.maxZipEntries) throw bad(`${count} entries`);
  if (cdOffset + cdSize > bytes.length) throw bad('the central directory lies past the end of the file (truncated?)');
  const entries: ZipEntry[] = [];
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > bytes.length || dv.getUint32(p, true) !== 0x02014b50) throw bad(`central directory entry ${i} is broken`);
    const method = dv.getUint16(p + 10, true);
    let compressedSize = dv.getUint32(p + 20, true);
    let size = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    let localOffset = dv.getUint32(p + 42, true);
    if (p + 46 + nameLen + extraLen + commentLen > bytes.length) throw bad(`central directory entry ${i} is broken`);
    const name = Buffer.from(bytes.buffer, bytes.byteOffset + p + 46, nameLen).toString('utf8');
    checkName(name);
    // zip64 extra field: the 64-bit values, in order, for the 32-bit fields that are 0xffffffff.
    let e = p + 46 + nameLen;
    const end = e + extraLen;
    while (e + 4 <= end) {
      const id = dv.getUint16(e, true);
      const len = dv.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        if (size === 0xffffffff) (size = u64(dv, q)), (q += 8);
        if (compressedSize === 0xffffffff) (compressedSize = u64(dv, q)), (q += 8);
        if (localOffset === 0xffffffff) localOffset = u64(dv, q);
      }
      e += 4 + len;
    }
    entries.push({ name, method, compressedSize, size, localOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** An entry's bytes: a view into `bytes` for a stored entry, inflated (bounded by its size) for a deflated one. */
export function readZipEntry(bytes: Uint8Array, e: ZipEntry): Uint8Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (e.localOffset + 30 > bytes.length || dv.getUint32(e.localOffset, true) !== 0x04034b50) throw bad(`entry '${e.name}' has no local header (truncated?)`);
  const start = e.localOffset + 30 + dv.getUint16(e.localOffset + 26, true) + dv.getUint16(e.localOffset + 28, true);
  if (start + e.compressedSize > bytes.length) throw bad(`entry '${e.name}' runs past the end of the file (truncated?)`);
  const raw = bytes.subarray(start, start + e.compressedSize);
  if (e.method === 0) {
    if (e.compressedSize !== e.size) throw bad(`entry '${e.name}' says ${e.size} bytes but stores ${e.compressedSize}`);
    return raw;
  }
  if (e.method === 8) {
    try {
      const out = inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
      if (out.length !== e.size) throw new Error('size');
      return new Uint8Array(out.buffer, out.byteOffset, out.length);
    } catch {
      throw bad(`entry '${e.name}' does not inflate to its ${e.size} bytes`);
    }
  }
  throw bad(`entry '${e.name}' uses compression method ${e.method}`);
}
