import { z } from 'zod';
import { mulberry32, shuffleInPlace } from './prng.ts';

export const SUBSETS = ['train', 'val', 'test'] as const;
export type Subset = (typeof SUBSETS)[number];
/** 'none': the image takes no part in this split (it has no label). */
export type SplitSubset = Subset | 'none';

export const SplitRatiosSchema = z
  .object({ train: z.number().min(0).max(1000), val: z.number().min(0).max(1000), test: z.number().min(0).max(1000) })
  .strict()
  .refine((r) => r.train + r.val + r.test > 0, { message: 'ratios must not all be zero' });
export type SplitRatios = z.infer<typeof SplitRatiosSchema>;

export interface SubsetCounts {
  train: number;
  val: number;
  test: number;
}

export interface SplitOptions {
  /** Relative weights; they are normalized, so {8,1,1} and {0.8,0.1,0.1} are the same split. */
  ratios: SplitRatios;
  stratify: boolean;
  seed: number;
}

export interface SplitResult {
  assignment: Map<string, SplitSubset>;
  counts: SubsetCounts;
  per_class: Record<string, SubsetCounts>;
  /** Images left out ('none'): the unlabeled ones. */
  unassigned: number;
}

/**
 * Largest-remainder (Hamilton) apportionment of n items over the ratios: every subset gets the floor
 * of its exact quota, and the items left over go to the largest fractional parts (ties: train, val,
 * test), so the counts always add up to n and each is within 1 of its exact share.
 */
export function apportion(n: number, ratios: SplitRatios): SubsetCounts {
  const sum = ratios.train + ratios.val + ratios.test;
  const exact = SUBSETS.map((s) => (n * ratios[s]) / sum);
  const counts = exact.map(Math.floor);
  let left = n - counts.reduce((a, b) => a + b, 0);
  const order = [0, 1, 2].sort((a, b) => exact[b] - counts[b] - (exact[a] - counts[a]) || a - b);
  for (const i of order) {
    if (left === 0) break;
    counts[i] += 1;
    left -= 1;
  }
  return { train: counts[0], val: counts[1], test: counts[2] };
}

export interface SplitImage {
  id: string;
  label: string | null;
  /**
   * What orders the images before the seeded shuffle (default: the id). The dataset passes each
   * image's content hash: ids are drawn at random on import, so ordering by them would give the same
   * files imported again another split for the same seed.
   */
  key?: string;
}

/**
 * Assigns every image to train/val/test. With `stratify`, each class is apportioned on its own so
 * that every class keeps the ratios; without, the labeled images are apportioned as one group.
 * Reproducible: images are sorted by key (then id) before a seeded shuffle, so neither the input
 * order, the machine, nor (with content keys) a re-import changes the result; another seed gives
 * another split.
 */
export function computeSplit(images: SplitImage[], opts: SplitOptions): SplitResult {
  const ratios = SplitRatiosSchema.parse(opts.ratios);
  const random = mulberry32(opts.seed);
  const assignment = new Map<string, SplitSubset>();
  const byClass = new Map<string, string[]>();
  const keyOf = new Map(images.map((img) => [img.id, img.key ?? img.id]));
  const byKey = (a: string, b: string): number => {
    const [ka, kb] = [keyOf.get(a) ?? a, keyOf.get(b) ?? b];
    return ka < kb ? -1 : ka > kb ? 1 : a < b ? -1 : a > b ? 1 : 0;
  };
  let unassigned = 0;
  for (const img of images) {
    if (img.label === null) {
      assignment.set(img.id, 'none');
      unassigned += 1;
      continue;
    }
    const ids = byClass.get(img.label) ?? [];
    ids.push(img.id);
    byClass.set(img.label, ids);
  }
  const classes = [...byClass.keys()].sort();
  const groups = opts.stratify ? classes.map((c) => byClass.get(c) ?? []) : [classes.flatMap((c) => byClass.get(c) ?? [])];
  for (const group of groups) {
    const ids = shuffleInPlace([...group].sort(byKey), random);
    const quota = apportion(ids.length, ratios);
    let at = 0;
    for (const subset of SUBSETS) {
      for (const id of ids.slice(at, at + quota[subset])) assignment.set(id, subset);
      at += quota[subset];
    }
  }
  const counts: SubsetCounts = { train: 0, val: 0, test: 0 };
  // A Map, not an object literal: a class may be named '__proto__'.
  const perClass = new Map<string, SubsetCounts>(classes.map((c) => [c, { train: 0, val: 0, test: 0 }]));
  for (const img of images) {
    const subset = assignment.get(img.id);
    const row = img.label === null ? undefined : perClass.get(img.label);
    if (row === undefined || subset === undefined || subset === 'none') continue;
    counts[subset] += 1;
    row[subset] += 1;
  }
  return { assignment, counts, per_class: Object.fromEntries(perClass), unassigned };
}
