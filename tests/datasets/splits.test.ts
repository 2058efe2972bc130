import { describe, expect, it } from 'vitest';
import { apportion, computeSplit } from '../../src/datasets/splits.ts';

function images(perClass: Record<string, number> | [string, number][], unlabeled = 0) {
  const out: { id: string; label: string | null }[] = [];
  for (const [label, n] of Array.isArray(perClass) ? perClass : Object.entries(perClass)) for (let i = 0; i < n; i++) out.push({ id: `img-${label}${i}`, label });
  for (let i = 0; i < unlabeled; i++) out.push({ id: `img-none${i}`, label: null });
  return out;
}

const ratios = { train: 0.7, val: 0.2, test: 0.1 };

describe('apportion', () => {
  it('gives the largest remainders the leftover items and always adds up', () => {
    expect(apportion(10, ratios)).toEqual({ train: 7, val: 2, test: 1 });
    expect(apportion(7, ratios)).toEqual({ train: 5, val: 1, test: 1 }); // 4.9, 1.4, 0.7
    expect(apportion(1, ratios)).toEqual({ train: 1, val: 0, test: 0 });
    expect(apportion(0, ratios)).toEqual({ train: 0, val: 0, test: 0 });
    expect(apportion(9, { train: 8, val: 1, test: 1 })).toEqual({ train: 7, val: 1, test: 1 }); // weights are normalized
    for (let n = 0; n < 60; n++) {
      const c = apportion(n, { train: 0.55, val: 0.3, test: 0.15 });
      expect(c.train + c.val + c.test).toBe(n);
      expect(Math.abs(c.val - n * 0.3)).toBeLessThan(1);
    }
  });
});

describe('computeSplit', () => {
  it('keeps the ratios in every class when stratified, unlabeled images left out', () => {
    const imgs = images({ cat: 50, dog: 20, bird: 7 }, 3);
    const split = computeSplit(imgs, { ratios, stratify: true, seed: 1 });
    expect(split.per_class).toEqual({
      bird: { train: 5, val: 1, test: 1 },
      cat: { train: 35, val: 10, test: 5 },
      dog: { train: 14, val: 4, test: 2 },
    });
    expect(split.counts).toEqual({ train: 54, val: 15, test: 8 });
    expect(split.unassigned).toBe(3);
    expect(split.assignment.get('img-none0')).toBe('none');
    expect(split.assignment.size).toBe(imgs.length);
    // per_class agrees with the assignment itself
    const catVal = imgs.filter((i) => i.label === 'cat' && split.assignment.get(i.id) === 'val').length;
    expect(catVal).toBe(10);
  });

  it('apportions all labeled images as one group without stratification', () => {
    const split = computeSplit(images({ a: 10, b: 10 }), { ratios: { train: 1, val: 1, test: 0 }, stratify: false, seed: 3 });
    expect(split.counts).toEqual({ train: 10, val: 10, test: 0 });
    expect(split.per_class.a.train + split.per_class.b.train).toBe(10);
  });

  it('is reproducible from the seed, whatever the input order', () => {
    const imgs = images({ a: 40, b: 40 });
    const one = computeSplit(imgs, { ratios, stratify: true, seed: 42 });
    const two = computeSplit([...imgs].reverse(), { ratios, stratify: true, seed: 42 });
    expect([...two.assignment].sort()).toEqual([...one.assignment].sort());
  });

  it('orders by content key where given, so the same files under new ids get the same split', () => {
    const imgs = images({ a: 30, b: 30 }).map((img, i) => ({ ...img, key: `hash${String((i * 37) % 60).padStart(2, '0')}` }));
    // a re-import: the same files (keys) under other random ids, listed in another order
    const reimported = imgs.map((img, i) => ({ ...img, id: `img-new${(i * 13) % 60}-${img.label}` })).reverse();
    const one = computeSplit(imgs, { ratios, stratify: true, seed: 7 });
    const two = computeSplit(reimported, { ratios, stratify: true, seed: 7 });
    const byKey = (split: typeof one, list: typeof imgs) => Object.fromEntries(list.map((img) => [img.key, split.assignment.get(img.id)]));
    expect(byKey(two, reimported)).toEqual(byKey(one, imgs));
    // without keys the ids decide, and the new ids give another split
    const plain = computeSplit(reimported.map(({ key: _k, ...rest }) => rest), { ratios, stratify: true, seed: 7 });
    expect(byKey(plain, reimported)).not.toEqual(byKey(one, imgs));
  });

  it('gives another split for another seed', () => {
    const imgs = images({ a: 40, b: 40 });
    const one = computeSplit(imgs, { ratios, stratify: true, seed: 42 });
    const two = computeSplit(imgs, { ratios, stratify: true, seed: 43 });
    const differ = imgs.filter((i) => one.assignment.get(i.id) !== two.assignment.get(i.id)).length;
    expect(differ).toBeGreaterThan(10);
    expect(two.per_class).toEqual(one.per_class);
  });

  it('survives class names that are object keys', () => {
    const split = computeSplit(images([['__proto__', 3], ['constructor', 2]]), { ratios, stratify: true, seed: 0 });
    expect(Object.keys(split.per_class).sort()).toEqual(['__proto__', 'constructor']);
    const ctor = new Map(Object.entries(split.per_class)).get('constructor');
    expect(ctor && ctor.train + ctor.val + ctor.test).toBe(2);
  });

  it('refuses ratios that are all zero or negative', () => {
    expect(() => computeSplit(images({ a: 2 }), { ratios: { train: 0, val: 0, test: 0 }, stratify: true, seed: 0 })).toThrow();
    expect(() => computeSplit(images({ a: 2 }), { ratios: { train: -1, val: 1, test: 1 }, stratify: true, seed: 0 })).toThrow();
  });
});
