import { checkInputs, type Targets } from './inputs.ts';

/** scikit-learn's historical clipping bound: keeps log(0) out of the mean. */
export const LOG_LOSS_EPS = 1e-15;

/**
 * Mean negative log-likelihood of the true class, −(1/N) Σ log p̂(i, t_i). As scikit-learn (≤ 1.4)
 * does, each probability is first clipped to [eps, 1 − eps] and the row renormalised to sum to 1,
 * so a confident wrong answer costs at most about −log(1e-15) ≈ 34.5. 0 when there are no images.
 */
export function logLoss(probs: Float32Array | Float64Array, targets: Targets, numClasses: number, eps = LOG_LOSS_EPS): number {
  const n = checkInputs(probs, targets, numClasses);
  if (n === 0) return 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const base = i * numClasses;
    let rowSum = 0;
    for (let c = 0; c < numClasses; c++) rowSum += clip(probs[base + c], eps);
    sum -= Math.log(clip(probs[base + targets[i]], eps) / rowSum);
  }
  return sum / n;
}

function clip(p: number, eps: number): number {
  return Math.min(Math.max(p, eps), 1 - eps);
}
