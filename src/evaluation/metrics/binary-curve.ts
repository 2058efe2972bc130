/**
 * Cumulative true and false positives at every distinct score threshold, scores taken in
 * decreasing order (scikit-learn's `_binary_clf_curve`). Tied scores form one threshold: they are
 * all accepted together, which is what makes a tie count as half a correct ordering in the AUC.
 */
export interface BinaryCurve {
  tps: number[];
  fps: number[];
  thresholds: number[];
}

export function binaryCurve(scores: ArrayLike<number>, positive: ArrayLike<number>): BinaryCurve {
  const n = scores.length;
  const order = Uint32Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const tps: number[] = [];
  const fps: number[] = [];
  const thresholds: number[] = [];
  let tp = 0;
  let fp = 0;
  for (let j = 0; j < n; j++) {
    const i = order[j];
    if (positive[i]) tp++;
    else fp++;
    if (j === n - 1 || scores[order[j + 1]] !== scores[i]) {
      tps.push(tp);
      fps.push(fp);
      thresholds.push(scores[i]);
    }
  }
  return { tps, fps, thresholds };
}
