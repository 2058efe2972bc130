import { badInput } from '../../kernel/errors.ts';
import { MAX_CURVE_POINTS } from './schema.ts';

/**
 * Indices of at most `maxPoints` points of the polyline (xs, ys) chosen by Largest-Triangle-Three-
 * Buckets (Steinarsson, 2013): keep the first and last point, split the rest into equal buckets and
 * keep in each the point spanning the largest triangle with the previous kept point and the next
 * bucket's mean. It keeps the corners a chart's eye looks for, where taking every n-th point would
 * cut them off. Returns every index when the curve is already short enough.
 */
export function downsampleIndices(xs: readonly number[], ys: readonly number[], maxPoints = MAX_CURVE_POINTS): number[] {
  const n = xs.length;
  if (ys.length !== n) throw badInput(`downsample: x has ${n} points, y has ${ys.length}`);
  if (!Number.isInteger(maxPoints) || maxPoints < 3) throw badInput(`downsample: keep at least 3 points, got ${maxPoints}`);
  if (n <= maxPoints) return Array.from({ length: n }, (_, i) => i);
  const kept = [0];
  const bucket = (n - 2) / (maxPoints - 2);
  let a = 0;
  for (let b = 0; b < maxPoints - 2; b++) {
    const start = Math.floor(b * bucket) + 1;
    const end = Math.floor((b + 1) * bucket) + 1;
    // The next bucket's mean (the last point for the last bucket) is the triangle's third corner.
    const nextStart = end;
    const nextEnd = Math.min(Math.floor((b + 2) * bucket) + 1, n);
    let mx = 0;
    let my = 0;
    const span = Math.max(nextEnd - nextStart, 1);
    if (nextEnd > nextStart) {
      for (let j = nextStart; j < nextEnd; j++) {
        mx += xs[j];
        my += ys[j];
      }
    } else {
      mx = xs[n - 1];
      my = ys[n - 1];
    }
    mx /= span;
    my /= span;
    let best = start;
    let bestArea = -1;
    for (let j = start; j < end; j++) {
      const area = Math.abs((xs[a] - mx) * (ys[j] - ys[a]) - (xs[a] - xs[j]) * (my - ys[a]));
      if (area > bestArea) {
        bestArea = area;
        best = j;
      }
    }
    kept.push(best);
    a = best;
  }
  kept.push(n - 1);
  return kept;
}

/** The two coordinate arrays of a curve, downsampled together. */
export function downsampleCurve(xs: readonly number[], ys: readonly number[], maxPoints = MAX_CURVE_POINTS): [number[], number[]] {
  const idx = downsampleIndices(xs, ys, maxPoints);
  return [idx.map((i) => xs[i]), idx.map((i) => ys[i])];
}
