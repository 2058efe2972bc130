import { describe, expect, it } from 'vitest';
import { DecodedCache, DEFAULT_DECODED_CACHE_BYTES } from '../../../src/training/data/decoded-cache.ts';

const img = (bytes: number) => ({ data: Buffer.alloc(bytes), width: 1, height: bytes / 3 });

describe('DecodedCache', () => {
  it('keeps images while they fit in the budget, first come first kept', () => {
    const c = new DecodedCache(100);
    expect(c.set('a', img(60))).toBe(true);
    expect(c.set('b', img(60))).toBe(false);
    expect(c.set('c', img(39))).toBe(true);
    expect(c.get('a')?.data.length).toBe(60);
    expect(c.get('b')).toBeUndefined();
    expect([c.count, c.sizeBytes]).toEqual([2, 99]);
    expect(c.set('a', img(60))).toBe(true);
    expect(c.sizeBytes).toBe(99);
  });

  it('remembers sources too large to keep, and refuses a bad budget', () => {
    const c = new DecodedCache(0);
    expect(c.set('a', img(3))).toBe(false);
    c.markLarge('x');
    expect([c.isLarge('x'), c.isLarge('a')]).toEqual([true, false]);
    expect(() => new DecodedCache(-1)).toThrow(RangeError);
    expect(DEFAULT_DECODED_CACHE_BYTES).toBeGreaterThan(0);
    expect(DEFAULT_DECODED_CACHE_BYTES).toBeLessThanOrEqual(1024 ** 3);
  });
});
