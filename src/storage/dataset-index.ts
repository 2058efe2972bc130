import type { DatasetCounts, DatasetManifest, StoredImage, Subset } from '../schemas/dataset.ts';

/** Subset codes in the split columns. */
export const SUBSET_CODES: readonly Subset[] = ['train', 'val', 'test', 'none'];
export const NONE_CODE = 3;
const codeOf = (s: Subset) => SUBSET_CODES.indexOf(s);

/**
 * What the index keeps of one shard: the columns pages filter and count by, packed into typed
 * arrays (about 30 bytes an image), never the records themselves (those stay in the shard files,
 * read a page at a time).
 */
export interface ShardColumns {
  /** The shard file (names are never rewritten, so the columns of a file never change). */
  readonly file: string;
  /** The shard's slot number (`shards/<n>.<rev>.json`): stable across rewrites of the shard. */
  readonly n: number;
  /** The commit that wrote the shard file. */
  readonly rev: number;
  /** Each image's id, packed (`packId`). */
  readonly ids: Float64Array;
  /** The ids sorted, and where each sorted id sits in `ids`: the lookup by id, a binary search. */
  readonly sortedIds: Float64Array;
  readonly sortedAt: Uint16Array;
  /** First 16 hex digits of each image's sha256 (its file stem), as two 32-bit halves. */
  readonly stems: Uint32Array;
  /** Class code of `label`, -1 when none. */
  readonly label: Int32Array;
  /** Class codes of `labels` (multi-label), undefined when the image has none; absent when no image has any. */
  readonly labels?: (Int32Array | undefined)[];
  /** `targets` (regression), undefined when the image has none; absent when no image has any. */
  readonly targets?: (Float64Array | undefined)[];
  /** Split name → subset code per image. */
  readonly subsets: Map<string, Uint8Array>;
}

/** Where one image sits: its shard's columns and its place in them. */
export interface ImageRef {
  shard: ShardColumns;
  i: number;
}

/** `img-` and 8 base-36 digits (ImageIdSchema) as a number: 36^8 < 2^53, so exact. */
export const packId = (id: string): number => parseInt(id.slice(4), 36);
export const unpackId = (n: number): string => `img-${n.toString(36).padStart(8, '0')}`;
/** The id of an image of the index. */
export const idAt = (ref: ImageRef): string => unpackId(ref.shard.ids[ref.i]);
/** The file stem (16 hex digits) of an image of the index. */
export const stemAt = (ref: ImageRef): string =>
  ref.shard.stems[2 * ref.i].toString(16).padStart(8, '0') + ref.shard.stems[2 * ref.i + 1].toString(16).padStart(8, '0');
const stemHalves = (stem: string): [number, number] => [parseInt(stem.slice(0, 8), 16), parseInt(stem.slice(8, 16), 16)];
/** A 53-bit key of a stem, for the set that screens duplicates (a hit is confirmed exactly). */
const stemKey = (hi: number, lo: number): number => (hi >>> 11) * 2 ** 32 + lo;

/** Counts of a set of records, the generic way `DatasetCountsSchema` defines them. */
export function countRecords(records: readonly StoredImage[], targetNames: readonly string[]): DatasetCounts {
  const classes = new Map<string, number>();
  const cardinality: number[] = [];
  let unlabeled = 0;
  for (const r of records) {
    const names: string[] = [];
    if (r.label !== null) names.push(r.label);
    if (r.labels !== undefined) {
      names.push(...r.labels);
      while (cardinality.length <= r.labels.length) cardinality.push(0);
      cardinality[r.labels.length] += 1;
    }
    if (r.targets !== undefined) names.push(...targetNames);
    if (r.label === null && r.labels === undefined && r.targets === undefined) unlabeled += 1;
    for (const n of names) classes.set(n, (classes.get(n) ?? 0) + 1);
  }
  return { images: records.length, unlabeled, class_counts: sortedPairs(classes), cardinality };
}

const sortedPairs = (m: Map<string, number>): [string, number][] =>
  [...m].filter(([, v]) => v !== 0).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));

