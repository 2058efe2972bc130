import { createHash } from 'node:crypto';

/** Content hash of an image file: sha256 of its bytes, lower-case hex. Duplicates share it. */
export function contentHash(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}
