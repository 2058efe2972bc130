import type { EvaluationView } from '../core/evaluation.ts';
import { listTasks } from '../tasks/index.ts';
import { fixed, pct } from './training-view.ts';

/** How the evaluation page names and shapes things; no I/O here. */

type AggregateMetrics = NonNullable<EvaluationView['aggregate']>;

export const EVAL_SUBSETS = ['test', 'val', 'train'] as const;
export type EvalSubset = (typeof EVAL_SUBSETS)[number];
export const RESULT_SORTS = ['mistakes_first', 'confidence_desc', 'confidence_asc', 'file'] as const;
export type ResultSortName = (typeof RESULT_SORTS)[number];

/**
 * The grid's filters as the page's query string carries them (all optional but the sort). The
 * confidence bounds are percentages there, as a person types them; the service gets fractions.
 */
export interface ResultFilters {
  only?: 'misclassified' | 'correct';
  label?: string;
  predicted?: string;
  /** Multi-label: a true label the model missed, a label it predicted that is absent. */
  missed?: string;
  extra?: string;
  subset?: EvalSubset;
  min_pct?: number;
  max_pct?: number;
  /** One of the task's sorts (classification's RESULT_SORTS, or its evaluation page's). */
  sort: string;
  /** A task page's own filters (multi-label's `missed`, …) ride along under their names. */
  [filter: string]: string | number | undefined;
}

/** Every sort the page accepts (classification's and every registered task page's); the task's own list decides which apply. */
export function allSorts(): [string, ...string[]] {
  return [...new Set<string>([...RESULT_SORTS, ...listTasks().flatMap((t) => (t.evaluationPage?.sorts ?? []).map((x) => x.value))])] as [string, ...string[]];
}

/** Each task's default sort, omitted from URLs: classification's, and the first of each task page's. */
function defaultSorts(): Set<string> {
  return new Set<string>([RESULT_SORTS[0], ...listTasks().flatMap((t) => (t.evaluationPage ? [t.evaluationPage.sorts[0]?.value ?? ''] : []))]);
}

export const SORT_LABELS: Record<ResultSortName, string> = {
  mistakes_first: 'Confident mistakes first',
  confidence_desc: 'Most confident first',
  confidence_asc: 'Least confident first',
  file: 'File name',
};

/** The page of an experiment's evaluation; filters and page ride along so a reload shows the same grid. */
export function evaluationUrl(projectId: string, experimentId?: string, filters?: Partial<ResultFilters>, page?: number): string {
  const q = new URLSearchParams();
  if (experimentId) q.set('experiment', experimentId);
  if (filters) {
    for (const key of ['only', 'label', 'predicted', 'missed', 'extra', 'subset', 'min_pct', 'max_pct'] as const) {
      const v = filters[key];
      if (v !== undefined) q.set(key, String(v));
    }
    if (filters.sort && !defaultSorts().has(filters.sort)) q.set('sort', filters.sort);
  }
  if (page && page > 1) q.set('page', String(page));
  const s = q.toString();
  return `/projects/${projectId}/evaluation${s ? `?${s}` : ''}`;
}

export function hasFilters(f: ResultFilters): boolean {
  return (
    f.only !== undefined || f.label !== undefined || f.predicted !== undefined || f.missed !== undefined || f.extra !== undefined ||
    f.subset !== undefined || f.min_pct !== undefined || f.max_pct !== undefined
  );
}

export interface Headline {
  label: string;
  value: string;
  hint: string;
}

/** The tiles above the charts: the numbers a person reads first. */
export function headlineMetrics(a: AggregateMetrics, images: number): Headline[] {
  const top = [a.top_k['3'] !== undefined ? `top-3 ${pct(a.top_k['3'])}` : null, a.top_k['5'] !== undefined ? `top-5 ${pct(a.top_k['5'])}` : null].filter(Boolean);
  // The trivial baseline beside the accuracy: always answering the most frequent true class.
  const total = a.confusion_matrix.matrix.reduce((s, row) => s + row.reduce((x, y) => x + y, 0), 0);
  const majority = total > 0 ? Math.max(...a.confusion_matrix.matrix.map((row) => row.reduce((x, y) => x + y, 0))) / total : null;
  return [
    { label: 'Accuracy', value: pct(a.accuracy), hint: top.length ? top.join(' · ') : `${images.toLocaleString('en-US')} images` },
    { label: 'Majority baseline', value: pct(majority), hint: 'always the most frequent class' },
    { label: 'Balanced accuracy', value: pct(a.balanced_accuracy), hint: 'mean recall per class' },
    { label: 'Macro F1', value: fixed(a.macro.f1, 3), hint: `weighted ${fixed(a.weighted.f1, 3)}` },
    { label: 'ROC AUC (macro)', value: fixed(a.roc_auc.macro, 3), hint: 'one-vs-rest' },
    { label: "Cohen's kappa", value: fixed(a.kappa, 3), hint: 'agreement beyond chance' },
    { label: 'Log loss', value: fixed(a.log_loss, 4), hint: 'lower is better' },
    { label: 'Calibration error', value: fixed(a.ece, 4), hint: 'ECE, lower is better' },
    { label: 'Macro precision / recall', value: `${fixed(a.macro.precision, 3)} / ${fixed(a.macro.recall, 3)}`, hint: `weighted ${fixed(a.weighted.precision, 3)} / ${fixed(a.weighted.recall, 3)}` },
  ];
}