/** `a + sign·b`, with zero class counts dropped and trailing zero cardinalities trimmed. */
export function mergeCounts(a: DatasetCounts, b: DatasetCounts, sign: 1 | -1): DatasetCounts {
  const classes = new Map(a.class_counts);
  for (const [k, v] of b.class_counts) classes.set(k, (classes.get(k) ?? 0) + sign * v);
  const cardinality = [...a.cardinality];
  b.cardinality.forEach((v, k) => {
    while (cardinality.length <= k) cardinality.push(0);
    cardinality[k] += sign * v;
  });
  while (cardinality.length > 0 && cardinality[cardinality.length - 1] === 0) cardinality.pop();
  return { images: a.images + sign * b.images, unlabeled: a.unlabeled + sign * b.unlabeled, class_counts: sortedPairs(classes), cardinality };
}

/** Whether two counts say the same. */
export function sameCounts(a: DatasetCounts, b: DatasetCounts): boolean {
  const norm = (c: DatasetCounts) => {
    const card = [...c.cardinality];
    while (card.length > 0 && card[card.length - 1] === 0) card.pop();
    return JSON.stringify([c.images, c.unlabeled, sortedPairs(new Map(c.class_counts)), card]);
  };
  return norm(a) === norm(b);
}

/** The slot number of a shard file name. */
export const shardSlot = (file: string): number => Number(file.slice('shards/'.length, 'shards/'.length + 6));

/**
 * The in-memory index of one dataset: per image its id, file stem, label codes, targets and subset
 * per split, by shard, in the dataset's order. About 100 bytes an image; the records stay on disk.
 * Built from the shard and split files; `DatasetStore` keeps it current as commits replace shards.
 */
export class DatasetIndex {
  manifest: DatasetManifest;
  shards: ShardColumns[] = [];
  /** Bumped on every change, so callers can cache what they derive from it. */
  version = 0;
  private readonly classCodes = new Map<string, number>();
  private readonly classNames: string[] = [];
  private starts: number[] | null = null;
  /** Stem key → images with it (counted so a removal never forgets another's). Built on first need. */
  private stemSet: Map<number, number> | null = null;

  constructor(manifest: DatasetManifest) {
    this.manifest = manifest;
  }

  get size(): number {
    return this.manifest.counts.images;
  }

  code(name: string): number {
    let c = this.classCodes.get(name);
    if (c === undefined) {
      c = this.classNames.length;
      this.classNames.push(name);
      this.classCodes.set(name, c);
    }
    return c;
  }

  /** A class code if that name occurs (or occurred) in this index, else -1. */
  codeIfKnown(name: string): number {
    return this.classCodes.get(name) ?? -1;
  }

  className(code: number): string {
    return this.classNames[code];
  }

  /** Columns of a shard's records; subsets carried over from `previous` by id (new images: none). */
  columns(file: string, records: readonly StoredImage[], previous: ShardColumns | undefined, splitNames: readonly string[]): ShardColumns {
    const n = records.length;
    const ids = Float64Array.from(records, (r) => packId(r.id));
    const order = Uint16Array.from({ length: n }, (_, i) => i).sort((a, b) => ids[a] - ids[b]);
    const stems = new Uint32Array(2 * n);
    const label = new Int32Array(n).fill(-1);
    let labels: (Int32Array | undefined)[] | undefined;
    let targets: (Float64Array | undefined)[] | undefined;
    records.forEach((r, i) => {
      [stems[2 * i], stems[2 * i + 1]] = stemHalves(r.hash);
      if (r.label !== null) label[i] = this.code(r.label);
      if (r.labels !== undefined) (labels ??= new Array<Int32Array | undefined>(n))[i] = Int32Array.from(r.labels, (l) => this.code(l));
      if (r.targets !== undefined) (targets ??= new Array<Float64Array | undefined>(n))[i] = Float64Array.from(r.targets);
    });
    const shard: ShardColumns = {
      file,
      n: shardSlot(file),
      rev: Number(file.slice('shards/'.length + 7, -'.json'.length)),
      ids,
      sortedIds: Float64Array.from(order, (i) => ids[i]),
      sortedAt: order,
      stems,
      label,
      ...(labels ? { labels } : {}),
      ...(targets ? { targets } : {}),
      subsets: new Map(),
    };
    for (const name of splitNames) {
      const col = new Uint8Array(n).fill(NONE_CODE);
      const prev = previous?.subsets.get(name);
      if (prev && previous) for (let i = 0; i < n; i++) {
        const j = indexIn(previous, ids[i]);
        if (j >= 0) col[i] = prev[j];
      }
      shard.subsets.set(name, col);
    }
    return shard;
  }

