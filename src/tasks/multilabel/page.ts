import { fixed, pct } from '../format.ts';
import type { TaskEvaluationPage } from '../types.ts';
import type { MultiLabelAggregate, MultiLabelItem } from './index.ts';

/**
 * How the evaluation page shows a multi-label evaluation (views/tasks/multilabel/evaluation-*.eta):
 * the board's tiles, per-label table and chart data, a result's labels marked hit, missed or extra.
 */

/** A result's labels: each once, marked true/predicted/missed/extra, best score first. */
export function multiLabelMarks(r: MultiLabelItem) {
  const truth = new Set(r.labels);
  const said = new Set(r.predicted_labels);
  return Object.keys(r.scores)
    .map((label) => {
      const score = r.scores[label];
      const state = truth.has(label) && said.has(label) ? 'hit' : truth.has(label) ? 'missed' : said.has(label) ? 'extra' : 'none';
      return { label, score, percent: Math.round(score * 1000) / 10, state, is_true: truth.has(label), is_predicted: said.has(label) };
    })
    .sort((x, y) => y.score - x.score);
}

export const multiLabelPage: TaskEvaluationPage<MultiLabelAggregate, MultiLabelItem> = {
  headline: (a) => ({ value: `mAP ${pct(a.map)}`, title: 'Mean average precision' }),
  board(a) {
    const labels = Object.keys(a.per_class);
    const card = a.label_cardinality;
    return {
      headline: [
        { label: 'mAP', value: pct(a.map), hint: 'mean AP over labels' },
        { label: 'Micro F1', value: fixed(a.micro.f1, 3), hint: `P ${fixed(a.micro.precision, 3)} · R ${fixed(a.micro.recall, 3)}` },
        { label: 'Macro F1', value: fixed(a.macro.f1, 3), hint: `P ${fixed(a.macro.precision, 3)} · R ${fixed(a.macro.recall, 3)}` },
        { label: 'Exact match', value: pct(a.exact_match), hint: 'all labels right' },
        { label: 'Hamming loss', value: fixed(a.hamming_loss, 4), hint: 'wrong decisions' },
        { label: 'Labels / image', value: fixed(card.true, 2), hint: `predicted ${fixed(card.predicted, 2)}` },
      ],
      threshold: a.threshold,
      classes: labels.map((label) => {
        const c = a.per_class[label];
        return { label, ap: fixed(c.ap, 3), precision: fixed(c.precision, 3), recall: fixed(c.recall, 3), f1: fixed(c.f1, 3), support: c.support, threshold: c.threshold.toFixed(2) };
      }),
      names: labels,
      charts: {
        task: 'multilabel',
        pr: labels.flatMap((l) => {
          const c = Object.hasOwn(a.curves.pr, l) ? a.curves.pr[l] : undefined;
          return c ? [{ label: l, ap: c.average_precision, threshold: a.per_class[l].threshold, points: c.recall.map((x, i) => ({ x, y: c.precision[i] })) }] : [];
        }),
        per_class: { labels, ap: labels.map((l) => a.per_class[l].ap ?? 0), f1: labels.map((l) => a.per_class[l].f1) },
      },
    };
  },
  tile: (m) => ({ correct: m.correct, errors: m.missed.length + m.extra.length, labels: m.labels, predicted_labels: m.predicted_labels, marks: multiLabelMarks(m).filter((x) => x.state !== 'none') }),
  detail: (m) => ({ ...m, marks: multiLabelMarks(m), title: m.correct ? 'Every label right' : `${m.missed.length} missed · ${m.extra.length} extra` }),
  filters: ['label', 'missed', 'extra', 'only', 'subset'],
  sorts: [
    { value: 'mistakes_first', label: 'Most errors first' },
    { value: 'file', label: 'File name' },
  ],
  hint: 'its labels and scores',
};
