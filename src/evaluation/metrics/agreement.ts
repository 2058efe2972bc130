import { total, type ConfusionMatrix } from './confusion.ts';

/**
 * Mean recall over the classes that have support (scikit-learn's `balanced_accuracy_score`,
 * adjusted=false): classes that are only predicted have no recall and are left out. 0 when empty.
 */
export function balancedAccuracy(m: ConfusionMatrix): number {
  let sum = 0;
  let count = 0;
  for (let k = 0; k < m.length; k++) {
    const support = m[k].reduce((a, b) => a + b, 0);
    if (support === 0) continue;
    sum += m[k][k] / support;
    count++;
  }
  return count === 0 ? 0 : sum / count;
}

/**
 * Cohen's kappa κ = (p_o − p_e) / (1 − p_e), with p_o the observed agreement (trace / N) and
 * p_e = Σ_k rowSum_k · colSum_k / N² the agreement expected by chance from the marginals.
 * Undefined (null) when p_e = 1 — targets and predictions both all one class — where scikit-learn
 * returns NaN; null also for an empty matrix.
 */
export function cohenKappa(m: ConfusionMatrix): number | null {
  const n = total(m);
  if (n === 0) return null;
  let trace = 0;
  let chance = 0;
  for (let k = 0; k < m.length; k++) {
    trace += m[k][k];
    let row = 0;
    let col = 0;
    for (let j = 0; j < m.length; j++) {
      row += m[k][j];
      col += m[j][k];
    }
    chance += row * col;
  }
  const po = trace / n;
  const pe = chance / (n * n);
  return pe === 1 ? null : (po - pe) / (1 - pe);
}
