import { badInput } from '../../kernel/errors.ts';

/**
 * The shared input of every metric: `probs` is row-major `N × C` (one row of class probabilities per
 * image), `targets[i]` the true class index of image i. Integer class indices, not labels, keep the
 * metrics independent of how classes are named.
 */
export type Targets = Int32Array | readonly number[];

/** Checks the shapes once so that each metric can index without guards; returns N. */
export function checkInputs(probs: Float32Array | Float64Array, targets: Targets, numClasses: number): number {
  if (!Number.isInteger(numClasses) || numClasses < 1) throw badInput(`number of classes must be a positive integer, got ${numClasses}`);
  const n = targets.length;
  if (probs.length !== n * numClasses) {
    throw badInput(`probabilities hold ${probs.length} values, expected ${n} images × ${numClasses} classes = ${n * numClasses}`);
  }
  for (let i = 0; i < n; i++) {
    const t = targets[i];
    if (!Number.isInteger(t) || t < 0 || t >= numClasses) throw badInput(`target ${i} is ${t}, not a class index in [0, ${numClasses})`);
  }
  // Logits passed by mistake would still rank and argmax correctly but break log loss and
  // calibration silently, so anything outside [0, 1] (NaN included) is refused here.
  for (let j = 0; j < probs.length; j++) {
    const p = probs[j];
    if (!(p >= 0 && p <= 1)) throw badInput(`probability ${j} (image ${Math.floor(j / numClasses)}) is ${p}, not in [0, 1]`);
  }
  return n;
}

/**
 * The predicted class of each row. Ties go to the lowest index, as numpy's argmax does, so the
 * top-1 of `topKAccuracy` and `accuracy` always agree.
 */
export function argmaxRows(probs: Float32Array | Float64Array, numClasses: number): Int32Array {
  const n = Math.floor(probs.length / numClasses);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const base = i * numClasses;
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (probs[base + c] > probs[base + best]) best = c;
    out[i] = best;
  }
  return out;
}

/** The scores and 0/1 truth of the one-vs-rest problem "class k against all others". */
export function oneVsRest(
  probs: Float32Array | Float64Array,
  targets: Targets,
  numClasses: number,
  k: number,
): { scores: Float64Array; positive: Uint8Array } {
  const n = targets.length;
  const scores = new Float64Array(n);
  const positive = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    scores[i] = probs[i * numClasses + k];
    positive[i] = targets[i] === k ? 1 : 0;
  }
  return { scores, positive };
}
