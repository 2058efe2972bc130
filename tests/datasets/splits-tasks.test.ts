import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/datasets/prng.ts';
import { computeMultilabelSplit, computeRegressionSplit, regressionBins, type MultilabelSplitImage, type SplitResult } from '../../src/datasets/splits.ts';

const ratios = { train: 0.7, val: 0.15, test: 0.15 };
const SUBS = ['train', 'val', 'test'] as const;

/**
 * A generated multi-label dataset: 8 labels with very different frequencies (a few common, a few
 * rare) and correlations (label b mostly comes with a), some images with no label, some unlabeled.
 */
function multilabelImages(n: number, seed: number): MultilabelSplitImage[] {
  const rnd = mulberry32(seed);
  const freq = { a: 0.5, b: 0.0, c: 0.3, d: 0.15, e: 0.08, f: 0.05, g: 0.03, h: 0.02 };
  const out: MultilabelSplitImage[] = [];
  for (let i = 0; i < n; i++) {
    const labels = Object.entries(freq)
      .filter(([, p]) => rnd() < p)
      .map(([l]) => l);
    if (labels.includes('a') && rnd() < 0.6) labels.push('b');
    out.push({ id: `img-${i}`, key: `k${(i * 7919) % n}`, labels: i % 50 === 49 ? null : labels });
  }
  return out;
}

/** Per label, the largest gap between a subset's share of that label's images and its ratio. */
function worstLabelGap(imgs: MultilabelSplitImage[], split: SplitResult): { gap: number; label: string } {
  let worst = { gap: 0, label: '' };
  for (const [label, c] of Object.entries(split.per_class)) {
    const total = c.train + c.val + c.test;
    for (const s of SUBS) {
      const gap = Math.abs(c[s] / total - ratios[s]);
      if (gap > worst.gap) worst = { gap, label };
    }
  }
  return worst;
}

describe('multi-label split: iterative stratification', () => {
  const imgs = multilabelImages(1000, 5);

  it('keeps every label’s share in each subset close to the ratios, and the subset sizes too', () => {
    const split = computeMultilabelSplit(imgs, { ratios, stratify: true, seed: 11 });
    // Rarest label: h (~20 images) — an exact share is 14/3/3; we allow one image either way.
    for (const [label, c] of Object.entries(split.per_class)) {
      const total = c.train + c.val + c.test;
      for (const s of SUBS) expect(Math.abs(c[s] - total * ratios[s]), `${label} ${s}`).toBeLessThanOrEqual(Math.max(1.5, total * 0.02));
    }
    expect(worstLabelGap(imgs, split).gap).toBeLessThan(0.05);
    const labeled = imgs.filter((i) => i.labels !== null).length;
    expect(split.unassigned).toBe(imgs.length - labeled);
    for (const s of SUBS) expect(Math.abs(split.counts[s] - labeled * ratios[s])).toBeLessThanOrEqual(3);
    expect(split.assignment.get('img-49')).toBe('none');
    // per_class agrees with the assignment
    const aVal = imgs.filter((i) => i.labels?.includes('a') && split.assignment.get(i.id) === 'val').length;
    expect(split.per_class.a.val).toBe(aVal);
  });

  it('does better per label than one unstratified group does', () => {
    const strat = worstLabelGap(imgs, computeMultilabelSplit(imgs, { ratios, stratify: true, seed: 3 })).gap;
    const plain = worstLabelGap(imgs, computeMultilabelSplit(imgs, { ratios, stratify: false, seed: 3 })).gap;
    expect(strat).toBeLessThan(plain);
  });

  it('is reproducible by seed whatever the input order, and another seed gives another split', () => {
    const one = computeMultilabelSplit(imgs, { ratios, stratify: true, seed: 42 });
    const two = computeMultilabelSplit([...imgs].reverse(), { ratios, stratify: true, seed: 42 });
    expect([...two.assignment].sort()).toEqual([...one.assignment].sort());
    const other = computeMultilabelSplit(imgs, { ratios, stratify: true, seed: 43 });
    expect(imgs.filter((i) => one.assignment.get(i.id) !== other.assignment.get(i.id)).length).toBeGreaterThan(100);
  });

  it('leaves a zero-ratio subset empty and places images with no label', () => {
    const split = computeMultilabelSplit(imgs, { ratios: { train: 0.8, val: 0.2, test: 0 }, stratify: true, seed: 1 });
    expect(split.counts.test).toBe(0);
    const empty = imgs.filter((i) => i.labels !== null && i.labels.length === 0);
    expect(empty.length).toBeGreaterThan(0);
    expect(empty.every((i) => ['train', 'val'].includes(split.assignment.get(i.id) ?? ''))).toBe(true);
  });
});

describe('regression split: quantile bins', () => {
  // A skewed target: most values small, a long tail.
  const rnd = mulberry32(9);
  const imgs = Array.from({ length: 400 }, (_, i) => ({ id: `img-${i}`, key: `k${i}`, value: i % 40 === 0 ? null : Math.exp(rnd() * 5) }));

  it('spreads every quantile of the target over the subsets, keeps the sizes, and leaves unlabeled out', () => {
    const split = computeRegressionSplit(imgs, { ratios, stratify: true, seed: 2 });
    const labeled = imgs.filter((i) => i.value !== null);
    expect(split.unassigned).toBe(imgs.length - labeled.length);
    for (const s of SUBS) expect(Math.abs(split.counts[s] - labeled.length * ratios[s])).toBeLessThan(1);
    // Each decile of the target lands in the subsets in about the ratios.
    const sorted = [...labeled].sort((a, b) => (a.value ?? 0) - (b.value ?? 0));
    for (let d = 0; d < 10; d++) {
      const part = sorted.slice((d * sorted.length) / 10, ((d + 1) * sorted.length) / 10);
      const val = part.filter((i) => split.assignment.get(i.id) === 'val').length;
      expect(Math.abs(val - part.length * ratios.val)).toBeLessThanOrEqual(1);
    }
    expect(regressionBins(labeled.length, ratios)).toBe(10);
    expect(regressionBins(20, ratios)).toBe(1);
  });

  it('is reproducible by seed', () => {
    const one = computeRegressionSplit(imgs, { ratios, stratify: true, seed: 5 });
    const two = computeRegressionSplit([...imgs].reverse(), { ratios, stratify: true, seed: 5 });
    expect([...two.assignment].sort()).toEqual([...one.assignment].sort());
  });
});
