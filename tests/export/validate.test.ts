import { describe, expect, it } from 'vitest';
import { compareOutputs, judge, TOLERANCES, validateVariant } from '../../src/export/validate.ts';

describe('compareOutputs', () => {
  it('computes max abs error, RMSE, mean cosine and argmax agreement by hand', () => {
    const ref = [0.7, 0.2, 0.1, 0.1, 0.3, 0.6];
    const act = [0.6, 0.3, 0.1, 0.1, 0.6, 0.3];
    const c = compareOutputs(ref, act, 3);
    expect(c.count).toBe(2);
    expect(c.max_abs_error).toBeCloseTo(0.3, 12);
    // squared errors: .01 .01 0 0 .09 .09 → mean .2/6
    expect(c.rmse).toBeCloseTo(Math.sqrt(0.2 / 6), 12);
    const cos1 = (0.42 + 0.06 + 0.01) / Math.sqrt(0.54 * 0.46);
    const cos2 = (0.01 + 0.18 + 0.18) / Math.sqrt(0.46 * 0.46);
    expect(c.cosine).toBeCloseTo((cos1 + cos2) / 2, 12);
    expect(c.argmax_agreement).toBe(0.5);
  });

  it('identical outputs are perfect; NaN fails every criterion', () => {
    const same = compareOutputs([1, 0, 0, 1], [1, 0, 0, 1], 2);
    expect(same).toEqual({ count: 2, max_abs_error: 0, rmse: 0, cosine: 1, argmax_agreement: 1 });
    const v = validateVariant('fp32', [1, 0], [NaN, 0], 2);
    expect(v.passed).toBe(false);
    expect(Number.isNaN(v.max_abs_error)).toBe(true);
  });

  it('refuses mismatched sizes and rows', () => {
    expect(() => compareOutputs([1, 2], [1], 2)).toThrow(/size/);
    expect(() => compareOutputs([1, 2, 3], [1, 2, 3], 2)).toThrow(/rows/);
    expect(() => compareOutputs([], [], 2)).toThrow(/nothing/);
  });
});

describe('judge', () => {
  it('applies the per-variant tolerances and says what failed', () => {
    const base = { count: 100, max_abs_error: 5e-4, rmse: 1e-4, cosine: 0.9995, argmax_agreement: 0.99 };
    expect(judge(base, TOLERANCES.fp32).failures).toEqual(['max abs error 0.0005 > 0.0001', 'argmax agreement 0.99 < 1']);
    expect(judge(base, TOLERANCES.fp16).passed).toBe(true);
    expect(judge({ ...base, cosine: 0.998 }, TOLERANCES.fp16).failures).toEqual(['cosine 0.998 < 0.999']);
    expect(judge({ ...base, cosine: 0.995, argmax_agreement: 0.96 }, TOLERANCES.int8).passed).toBe(true);
    expect(judge({ ...base, argmax_agreement: 0.9 }, TOLERANCES.int8).passed).toBe(false);
  });
});
