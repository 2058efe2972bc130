import { promises as fs } from 'node:fs';
import path from 'node:path';
import {
  DatasetDoc,
  DatasetV1Doc,
  ShardDoc,
  SplitDoc,
  type DatasetFile,
  type DatasetManifest,
  type ImageRecord,
  type SplitFile,
  type StoredImage,
  type Subset,
} from '../schemas/dataset.ts';
import { AppError, notFound } from '../kernel/errors.ts';
import { DatasetIndex, countRecords, mergeCounts, sameCounts, type ImageRef, type ShardColumns } from './dataset-index.ts';
import type { Workspace } from './workspace.ts';

/** Image records per shard: a relabel rewrites one shard (100–200 KB), never the dataset. */
export const SHARD_SIZE = 500;

/** Parsed shard files kept (about 1 MB of memory each). */
const SHARD_CACHE = 48;
/** Indexes kept in memory at once, counted in images; the least recently used goes first. */
const INDEX_BUDGET_IMAGES = 3_000_000;
/** An index nobody asked for in this long is dropped: a dataset not in use costs nothing. */
const INDEX_IDLE_MS = 10 * 60_000;

const shardName = (n: number, rev: number) => `shards/${String(n).padStart(6, '0')}.${rev}.json`;
/** The file of a header's shard entry `[slot, rev, images]`. */
export const shardFile = (entry: DatasetManifest['shards'][number]): string => shardName(entry[0], entry[1]);
const splitName = (name: string, rev: number) => `splits/${name}.${rev}.json`;
const SHARD_FILE_RE = /^[0-9]{6}\.[0-9]+\.json$/;
const SPLIT_FILE_RE = /^[A-Za-z0-9_-]{1,64}\.[0-9]+\.json$/;

/**
 * One change to a dataset, made inside `DatasetStore.transact` under the dataset's lock. The
 * header is a private copy to change (name, status, classes, report); image records change through
 * `replace` and `append`, splits through `addSplit` and `removeSplit`.
 */
export interface DatasetTx {
  readonly header: DatasetManifest;
  /** The index as of this transaction's start (read-only). */
  readonly index: DatasetIndex;
  /**
   * Copies of the records of the shard at `slot` (its place in `index.shards`): change their
   * fields, replacing an array field rather than changing the array in place.
   */
  records(slot: number): Promise<StoredImage[]>;
  /** The shard's records become these (none: the shard goes). */
  replace(slot: number, records: StoredImage[]): void;
  /** Records added at the end of the dataset. */
  append(records: StoredImage[]): void;
  addSplit(split: SplitFile): void;
  removeSplit(name: string): void;
  /** Dataset-relative files of removed images, unlinked after the commit. */
  trash(files: string[]): void;
}

/** A file a header named was gone when read: a commit in another thread replaced it; read again. */
class StaleFile extends Error {}

interface Held {
  index: DatasetIndex;
  usedAt: number;
  /** Whether this process swept the dataset's unreferenced files yet. */
  swept: boolean;
}

/**
 * A dataset on disk, version 2: `dataset.json` (the header: counts, split and shard file names),
 * `shards/<n>.<rev>.json` (the image records, SHARD_SIZE each), `splits/<name>.<rev>.json`. Every
 * change writes new shard or split files, then the header (the commit point, atomic), then removes
 * what it replaced, so a crash leaves either the old dataset or the new one, never a mix. A
 * version-1 `dataset.json` (every record in one file) is migrated on first read.
 * Main thread and worker threads each keep their own indexes; a header written by another thread
 * is seen on the next access (the workspace's document cache checks the file's identity).
 */
export class DatasetStore {
  private readonly held = new Map<string, Held>();
  /** Parsed shard files by absolute path, least recently used first. */
  private readonly shards = new Map<string, StoredImage[]>();

  constructor(private readonly ws: Workspace) {}

  /** The header, or null when the dataset does not exist. Migrates a version-1 file. */
  async header(projectId: string, datasetId: string): Promise<DatasetManifest | null> {
    return this.readHeader(projectId, datasetId, false);
  }

