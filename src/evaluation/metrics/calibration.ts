import { badInput } from '../../kernel/errors.ts';
import { argmaxRows, checkInputs, type Targets } from './inputs.ts';

export const ECE_BINS = 15;

/** One bar of the reliability diagram: images whose confidence lies in (lower, upper]. */
export interface ReliabilityBin {
  lower: number;
  upper: number;
  count: number;
  /** Mean max-probability of the bin's images; null for an empty bin. */
  mean_confidence: number | null;
  /** Fraction of the bin's images predicted correctly; null for an empty bin. */
  accuracy: number | null;
}

export interface Calibration {
  ece: number;
  bins: ReliabilityBin[];
}

/**
 * Expected calibration error (Guo et al., 2017): confidence is each image's max probability,
 * binned into equal-width bins (lower, upper] over [0, 1] (the first bin also takes 0);
 * ECE = Σ_b (n_b / N) · |accuracy_b − mean confidence_b|. 0 when there are no images.
 */
export function calibration(
  probs: Float32Array | Float64Array,
  targets: Targets,
  numClasses: number,
  numBins = ECE_BINS,
): Calibration {
  const n = checkInputs(probs, targets, numClasses);
  if (!Number.isInteger(numBins) || numBins < 1) throw badInput(`number of bins must be a positive integer, got ${numBins}`);
  const predicted = argmaxRows(probs, numClasses);
  const count = new Array<number>(numBins).fill(0);
  const confSum = new Array<number>(numBins).fill(0);
  const correct = new Array<number>(numBins).fill(0);
  for (let i = 0; i < n; i++) {
    const conf = probs[i * numClasses + predicted[i]];
    const b = binOf(conf, numBins);
    count[b]++;
    confSum[b] += conf;
    if (predicted[i] === targets[i]) correct[b]++;
  }
  let ece = 0;
  const bins: ReliabilityBin[] = [];
  for (let b = 0; b < numBins; b++) {
    const has = count[b] > 0;
    const meanConf = has ? confSum[b] / count[b] : null;
    const acc = has ? correct[b] / count[b] : null;
    if (meanConf !== null && acc !== null) ece += (count[b] / n) * Math.abs(acc - meanConf);
    bins.push({ lower: b / numBins, upper: (b + 1) / numBins, count: count[b], mean_confidence: meanConf, accuracy: acc });
  }
  return { ece, bins };
}

/**
 * The bin whose (b/B, (b+1)/B] holds `conf`, decided by the same comparisons a reader of the
 * boundaries would make: ceil(conf·B) alone misplaces values such as 0.2 (0.2·15 = 3.0000000000000004).
 */
export function binOf(conf: number, numBins: number): number {
  let b = Math.min(Math.max(Math.ceil(conf * numBins) - 1, 0), numBins - 1);
  while (b > 0 && conf <= b / numBins) b--;
  while (b < numBins - 1 && conf > (b + 1) / numBins) b++;
  return b;
}