export interface ConfusionCell {
  count: number;
  /** Share of the row (the true class), 0..1: what the heat colour shows. */
  share: number;
  diagonal: boolean;
  href: string;
  title: string;
  selected: boolean;
}

export interface ConfusionView {
  labels: string[];
  rows: { label: string; total: number; cells: ConfusionCell[] }[];
  column_totals: number[];
}

/**
 * The confusion matrix as a heat-map table: rows are true classes, columns predicted ones, each
 * cell coloured by its share of the row (so a small class reads as clearly as a big one) and
 * linking to the grid filtered to that pair.
 */
export function confusionView(a: AggregateMetrics, hrefOf: (label: string, predicted: string) => string, selected?: { label?: string; predicted?: string }): ConfusionView {
  const { labels, matrix } = a.confusion_matrix;
  const rows = labels.map((label, i) => {
    const total = matrix[i].reduce((s, n) => s + n, 0);
    const cells = labels.map((predicted, j) => {
      const count = matrix[i][j];
      return {
        count,
        share: total > 0 ? count / total : 0,
        diagonal: i === j,
        href: hrefOf(label, predicted),
        title: `${count} image${count === 1 ? '' : 's'} of “${label}” predicted as “${predicted}”${total > 0 ? ` (${pct(count / total)} of the class)` : ''}`,
        selected: selected?.label === label && selected.predicted === predicted,
      };
    });
    return { label, total, cells };
  });
  const column_totals = labels.map((_, j) => matrix.reduce((s, row) => s + row[j], 0));
  return { labels, rows, column_totals };
}

export interface ClassRow {
  label: string;
  precision: string;
  recall: string;
  f1: string;
  support: number;
  auc: string;
}

export function classRows(a: AggregateMetrics): ClassRow[] {
  return a.confusion_matrix.labels.map((label) => {
    const c = Object.hasOwn(a.per_class, label) ? a.per_class[label] : undefined;
    const auc = Object.hasOwn(a.roc_auc.per_class, label) ? a.roc_auc.per_class[label] : null;
    return { label, precision: fixed(c?.precision, 3), recall: fixed(c?.recall, 3), f1: fixed(c?.f1, 3), support: c?.support ?? 0, auc: fixed(auc, 3) };
  });
}

/** What public/js/evaluation.js draws; JSON in a data- attribute (escaped by the template). */
export function chartPayload(a: AggregateMetrics) {
  const labels = a.confusion_matrix.labels;
  const perClass = labels.map((l) => (Object.hasOwn(a.per_class, l) ? a.per_class[l] : { precision: 0, recall: 0, f1: 0, support: 0 }));
  const curve = <T>(rec: Record<string, T>, l: string): T | undefined => (Object.hasOwn(rec, l) ? rec[l] : undefined);
  return {
    per_class: {
      labels,
      precision: perClass.map((c) => c.precision),
      recall: perClass.map((c) => c.recall),
      f1: perClass.map((c) => c.f1),
    },
    roc: labels.flatMap((l) => {
      const c = curve(a.curves.roc, l);
      if (!c) return [];
      const auc = curve(a.roc_auc.per_class, l) ?? null;
      return [{ label: l, auc, points: c.fpr.map((x, i) => ({ x, y: c.tpr[i] })) }];
    }),
    pr: labels.flatMap((l) => {
      const c = curve(a.curves.pr, l);
      return c ? [{ label: l, ap: c.average_precision, points: c.recall.map((x, i) => ({ x, y: c.precision[i] })) }] : [];
    }),
    reliability: a.reliability.map((b) => ({ lower: b.lower, upper: b.upper, count: b.count, confidence: b.mean_confidence, accuracy: b.accuracy })),
    ece: a.ece,
  };
}

/** A confidence (0..1) as the grid shows it: a percentage with one decimal. */
export const confidenceLabel = (v: number): string => `${(v * 100).toFixed(1)}%`;
