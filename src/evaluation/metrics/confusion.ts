import { argmaxRows, checkInputs, type Targets } from './inputs.ts';

/** `matrix[t][p]`: how many images of true class t were predicted as class p (scikit-learn's layout). */
export type ConfusionMatrix = number[][];

export function confusionMatrix(targets: Targets, predictions: Targets, numClasses: number): ConfusionMatrix {
  const m: ConfusionMatrix = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < targets.length; i++) m[targets[i]][predictions[i]]++;
  return m;
}

/** The confusion matrix of the argmax predictions. */
export function confusionFromProbs(probs: Float32Array | Float64Array, targets: Targets, numClasses: number): ConfusionMatrix {
  checkInputs(probs, targets, numClasses);
  return confusionMatrix(targets, argmaxRows(probs, numClasses), numClasses);
}

export function total(m: ConfusionMatrix): number {
  let s = 0;
  for (const row of m) for (const v of row) s += v;
  return s;
}

/** Fraction of images on the diagonal; 0 for an empty matrix. */
export function accuracyOf(m: ConfusionMatrix): number {
  const n = total(m);
  let hit = 0;
  for (let c = 0; c < m.length; c++) hit += m[c][c];
  return n === 0 ? 0 : hit / n;
}

export function accuracy(probs: Float32Array | Float64Array, targets: Targets, numClasses: number): number {
  return accuracyOf(confusionFromProbs(probs, targets, numClasses));
}
