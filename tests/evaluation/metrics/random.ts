import { mulberry32 } from '../../../src/datasets/prng.ts';
/** Seeded data for the metric tests: the same numbers on every run, so a failure can be replayed. */
export { mulberry32 };

/**
 * N softmax rows over C classes and their targets. Logits are rounded to `1/quantum` so that scores
 * tie, and the true class gets a boost so that the model is better than chance.
 */
export function randomPredictions(seed: number, n: number, c: number, quantum = 4): { probs: Float64Array; targets: number[] } {
  const rand = mulberry32(seed);
  const probs = new Float64Array(n * c);
  const targets: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = Math.floor(rand() * c);
    targets.push(t);
    const logits = Array.from({ length: c }, (_, k) => Math.round((rand() * 4 + (k === t ? 1.5 : 0)) * quantum) / quantum);
    const max = Math.max(...logits);
    const e = logits.map((v) => Math.exp(v - max));
    const sum = e.reduce((a, b) => a + b, 0);
    for (let k = 0; k < c; k++) probs[i * c + k] = e[k] / sum;
  }
  return { probs, targets };
}

/** Rows of probabilities given as nested arrays, flattened row-major. */
export function rows(r: number[][]): Float64Array {
  return Float64Array.from(r.flat());
}
