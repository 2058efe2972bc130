import { badInput } from '../../kernel/errors.ts';
import { checkInputs, type Targets } from './inputs.ts';

/**
 * Fraction of images whose true class is among the k highest scores. The true class's rank counts
 * the classes scoring strictly higher plus those tying with it at a lower index — the same
 * tie-break as argmax, so k = 1 equals `accuracy`.
 */
export function topKAccuracy(probs: Float32Array | Float64Array, targets: Targets, numClasses: number, k: number): number {
  const n = checkInputs(probs, targets, numClasses);
  if (!Number.isInteger(k) || k < 1) throw badInput(`k must be a positive integer, got ${k}`);
  if (n === 0) return 0;
  let hits = 0;
  for (let i = 0; i < n; i++) {
    const base = i * numClasses;
    const t = targets[i];
    const s = probs[base + t];
    let ahead = 0;
    for (let c = 0; c < numClasses; c++) {
      const v = probs[base + c];
      if (v > s || (v === s && c < t)) ahead++;
    }
    if (ahead < k) hits++;
  }
  return hits / n;
}

/** The k values reported for C classes: 3 and 5, each only when C > k (otherwise it is trivially 1). */
export function reportedTopK(numClasses: number): number[] {
  return [3, 5].filter((k) => numClasses > k);
}