  private async readHeader(projectId: string, datasetId: string, locked: boolean): Promise<DatasetManifest | null> {
    const file = this.ws.datasetFile(projectId, datasetId);
    try {
      return await this.ws.read(DatasetDoc, file);
    } catch (e) {
      if (!(e instanceof AppError && e.code === 'SCHEMA_VERSION')) throw e;
      const migrate = async () => {
        // Another thread may have migrated it while we waited for the lock.
        try {
          return await this.ws.read(DatasetDoc, file);
        } catch (again) {
          if (!(again instanceof AppError && again.code === 'SCHEMA_VERSION')) throw again;
        }
        let v1: DatasetFile | null;
        try {
          v1 = await this.ws.read(DatasetV1Doc, file);
        } catch {
          throw e;
        }
        return v1 === null ? null : this.migrate(projectId, datasetId, v1);
      };
      return locked ? migrate() : this.ws.withLock(file, migrate);
    }
  }

  /** Version 1 → 2: shards and split files first, then the header over the old file (the commit). */
  private async migrate(projectId: string, datasetId: string, v1: DatasetFile): Promise<DatasetManifest> {
    const dir = this.ws.datasetDir(projectId, datasetId);
    const rev = 1;
    const shards: DatasetManifest['shards'] = [];
    const stored = v1.images.map(({ split: _s, ...rec }) => rec);
    for (let n = 0; n * SHARD_SIZE < stored.length; n++) {
      const images = stored.slice(n * SHARD_SIZE, (n + 1) * SHARD_SIZE);
      await this.ws.writeUncached(ShardDoc, path.join(dir, shardName(n, rev)), { schema_version: 1, images });
      shards.push([n, rev, images.length]);
    }
    const splits: DatasetManifest['splits'] = [];
    for (const [col, name] of v1.split_names.entries()) {
      const lists: SplitFile = { schema_version: 1, name, train: [], val: [], test: [] };
      for (const img of v1.images) if (img.split[col] !== 'none') lists[img.split[col] as 'train' | 'val' | 'test'].push(img.id);
      const file = splitName(name, rev);
      await this.ws.write(SplitDoc, path.join(dir, file), lists);
      splits.push({ name, file });
    }
    const header: DatasetManifest = {
      schema_version: 2,
      id: v1.id,
      name: v1.name,
      task: v1.task,
      status: v1.status,
      classes: v1.classes,
      target_names: v1.target_names,
      rev,
      next_shard: shards.length,
      shards,
      splits,
      counts: countRecords(stored, v1.target_names),
      trash: [],
      import_report: v1.import_report,
      error: v1.error,
      created_at: v1.created_at,
      updated_at: v1.updated_at,
    };
    return this.ws.write(DatasetDoc, this.ws.datasetFile(projectId, datasetId), header);
  }

  /** A new, empty dataset. */
  async create(projectId: string, init: Omit<DatasetManifest, 'schema_version' | 'rev' | 'next_shard' | 'shards' | 'splits' | 'counts' | 'trash'>): Promise<DatasetManifest> {
    const header: DatasetManifest = {
      schema_version: 2,
      ...init,
      rev: 0,
      next_shard: 0,
      shards: [],
      splits: [],
      counts: { images: 0, unlabeled: 0, class_counts: [], cardinality: [] },
      trash: [],
    };
    return this.ws.write(DatasetDoc, this.ws.datasetFile(projectId, init.id), header);
  }

  /** Forgets a dataset's index (its folder is being removed). */
  forget(projectId: string, datasetId: string): void {
    this.held.delete(`${projectId}/${datasetId}`);
  }

  /** The dataset's index, current with its header. NOT_FOUND when there is no dataset. */
  async index(projectId: string, datasetId: string): Promise<DatasetIndex> {
    return this.currentIndex(projectId, datasetId, false);
  }

  private async currentIndex(projectId: string, datasetId: string, locked: boolean): Promise<DatasetIndex> {
    const key = `${projectId}/${datasetId}`;
    for (let attempt = 0; ; attempt++) {
      const header = await this.readHeader(projectId, datasetId, locked);
      if (header === null) {
        this.held.delete(key);
        throw notFound('dataset', datasetId);
      }
      let held = this.held.get(key);
      if (held && held.index.manifest === header) {
        held.usedAt = Date.now();
        return held.index;
      }
      try {
        const index = held?.index ?? new DatasetIndex(header);
        await this.refresh(projectId, datasetId, index, header, held === undefined);
        if (!held) {
          held = { index, usedAt: Date.now(), swept: false };
          this.held.set(key, held);
          this.evict(key);
        }
        held.usedAt = Date.now();
        if (!held.swept) {
          held.swept = true;
          if (locked) await this.sweep(projectId, datasetId, header);
          else await this.ws.withLock(this.ws.datasetFile(projectId, datasetId), async () => this.sweep(projectId, datasetId, (await this.readHeader(projectId, datasetId, true)) ?? header));
        }
        return index;
      } catch (e) {
        // A commit in another thread removed a shard file between our reading its header and the shard.
        if (e instanceof StaleFile && attempt < 5) continue;
        throw e;
      }
    }
  }

