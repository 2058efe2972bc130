import { describe, expect, it } from 'vitest';
import { NO_GRADIENT, RULES } from '../../src/autodiff/index.ts';
import { CASES } from './cases.ts';
import { gradCheck } from './gradcheck.ts';

describe('gradient rules against finite differences', () => {
  it('has a case for every rule in the registry', () => {
    const covered = new Set(CASES.map((c) => c.op));
    const missing = Object.entries(RULES).filter(([op, e]) => e.rule !== NO_GRADIENT && !covered.has(op)).map(([op]) => op);
    expect(missing).toEqual([]);
  });

  for (const c of CASES) {
    it(c.label, async () => {
      const r = await gradCheck(c);
      expect(r.worst, `${c.label} (${r.dtype})`).toBeLessThanOrEqual(r.tol);
    });
  }
});
