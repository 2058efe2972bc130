import type { ConfusionMatrix } from './confusion.ts';

export interface ClassScores {
  precision: number;
  recall: number;
  f1: number;
  /** Number of images whose true class is this one. */
  support: number;
}

export interface AveragedScores {
  precision: number;
  recall: number;
  f1: number;
}

/**
 * Precision TP/(TP+FP), recall TP/(TP+FN), F1 = 2TP/(2TP+FP+FN) for each class, with every 0/0
 * taken as 0 (scikit-learn's `zero_division=0`). F1 is written with counts so that it stays 0, not
 * undefined, for a class that is never predicted.
 */
export function perClassScores(m: ConfusionMatrix): ClassScores[] {
  const c = m.length;
  const colSums = new Array<number>(c).fill(0);
  for (const row of m) for (let p = 0; p < c; p++) colSums[p] += row[p];
  return m.map((row, k) => {
    const tp = row[k];
    const support = row.reduce((a, b) => a + b, 0);
    const fp = colSums[k] - tp;
    const fn = support - tp;
    return {
      precision: safeDiv(tp, tp + fp),
      recall: safeDiv(tp, support),
      f1: safeDiv(2 * tp, 2 * tp + fp + fn),
      support,
    };
  });
}

/**
 * The classes an average runs over: those that occur in the targets or the predictions, as
 * scikit-learn does when `labels` is not given. A class absent from both says nothing about the
 * model, and counting it as 0 would drag the macro average down for a gap in the test set.
 */
export function presentClasses(m: ConfusionMatrix): number[] {
  const out: number[] = [];
  for (let k = 0; k < m.length; k++) {
    let rowOrCol = 0;
    for (let j = 0; j < m.length; j++) rowOrCol += m[k][j] + m[j][k];
    if (rowOrCol > 0) out.push(k);
  }
  return out;
}

/** Unweighted mean over the present classes. */
export function macroAverage(m: ConfusionMatrix): AveragedScores {
  const scores = perClassScores(m);
  const present = presentClasses(m);
  const mean = (key: keyof AveragedScores) => safeDiv(present.reduce((a, k) => a + scores[k][key], 0), present.length);
  return { precision: mean('precision'), recall: mean('recall'), f1: mean('f1') };
}

/** Mean weighted by support (classes with no support weigh nothing); 0 when there are no images. */
export function weightedAverage(m: ConfusionMatrix): AveragedScores {
  const scores = perClassScores(m);
  const n = scores.reduce((a, s) => a + s.support, 0);
  const mean = (key: keyof AveragedScores) => safeDiv(scores.reduce((a, s) => a + s[key] * s.support, 0), n);
  return { precision: mean('precision'), recall: mean('recall'), f1: mean('f1') };
}

function safeDiv(a: number, b: number): number {
  return b === 0 ? 0 : a / b;
}