  /** Brings an index to `header`: shards whose file is unchanged keep their columns. */
  private async refresh(projectId: string, datasetId: string, index: DatasetIndex, header: DatasetManifest, fresh: boolean): Promise<void> {
    const before = fresh ? null : index.manifest;
    const bySlot = new Map(index.shards.map((s) => [s.n, s]));
    const oldSplits = new Map((before?.splits ?? []).map((s) => [s.name, s.file]));
    const kept = header.splits.filter((s) => oldSplits.get(s.name) === s.file).map((s) => s.name);
    const shards: ShardColumns[] = [];
    for (const entry of header.shards) {
      const same = bySlot.get(entry[0]);
      if (same && same.rev === entry[1]) {
        shards.push(same);
        continue;
      }
      const file = shardFile(entry);
      shards.push(index.columns(file, await this.shardRecords(projectId, datasetId, file), same, kept));
    }
    index.setShards(header, shards);
    for (const s of header.splits) {
      if (kept.includes(s.name)) continue;
      const split = await this.ws.read(SplitDoc, path.join(this.ws.datasetDir(projectId, datasetId), s.file));
      if (split === null) throw new StaleFile(`split file ${s.file} is gone`);
      index.setSplit(s.name, split);
    }
  }

  /**
   * The records of one shard file (shared: do not mutate). Shard files are never rewritten under
   * the same name, so a small LRU of them by path needs no freshness check; it is kept apart from
   * the workspace's document cache so a pass over a large dataset does not flush that.
   */
  async shardRecords(projectId: string, datasetId: string, file: string): Promise<StoredImage[]> {
    const full = path.join(this.ws.datasetDir(projectId, datasetId), file);
    const hit = this.shards.get(full);
    if (hit) {
      this.shards.delete(full);
      this.shards.set(full, hit);
      return hit;
    }
    const shard = await this.ws.readUncached(ShardDoc, full);
    if (shard === null) throw new StaleFile(`shard file ${file} is gone`);
    this.remember(full, shard.images);
    return shard.images;
  }

  private remember(full: string, images: StoredImage[]): void {
    this.shards.set(full, images);
    while (this.shards.size > SHARD_CACHE) this.shards.delete(this.shards.keys().next().value!);
  }

  /** The record of one image of the index (shared: do not mutate). */
  async record(projectId: string, datasetId: string, ref: ImageRef): Promise<StoredImage> {
    return (await this.shardRecords(projectId, datasetId, ref.shard.file))[ref.i];
  }

  /** The whole dataset in memory: what training, evaluation and export read. */
  async materialize(projectId: string, datasetId: string): Promise<DatasetFile | null> {
    for (let attempt = 0; ; attempt++) {
      const header = await this.header(projectId, datasetId);
      if (header === null) return null;
      try {
        const dir = this.ws.datasetDir(projectId, datasetId);
        const where = header.splits.map(() => new Map<string, Subset>());
        for (const [k, s] of header.splits.entries()) {
          const split = await this.ws.read(SplitDoc, path.join(dir, s.file));
          if (split === null) throw new StaleFile(`split file ${s.file} is gone`);
          for (const sub of ['train', 'val', 'test'] as const) for (const id of split[sub]) where[k].set(id, sub);
        }
        const images: ImageRecord[] = [];
        for (const entry of header.shards) {
          for (const rec of await this.shardRecords(projectId, datasetId, shardFile(entry))) {
            images.push({ ...rec, split: where.map((m) => m.get(rec.id) ?? 'none') });
          }
        }
        const { rev: _r, next_shard: _n, shards: _s, splits, counts: _c, trash: _t, schema_version: _v, ...rest } = header;
        return { ...rest, schema_version: 1, split_names: splits.map((s) => s.name), images };
      } catch (e) {
        if (e instanceof StaleFile && attempt < 5) continue;
        throw e;
      }
    }
  }

