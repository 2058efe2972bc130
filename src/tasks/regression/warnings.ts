import type { MetricsLine, Warning } from '../../schemas/experiment.ts';

/**
 * A regression model that fails silently answers about the same value for every image: its R²
 * is then at or below 0, no better than predicting the training targets' mean.
 */

const TRY = 'Try: a lower learning rate, more epochs, a pretrained or imported backbone, or check that the target is visible in the images at this input size.';

function noBetter(r2: number, where: string): Warning {
  return {
    code: 'NO_BETTER_THAN_BASELINE',
    message: `The ${where} R² (${r2.toFixed(3)}) is no better than always predicting the mean of the targets (R² = 0). ${TRY}`,
  };
}

export function regressionRunWarnings(lines: readonly MetricsLine[]): Warning[] {
  const r2 = lines.map((l) => l.metrics.val_r2).filter((v): v is number => typeof v === 'number');
  if (r2.length === 0) return [];
  const best = Math.max(...r2);
  return best <= 0 ? [noBetter(best, 'best validation')] : [];
}

export function regressionEvaluationWarnings(r2: number | null): Warning[] {
  return r2 !== null && r2 <= 0 ? [noBetter(r2, 'evaluated')] : [];
}
