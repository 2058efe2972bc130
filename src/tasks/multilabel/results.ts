import { z } from 'zod';
import { csvLine, csvText, EvaluatedSubsetSchema, MAX_FILTER_LABEL, paginate } from '../../evaluation/results.ts';
import type { TaskResults } from '../types.ts';
import type { MultiLabelItem } from './index.ts';

/**
 * Multi-label evaluation results: the grid's filters (a true label, a missed label, an extra
 * label, exact match or not, subset), its orders (most errors first, or by file) and the CSV.
 */

export const MULTILABEL_RESULT_SORTS = ['mistakes_first', 'file'] as const;

const label = z.string().min(1).max(MAX_FILTER_LABEL);

/** Strict, as every request schema: a filter of another task (e.g. `min_conf`) is an error naming it. */
export const MultiLabelResultsQuerySchema = z.strictObject({
  page: z.coerce.number().int().min(1).default(1),
  page_size: z.coerce.number().int().min(1).max(500).default(50),
  /** Images that truly carry this label. */
  label: label.optional(),
  /** Images where this true label was not predicted. */
  missed: label.optional(),
  /** Images where this label was predicted but is absent. */
  extra: label.optional(),
  /** Exact match (`correct`) or not (`misclassified`). */
  only: z.enum(['misclassified', 'correct']).optional(),
  subset: EvaluatedSubsetSchema.optional(),
  sort: z.enum(MULTILABEL_RESULT_SORTS).default('mistakes_first'),
});
export type MultiLabelResultsQuery = z.infer<typeof MultiLabelResultsQuerySchema>;

/** Errors of one image: labels missed plus labels predicted that are absent. */
export const errorCount = (r: MultiLabelItem): number => r.missed.length + r.extra.length;

export function filterMultiLabel(items: readonly MultiLabelItem[], q: Omit<MultiLabelResultsQuery, 'page' | 'page_size' | 'sort'>): MultiLabelItem[] {
  return items.filter(
    (r) =>
      (q.label === undefined || r.labels.includes(q.label)) &&
      (q.missed === undefined || r.missed.includes(q.missed)) &&
      (q.extra === undefined || r.extra.includes(q.extra)) &&
      (q.only === undefined || r.correct === (q.only === 'correct')) &&
      (q.subset === undefined || r.subset === q.subset),
  );
}

/** Code-unit order: the same on every machine, unlike localeCompare. */
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const byName = (a: MultiLabelItem, b: MultiLabelItem) => cmp(a.file, b.file) || cmp(a.image_id, b.image_id);

/**
 * `mistakes_first`: the images with most errors (missed + extra) first — where the model is most
 * wrong — ties by file, so pages never shuffle between requests.
 */
export function sortMultiLabel(items: readonly MultiLabelItem[], sort: MultiLabelResultsQuery['sort']): MultiLabelItem[] {
  const order = sort === 'file' ? byName : (a: MultiLabelItem, b: MultiLabelItem) => errorCount(b) - errorCount(a) || byName(a, b);
  return [...items].sort(order);
}

/** Labels joined as the CSV import reads them back (`;`). */
const joined = (xs: readonly string[]) => csvText(xs.join(';'));

/**
 * CSV: the record's fields (label lists joined by `;`), then one `score_<label>` column per label
 * in the run's output order.
 */
export function* multiLabelCsvLines(items: readonly MultiLabelItem[], names: readonly string[]): Generator<string> {
  yield csvLine(['image_id', 'file', 'subset', 'labels', 'predicted_labels', 'missed', 'extra', 'correct', ...names.map((n) => `score_${n}`)].map(csvText));
  for (const r of items) {
    const scores = names.map((n) => (Object.hasOwn(r.scores, n) ? String(r.scores[n]) : ''));
    yield csvLine([csvText(r.image_id), csvText(r.file), csvText(r.subset), joined(r.labels), joined(r.predicted_labels), joined(r.missed), joined(r.extra), String(r.correct), ...scores]);
  }
}

export const multiLabelResults: TaskResults<MultiLabelItem, MultiLabelResultsQuery> = {
  querySchema: MultiLabelResultsQuerySchema,
  query: (items, q) => paginate(sortMultiLabel(filterMultiLabel(items, q), q.sort), q.page, q.page_size),
  csvLines: multiLabelCsvLines,
};

export default multiLabelResults;
