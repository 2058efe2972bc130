import { checkInputs, oneVsRest, type Targets } from './inputs.ts';
import { rocAuc } from './roc.ts';

/**
 * One-vs-rest ROC AUC of every class, and their macro mean. A class without both positives and
 * negatives has no AUC (null) and is left out of the mean — where scikit-learn's
 * `roc_auc_score(multi_class='ovr')` refuses the whole computation; null when no class has one.
 */
export function rocAucOneVsRest(
  probs: Float32Array | Float64Array,
  targets: Targets,
  numClasses: number,
): { macro: number | null; perClass: (number | null)[] } {
  checkInputs(probs, targets, numClasses);
  const perClass: (number | null)[] = [];
  for (let k = 0; k < numClasses; k++) {
    const { scores, positive } = oneVsRest(probs, targets, numClasses, k);
    perClass.push(rocAuc(scores, positive));
  }
  return { macro: meanDefined(perClass), perClass };
}

/** Mean of the non-null values; null when there are none. */
export function meanDefined(values: readonly (number | null)[]): number | null {
  const defined = values.filter((v): v is number => v !== null);
  return defined.length === 0 ? null : defined.reduce((a, b) => a + b, 0) / defined.length;
}
