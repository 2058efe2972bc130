import type { AggregateMetrics } from '../../evaluation/metrics/schema.ts';
import type { MetricsLine, Warning } from '../../schemas/experiment.ts';

/**
 * A classifier that fails silently: every image answered with one class (batch-norm statistics
 * that no longer describe the weights after a short run, a learning rate that pushed every output
 * to one side), a validation loss that never left chance (ln C), or an accuracy no better than
 * always answering the most frequent class. Each warning says what to try.
 */

const pct = (v: number) => `${(v * 100).toFixed(1)} %`;

const TRY =
  'Try: keep "Batch-norm statistics" on Auto or Recompute (running averages after a short run may not describe the final weights), ' +
  'a pretrained or imported backbone, a lower learning rate, or more epochs.';

function oneClass(className: string | null): Warning {
  return {
    code: 'ONE_CLASS_PREDICTIONS',
    message: `Every validation image is predicted as the same class${className ? ` (“${className}”)` : ''}: the model does not tell the classes apart. ${TRY}`,
  };
}

function noBetter(value: number, baseline: number, what: string): Warning {
  return {
    code: 'NO_BETTER_THAN_BASELINE',
    message: `The ${what} (${pct(value)}) is no better than always answering the most frequent class (${pct(baseline)}). ${TRY}`,
  };
}

/** From the run's metrics lines (validation's diagnostics, loss and accuracy). */
export function classificationRunWarnings(lines: readonly MetricsLine[], names: readonly string[]): Warning[] {
  const val = lines.filter((l) => l.val_loss !== null);
  const last = val.at(-1);
  if (!last || names.length < 2) return [];
  const out: Warning[] = [];
  const d = last.diagnostics ?? {};
  if (d.distinct_predictions === 1) out.push(oneClass(null));
  const chance = Math.log(names.length);
  if (val.length >= 3 && val.every((l) => l.val_loss !== null && Math.abs(l.val_loss - chance) <= 0.02 * chance)) {
    out.push({
      code: 'VAL_LOSS_AT_CHANCE',
      message: `The validation loss stayed at ln ${names.length} = ${chance.toFixed(3)}, chance level, for all ${val.length} epochs: nothing the model learned carries over to the validation images. ${TRY}`,
    });
  }
  const baseline = d.majority_baseline;
  const best = Math.max(...val.map((l) => l.val_accuracy ?? -1));
  if (typeof baseline === 'number' && best >= 0 && best <= baseline + 1e-9) out.push(noBetter(best, baseline, 'best validation accuracy'));
  return out;
}

/** From an evaluation's confusion matrix: the classes predicted, and the most frequent class's share. */
export function classificationEvaluationWarnings(a: AggregateMetrics): Warning[] {
  const { labels, matrix } = a.confusion_matrix;
  if (labels.length < 2) return [];
  const total = matrix.reduce((s, row) => s + row.reduce((x, y) => x + y, 0), 0);
  if (total === 0) return [];
  const predicted = labels.map((_, j) => matrix.reduce((s, row) => s + row[j], 0));
  const used = predicted.filter((n) => n > 0).length;
  const out: Warning[] = [];
  if (used === 1) out.push(oneClass(labels[predicted.findIndex((n) => n > 0)]));
  const baseline = Math.max(...matrix.map((row) => row.reduce((x, y) => x + y, 0))) / total;
  if (a.accuracy <= baseline + 1e-9) out.push(noBetter(a.accuracy, baseline, 'accuracy'));
  return out.map((w) => ({ ...w, message: w.message.replace('validation image', 'evaluated image') }));
}
