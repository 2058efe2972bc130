import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { DocType } from '../schemas/common.ts';
import { AppError } from '../kernel/errors.ts';
import { writeFileAtomic, type FileIdentity } from './atomic.ts';

/**
 * Parses a stored JSON file's text: JSON, then the version stamp, then the schema. A file from a
 * newer (or unknown) studio is refused with SCHEMA_VERSION rather than half-read; a file that
 * fails its schema is STORAGE_CORRUPT. `__proto__` keys in stored JSON are plain data to
 * JSON.parse and zod drops keys it does not know, so they never reach an object's prototype.
 */
export function parseDoc<T extends { schema_version: number }>(doc: DocType<T>, text: string, file: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new AppError('STORAGE_CORRUPT', `${doc.name} at ${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new AppError('STORAGE_CORRUPT', `${doc.name} at ${file} is not a JSON object`);
  }
  const version = (raw as Record<string, unknown>).schema_version;
  if (typeof version !== 'number') {
    throw new AppError('SCHEMA_VERSION', `${doc.name} at ${file} has no schema_version`);
  }
  if (version !== doc.version) {
    throw new AppError(
      'SCHEMA_VERSION',
      `${doc.name} at ${file} has schema_version ${version}; this studio reads version ${doc.version}` +
        (version > doc.version ? ' (it was written by a newer studio)' : ''),
    );
  }
  const r = doc.schema.safeParse(raw);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new AppError('STORAGE_CORRUPT', `${doc.name} at ${file} does not match its schema: ${first.path.join('.')}: ${first.message}`);
  }
  return r.data;
}

/**
 * Validates before writing (a bug never gets to store a file the next read would refuse): the
 * validated value (zod's output, a fresh object no caller holds) and its text.
 */
function validatedText<T extends { schema_version: number }>(doc: DocType<T>, value: T, file: string): { data: T; text: string } {
  const r = doc.schema.safeParse(value);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new AppError('INTERNAL', `refusing to write an invalid ${doc.name} to ${file}: ${first.path.join('.')}: ${first.message}`);
  }
  return { data: r.data, text: `${JSON.stringify(r.data, null, 1)}\n` };
}

/** A file's text, or null when it does not exist. */
async function readText(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

interface CacheEntry {
  /** The schema it was parsed with: the same file read as another document type is parsed again. */
  doc: unknown;
  mtimeMs: number;
  size: number;
  ino: number;
  value: unknown;
}

/**
 * Parsed documents keyed by path and checked against the file's (inode, mtime, size) on every
 * read: a 10,000-image dataset.json is parsed once, not per page request, and a write by another
 * process or thread (new inode after the atomic rename) is still seen at once.
 * Values handed out are shared: callers must treat them as read-only.
 */
export class DocCache {
  private readonly entries = new Map<string, CacheEntry>();
  private bytes = 0;
  /** Bounded by count and by the size of the files behind the entries (a rough stand-in for memory). */
  constructor(
    private readonly maxEntries = 256,
    private readonly maxBytes = 128 * 1024 * 1024,
  ) {}

  async read<T extends { schema_version: number }>(doc: DocType<T>, file: string): Promise<T | null> {
    let st: Awaited<ReturnType<typeof fs.stat>>;
    try {
      st = await fs.stat(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        this.forget(file);
        return null;
      }
      throw e;
    }
    const hit = this.entries.get(file);
    if (hit && hit.doc === doc && hit.ino === st.ino && hit.mtimeMs === st.mtimeMs && hit.size === st.size) {
      // Refresh recency for the LRU order.
      this.entries.delete(file);
      this.entries.set(file, hit);
      return hit.value as T;
    }
    const text = await readText(file);
    if (text === null) return null;
    const value = parseDoc(doc, text, file);
    // Only cache when the file did not change while we read it.
    const after = await fs.stat(file).catch(() => null);
    if (after && after.ino === st.ino && after.mtimeMs === st.mtimeMs && after.size === st.size) this.remember(doc, file, after, value);
    return value;
  }

  async write<T extends { schema_version: number }>(doc: DocType<T>, file: string, value: T): Promise<T> {
    const { data, text } = validatedText(doc, value, file);
    const identity = await writeFileAtomic(file, text);
    // zod's output is what a fresh read of the text would give, and an object no caller holds a
    // reference into.
    this.remember(doc, file, identity, data);
    return data;
  }

  /** A read that leaves the cache as it was (and drops a stale entry for the file). */
  async readUncached<T extends { schema_version: number }>(doc: DocType<T>, file: string): Promise<T | null> {
    this.forget(file);
    const text = await readText(file);
    return text === null ? null : parseDoc(doc, text, file);
  }

  /** A validated atomic write that leaves nothing in the cache. */
  async writeUncached<T extends { schema_version: number }>(doc: DocType<T>, file: string, value: T): Promise<T> {
    const { data, text } = validatedText(doc, value, file);
    this.forget(file);
    await writeFileAtomic(file, text);
    return data;
  }

  forget(file: string): void {
    const e = this.entries.get(file);
    if (e) this.bytes -= e.size;
    this.entries.delete(file);
  }

  forgetUnder(dir: string): void {
    for (const key of [...this.entries.keys()]) if (key === dir || key.startsWith(dir + path.sep)) this.forget(key);
  }

  private remember(doc: unknown, file: string, st: FileIdentity, value: unknown): void {
    this.forget(file);
    this.entries.set(file, { doc, ino: st.ino, mtimeMs: st.mtimeMs, size: st.size, value });
    this.bytes += st.size;
    while (this.entries.size > this.maxEntries || (this.bytes > this.maxBytes && this.entries.size > 1)) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.forget(oldest);
    }
  }
}
