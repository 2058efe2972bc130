import { num } from '../format.ts';
import type { TaskEvaluationPage } from '../types.ts';
import type { RegressionAggregate, RegressionItem } from './index.ts';

/**
 * How the evaluation page shows a regression evaluation (views/tasks/regression/evaluation-*.eta):
 * the board's tiles, per-target table and chart data (scatter, residuals), a result's rows.
 */

/** A result's targets as rows: true, predicted, error. */
export function regressionRows(r: RegressionItem) {
  return Object.keys(r.target).map((name) => ({
    name,
    target: num(r.target[name]),
    predicted: num(r.predicted[name]),
    error: num(r.error[name]),
    signed: r.error[name] > 0 ? `+${num(r.error[name])}` : num(r.error[name]),
  }));
}

export const regressionPage: TaskEvaluationPage<RegressionAggregate, RegressionItem> = {
  headline: (a) => ({ value: `MAE ${num(a.mae)}`, title: 'Mean absolute error' }),
  board(a) {
    const names = Object.keys(a.per_target);
    return {
      headline: [
        { label: 'MAE', value: num(a.mae), hint: names.length > 1 ? 'mean of targets' : 'mean |error|' },
        { label: 'RMSE', value: num(a.rmse), hint: 'root mean square' },
        { label: 'R²', value: num(a.r2), hint: a.r2 === null ? 'constant target' : '1 = perfect' },
        { label: 'Median AE', value: num(a.median_ae), hint: 'typical error' },
        { label: 'Max error', value: num(a.max_error), hint: 'worst image' },
      ],
      targets: names.map((name) => {
        const t = a.per_target[name];
        return { name, mae: num(t.mae), rmse: num(t.rmse), r2: num(t.r2), median_ae: num(t.median_ae), max_error: num(t.max_error), mean_target: num(t.mean_target) };
      }),
      names,
      charts: {
        task: 'regression',
        targets: names.map((name) => ({
          name,
          points: a.scatter[name].true.map((x, i) => ({ x, y: a.scatter[name].predicted[i] })),
          histogram: a.residual_histogram[name],
        })),
      },
    };
  },
  tile: (g) => ({ abs_error: num(g.abs_error), rows: regressionRows(g) }),
  detail: (g) => ({ ...g, rows: regressionRows(g), abs_error_label: num(g.abs_error), title: `error ${num(g.abs_error)}` }),
  filters: ['subset'],
  sorts: [
    { value: 'abs_error_desc', label: 'Largest error first' },
    { value: 'abs_error_asc', label: 'Smallest error first' },
    { value: 'file', label: 'File name' },
  ],
  hint: 'its values and error',
};