  /**
   * Replaces the shard list (after a commit or a refresh). The stem screen changes only for the
   * shards that came or went, so a commit's cost does not grow with the dataset.
   */
  setShards(manifest: DatasetManifest, shards: ShardColumns[]): void {
    if (this.stemSet) {
      const next = new Set(shards);
      const prev = new Set(this.shards);
      for (const s of this.shards) if (!next.has(s)) this.screen(s, -1);
      for (const s of shards) if (!prev.has(s)) this.screen(s, 1);
    }
    this.manifest = manifest;
    this.shards = shards;
    this.starts = null;
    this.version += 1;
  }

  private screen(s: ShardColumns, by: 1 | -1): void {
    for (let i = 0; i < s.ids.length; i++) {
      const key = stemKey(s.stems[2 * i], s.stems[2 * i + 1]);
      const n = (this.stemSet!.get(key) ?? 0) + by;
      if (n <= 0) this.stemSet!.delete(key);
      else this.stemSet!.set(key, n);
    }
  }

  /** Sets a split's column in every shard from its file's lists. */
  setSplit(name: string, lists: { train: readonly string[]; val: readonly string[]; test: readonly string[] }): void {
    const where = new Map<number, number>();
    (['train', 'val', 'test'] as const).forEach((s) => {
      for (const id of lists[s]) where.set(packId(id), codeOf(s));
    });
    for (const s of this.shards) s.subsets.set(name, Uint8Array.from(s.ids, (id) => where.get(id) ?? NONE_CODE));
    this.version += 1;
  }

  dropSplit(name: string): void {
    for (const s of this.shards) s.subsets.delete(name);
    this.version += 1;
  }

  /** An image by id: a binary search in each shard (a thousand shards at a million images: microseconds). */
  locate(imageId: string): ImageRef | null {
    if (!/^img-[0-9a-z]{8}$/.test(imageId)) return null;
    const id = packId(imageId);
    for (const shard of this.shards) {
      const i = indexIn(shard, id);
      if (i >= 0) return { shard, i };
    }
    return null;
  }

  /** The image at a position of the dataset's order. */
  at(pos: number): ImageRef | null {
    if (pos < 0 || pos >= this.size) return null;
    const starts = this.startsOf();
    let lo = 0;
    let hi = this.shards.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= pos) lo = mid;
      else hi = mid - 1;
    }
    return { shard: this.shards[lo], i: pos - starts[lo] };
  }

  /** The position of an image in the dataset's order. */
  position(ref: ImageRef): number {
    return this.startsOf()[this.shards.indexOf(ref.shard)] + ref.i;
  }

  /**
   * Whether an image with this file stem is in the dataset (imports skip duplicates). A screen of
   * 53-bit keys, built on first need, answers most; a hit is confirmed on the stems themselves.
   */
  hasStem(stem: string): boolean {
    if (!this.stemSet) {
      this.stemSet = new Map();
      for (const s of this.shards) this.screen(s, 1);
    }
    const [hi, lo] = stemHalves(stem);
    if (!this.stemSet.has(stemKey(hi, lo))) return false;
    for (const s of this.shards) for (let i = 0; i < s.ids.length; i++) if (s.stems[2 * i] === hi && s.stems[2 * i + 1] === lo) return true;
    return false;
  }

  /** Subset of an image in a split (by name). */
  subset(ref: ImageRef, split: string): Subset {
    const col = ref.shard.subsets.get(split);
    return SUBSET_CODES[col ? col[ref.i] : NONE_CODE];
  }

  private startsOf(): number[] {
    if (!this.starts) {
      this.starts = [];
      let acc = 0;
      for (const s of this.shards) {
        this.starts.push(acc);
        acc += s.ids.length;
      }
    }
    return this.starts;
  }
}

/** Where a packed id sits in a shard's `ids`, or -1. */
function indexIn(shard: ShardColumns, id: number): number {
  let lo = 0;
  let hi = shard.sortedIds.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = shard.sortedIds[mid];
    if (v === id) return shard.sortedAt[mid];
    if (v < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}
