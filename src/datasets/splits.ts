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
  const byClass = new Map<string, SplitImage[]>();
  let unassigned = 0;
  for (const img of images) {
    if (img.label === null) {
      assignment.set(img.id, 'none');
      unassigned += 1;
      continue;
    }
    const group = byClass.get(img.label) ?? [];
    group.push(img);
    byClass.set(img.label, group);
  }
  const classes = [...byClass.keys()].sort();
  const groups = opts.stratify ? classes.map((c) => byClass.get(c) ?? []) : [classes.flatMap((c) => byClass.get(c) ?? [])];
  for (const group of groups) {
    const ordered = seededOrder(group, random);
    const quota = apportion(ordered.length, ratios);
    let at = 0;
    for (const subset of SUBSETS) {
      for (let k = at; k < at + quota[subset]; k++) assignment.set(ordered[k].id, subset);
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

/** The normalized ratios in SUBSETS order, subsets with a zero ratio marked out. */
function normalized(ratios: SplitRatios): number[] {
  const sum = ratios.train + ratios.val + ratios.test;
  return SUBSETS.map((s) => ratios[s] / sum);
}

/** Sorts ids by their key (then id) and shuffles them with the seeded generator: the reproducible order. */
function seededOrder<T extends { id: string; key?: string }>(items: readonly T[], random: () => number): T[] {
  const sorted = [...items].sort((a, b) => {
    const [ka, kb] = [a.key ?? a.id, b.key ?? b.id];
    return ka < kb ? -1 : ka > kb ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
  return shuffleInPlace(sorted, random);
}

/** Index of the largest value among the allowed subsets; exact ties go to `tie` (then random). */
function argmaxAllowed(values: readonly number[], allowed: readonly boolean[], tie: (candidates: number[]) => number): number {
  let best = -Infinity;
  let candidates: number[] = [];
  values.forEach((v, j) => {
    if (!allowed[j]) return;
    if (v > best + 1e-9) {
      best = v;
      candidates = [j];
    } else if (Math.abs(v - best) <= 1e-9) candidates.push(j);
  });
  return candidates.length === 1 ? candidates[0] : tie(candidates);
}

function tally(images: readonly { id: string }[], assignment: Map<string, SplitSubset>): { counts: SubsetCounts; unassigned: number } {
  const counts: SubsetCounts = { train: 0, val: 0, test: 0 };
  let unassigned = 0;
  for (const img of images) {
    const s = assignment.get(img.id);
    if (s === undefined || s === 'none') unassigned += 1;
    else counts[s] += 1;
  }
  return { counts, unassigned };
}

export interface MultilabelSplitImage {
  id: string;
  /** The labels present ([] = labeled, none present); null = unlabeled, left out. */
  labels: readonly string[] | null;
  key?: string;
}

/**
 * Multi-label split. With `stratify`, iterative stratification (Sechidis, Tsoumakas & Vlahavas
 * 2011, "On the stratification of multi-label data", Algorithm 1): every subset wants its ratio of
 * the images and of each label's images; the label with the fewest images left is placed first
 * (rare labels cannot be starved by common ones), each of its images going to the subset that
 * wants that label most, ties to the subset that wants the most images, then at random. Images
 * labeled with no label go last, by the subsets' wanted image counts. Without `stratify`, the
 * labeled images are apportioned as one group. Reproducible as `computeSplit` is: sorted by key,
 * then a seeded shuffle; the seed also breaks the ties. `per_class` counts each image under each
 * of its labels.
 */
export function computeMultilabelSplit(images: readonly MultilabelSplitImage[], opts: SplitOptions): SplitResult {
  const ratios = SplitRatiosSchema.parse(opts.ratios);
  const r = normalized(ratios);
  const allowed = r.map((x) => x > 0);
  const random = mulberry32(opts.seed);
  const pickRandom = (c: number[]) => c[Math.floor(random() * c.length)];
  const assignment = new Map<string, SplitSubset>();
  const labeled: MultilabelSplitImage[] = [];
  for (const img of images) {
    if (img.labels === null) assignment.set(img.id, 'none');
    else labeled.push(img);
  }
  const order = seededOrder(labeled, random);
  if (!opts.stratify) {
    const quota = apportion(order.length, ratios);
    let at = 0;
    for (const subset of SUBSETS) {
      for (const img of order.slice(at, at + quota[subset])) assignment.set(img.id, subset);
      at += quota[subset];
    }
  } else {
    // Wanted counts: of images per subset, and of each label's images per subset (fractional, as in the paper).
    const wanted = r.map((x) => x * order.length);
    const byLabel = new Map<string, MultilabelSplitImage[]>();
    for (const img of order) for (const l of new Set(img.labels)) (byLabel.get(l) ?? byLabel.set(l, []).get(l))?.push(img);
    const wantedByLabel = new Map<string, number[]>([...byLabel].map(([l, list]) => [l, r.map((x) => x * list.length)]));
    const remaining = new Map<string, number>([...byLabel].map(([l, list]) => [l, list.length]));
    const place = (img: MultilabelSplitImage, j: number) => {
      assignment.set(img.id, SUBSETS[j]);
      wanted[j] -= 1;
      for (const l of new Set(img.labels)) {
        const w = wantedByLabel.get(l);
        if (w) w[j] -= 1;
        remaining.set(l, (remaining.get(l) ?? 1) - 1);
      }
    };
    const labelNames = [...byLabel.keys()].sort();
    for (;;) {
      let fewest = Infinity;
      let rarest: string[] = [];
      for (const l of labelNames) {
        const n = remaining.get(l) ?? 0;
        if (n <= 0) continue;
        if (n < fewest) {
          fewest = n;
          rarest = [l];
        } else if (n === fewest) rarest.push(l);
      }
      if (rarest.length === 0) break;
      const label = rarest.length === 1 ? rarest[0] : rarest[Math.floor(random() * rarest.length)];
      const w = wantedByLabel.get(label) ?? r.map(() => 0);
      for (const img of byLabel.get(label) ?? []) {
        if (assignment.has(img.id)) continue;
        place(img, argmaxAllowed(w, allowed, (c) => argmaxAllowed(wanted, [0, 1, 2].map((j) => c.includes(j)), pickRandom)));
      }
    }
    for (const img of order) if (!assignment.has(img.id)) place(img, argmaxAllowed(wanted, allowed, pickRandom));
  }
  const perClass = new Map<string, SubsetCounts>();
  for (const img of labeled) {
    const subset = assignment.get(img.id);
    if (subset === undefined || subset === 'none') continue;
    for (const l of new Set(img.labels)) {
      const row = perClass.get(l) ?? perClass.set(l, { train: 0, val: 0, test: 0 }).get(l);
      if (row) row[subset] += 1;
    }
  }
  const sortedPerClass = [...perClass].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { assignment, ...tally(images, assignment), per_class: Object.fromEntries(sortedPerClass) };
}

export interface RegressionSplitImage {
  id: string;
  /** The value stratified on (the first target); null = unlabeled, left out. */
  value: number | null;
  key?: string;
}

/**
 * How many quantile bins a regression split stratifies on: up to 10, and few enough that the
 * smallest non-zero subset gets about two images of each bin.
 */
export function regressionBins(n: number, ratios: SplitRatios): number {
  const r = normalized(SplitRatiosSchema.parse(ratios)).filter((x) => x > 0);
  return Math.max(1, Math.min(10, Math.floor((n * Math.min(...r)) / 2)));
}

/**
 * Regression split. With `stratify`, the images are ranked by value and cut into equal-count
 * quantile bins (`regressionBins`), each apportioned on its own after a seeded shuffle, so every
 * subset sees the whole range of the target; a bin's leftover images go to the subsets furthest
 * behind their share of all images so far (so the totals keep the ratios as well as one group
 * would). Without `stratify`, one group. `per_class` is left empty (the service counts per target).
 */
export function computeRegressionSplit(images: readonly RegressionSplitImage[], opts: SplitOptions): SplitResult {
  const ratios = SplitRatiosSchema.parse(opts.ratios);
  const r = normalized(ratios);
  const random = mulberry32(opts.seed);
  const assignment = new Map<string, SplitSubset>();
  const labeled: (RegressionSplitImage & { value: number })[] = [];
  for (const img of images) {
    if (img.value === null || !Number.isFinite(img.value)) assignment.set(img.id, 'none');
    else labeled.push({ ...img, value: img.value });
  }
  // Rank by value, ties by the reproducible order (key, then id).
  const ranked = [...labeled].sort((a, b) => a.value - b.value || ((a.key ?? a.id) < (b.key ?? b.id) ? -1 : (a.key ?? a.id) > (b.key ?? b.id) ? 1 : a.id < b.id ? -1 : 1));
  const nb = opts.stratify ? regressionBins(ranked.length, ratios) : 1;
  const given = [0, 0, 0];
  let seen = 0;
  for (let b = 0; b < nb; b++) {
    const bin = ranked.slice(Math.floor((b * ranked.length) / nb), Math.floor(((b + 1) * ranked.length) / nb));
    const ids = seededOrder(bin, random);
    seen += ids.length;
    const exact = r.map((x) => x * ids.length);
    const quota = exact.map(Math.floor);
    let left = ids.length - quota.reduce((a, c) => a + c, 0);
    // Leftovers: the subsets most behind their share of everything placed so far (ties: train, val, test).
    const behind = r.map((x, j) => x * seen - (given[j] + quota[j]));
    const order = [0, 1, 2].filter((j) => r[j] > 0).sort((a, c) => behind[c] - behind[a] || a - c);
    for (const j of order) {
      if (left === 0) break;
      quota[j] += 1;
      left -= 1;
    }
    let at = 0;
    SUBSETS.forEach((subset, j) => {
      for (const img of ids.slice(at, at + quota[j])) assignment.set(img.id, subset);
      at += quota[j];
      given[j] += quota[j];
    });
  }
  return { assignment, ...tally(images, assignment), per_class: {} };
}