  /**
   * Runs `fn` on the dataset under its lock and commits what it changed: new shard and split files,
   * then the header (rev + 1, counts adjusted by what the replaced shards held), then the replaced
   * files and trashed images go. Nothing is written when nothing changed. NOT_FOUND without a dataset.
   */
  async transact<R>(projectId: string, datasetId: string, fn: (tx: DatasetTx) => R | Promise<R>): Promise<R> {
    const file = this.ws.datasetFile(projectId, datasetId);
    try {
      return await this.ws.withLock(file, () => this.transactLocked(projectId, datasetId, fn));
    } catch (e) {
      // The lock folder could not be made: the dataset's folder is gone.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw notFound('dataset', datasetId);
      throw e;
    }
  }

  private async transactLocked<R>(projectId: string, datasetId: string, fn: (tx: DatasetTx) => R | Promise<R>): Promise<R> {
    const index = await this.currentIndex(projectId, datasetId, true);
    const before = index.manifest;
    // What a transaction may change of the header is copied; the shard and split lists are the
    // commit's to rebuild, and copying them would cost a pass over a large dataset's header.
    const header: DatasetManifest = {
      ...before,
      classes: [...before.classes],
      target_names: [...before.target_names],
      import_report: before.import_report === null ? null : structuredClone(before.import_report),
      error: before.error === null ? null : { ...before.error },
    };
    const replaced = new Map<number, StoredImage[]>();
    const appended: StoredImage[] = [];
    const addedSplits: SplitFile[] = [];
    const removedSplits: string[] = [];
    const trashed: string[] = [];
    const tx: DatasetTx = {
      header,
      index,
      // Each record copied, not deep: an edit replaces a record's arrays (labels, targets,
      // annotations) rather than changing them in place.
      records: async (slot) => (await this.shardRecords(projectId, datasetId, index.shards[slot].file)).map((r) => ({ ...r })),
      replace: (slot, records) => void replaced.set(slot, records),
      append: (records) => void appended.push(...records),
      addSplit: (split) => void addedSplits.push(split),
      removeSplit: (name) => void removedSplits.push(name),
      trash: (files) => void trashed.push(...files),
    };
    const out = await fn(tx);
    const headerChanged =
      header.name !== before.name ||
      header.status !== before.status ||
      JSON.stringify([header.classes, header.target_names, header.import_report, header.error]) !==
        JSON.stringify([before.classes, before.target_names, before.import_report, before.error]);
    if (!headerChanged && replaced.size === 0 && appended.length === 0 && addedSplits.length === 0 && removedSplits.length === 0 && trashed.length === 0 && before.trash.length === 0) return out;

    const dir = this.ws.datasetDir(projectId, datasetId);
    const rev = before.rev + 1;
    let counts = before.counts;
    const writes: { file: string; images: StoredImage[] }[] = [];
    const removes: string[] = [];
    const shards: DatasetManifest['shards'] = [];
    let nextShard = before.next_shard;
    const swap = async (slot: number, images: StoredImage[]) => {
      const old = shardFile(before.shards[slot]);
      counts = mergeCounts(counts, countRecords(await this.shardRecords(projectId, datasetId, old), header.target_names), -1);
      removes.push(old);
      if (images.length === 0) return;
      counts = mergeCounts(counts, countRecords(images, header.target_names), 1);
      const n = before.shards[slot][0];
      writes.push({ file: shardName(n, rev), images });
      shards.push([n, rev, images.length]);
    };
    // The last shard takes appended records until it is full.
    let queue = appended;
    const last = before.shards.length - 1;
    if (queue.length > 0 && last >= 0) {
      const current = replaced.get(last) ?? (await this.shardRecords(projectId, datasetId, shardFile(before.shards[last])));
      if (current.length > 0 && current.length < SHARD_SIZE) {
        replaced.set(last, [...current, ...queue.slice(0, SHARD_SIZE - current.length)]);
        queue = queue.slice(SHARD_SIZE - current.length);
      }
    }
    for (let slot = 0; slot < before.shards.length; slot++) {
      const images = replaced.get(slot);
      if (images === undefined) shards.push(before.shards[slot]);
      else await swap(slot, images);
    }
    for (let i = 0; i < queue.length; i += SHARD_SIZE) {
      const images = queue.slice(i, i + SHARD_SIZE);
      const n = nextShard++;
      counts = mergeCounts(counts, countRecords(images, header.target_names), 1);
      writes.push({ file: shardName(n, rev), images });
      shards.push([n, rev, images.length]);
    }
    const splits = header.splits.filter((s) => !removedSplits.includes(s.name));
    for (const s of header.splits) if (removedSplits.includes(s.name)) removes.push(s.file);
    const splitWrites = addedSplits.map((s) => ({ split: s, file: splitName(s.name, rev) }));
    for (const w of splitWrites) {
      if (splits.some((s) => s.name === w.split.name)) throw new AppError('CONFLICT', `a split named '${w.split.name}' already exists`);
      splits.push({ name: w.split.name, file: w.file });
    }
    // Files of images deleted earlier are unlinked now unless an image with the same file came back.
    const appendedStems = new Set(appended.map((r) => r.hash.slice(0, 16)));
    const stale = before.trash.filter((f) => {
      const stem = path.basename(f).replace(/\.[^.]+$/, '');
      return !appendedStems.has(stem) && !index.hasStem(stem);
    });

    for (const w of writes) {
      const stored = await this.ws.writeUncached(ShardDoc, path.join(dir, w.file), { schema_version: 1, images: w.images });
      this.remember(path.join(dir, w.file), stored.images);
    }
    for (const w of splitWrites) await this.ws.write(SplitDoc, path.join(dir, w.file), w.split);
    for (const f of stale) await this.ws.removeDatasetFile(projectId, datasetId, f);
    const next: DatasetManifest = {
      ...header,
      rev,
      next_shard: nextShard,
      shards,
      splits,
      counts,
      trash: trashed,
      updated_at: new Date().toISOString(),
    };
    const committed = await this.ws.write(DatasetDoc, this.ws.datasetFile(projectId, datasetId), next);
    for (const f of removes) await fs.rm(path.join(dir, f), { force: true });
    for (const f of trashed) await this.ws.removeDatasetFile(projectId, datasetId, f);
    await this.refresh(projectId, datasetId, index, committed, false);
    return out;
  }

  /**
   * Removes shard and split files the header does not name (a crash between writing them and the
   * commit, or between the commit and removing what it replaced). Under the dataset's lock.
   */
  private async sweep(projectId: string, datasetId: string, header: DatasetManifest): Promise<void> {
    const dir = this.ws.datasetDir(projectId, datasetId);
    const named = new Set([...header.shards.map(shardFile), ...header.splits.map((s) => s.file)]);
    for (const [sub, re] of [['shards', SHARD_FILE_RE], ['splits', SPLIT_FILE_RE]] as const) {
      let names: string[];
      try {
        names = await fs.readdir(path.join(dir, sub));
      } catch {
        continue;
      }
      for (const n of names) if (re.test(n) && !named.has(`${sub}/${n}`)) await fs.rm(path.join(dir, sub, n), { force: true });
    }
  }

  /** Checks the header's counts against its records (tests and the crash harness). */
  async verify(projectId: string, datasetId: string): Promise<string[]> {
    const header = await this.header(projectId, datasetId);
    if (header === null) return ['no dataset.json'];
    const problems: string[] = [];
    const all: StoredImage[] = [];
    for (const s of header.shards) {
      const file = shardFile(s);
      const recs = await this.shardRecords(projectId, datasetId, file).catch((e: unknown) => {
        problems.push(`${file}: ${(e as Error).message}`);
        return [] as StoredImage[];
      });
      if (recs.length !== s[2]) problems.push(`${file} holds ${recs.length} records, the header says ${s[2]}`);
      all.push(...recs);
    }
    if (!sameCounts(countRecords(all, header.target_names), header.counts)) problems.push('the header counts differ from the records');
    if (new Set(all.map((r) => r.id)).size !== all.length) problems.push('an image id occurs twice');
    for (const s of header.splits) if ((await this.ws.read(SplitDoc, path.join(this.ws.datasetDir(projectId, datasetId), s.file))) === null) problems.push(`${s.file} is missing`);
    return problems;
  }

  private timer: NodeJS.Timeout | undefined;

  private evict(keep: string): void {
    // Idle indexes go even when nothing else is asked for.
    this.timer ??= setInterval(() => this.evict(''), INDEX_IDLE_MS / 4).unref();
    const now = Date.now();
    let total = 0;
    const order = [...this.held.entries()].sort((a, b) => b[1].usedAt - a[1].usedAt);
    for (const [key, h] of order) {
      total += h.index.size;
      if (key !== keep && (now - h.usedAt > INDEX_IDLE_MS || total > INDEX_BUDGET_IMAGES)) this.held.delete(key);
    }
  }
}

