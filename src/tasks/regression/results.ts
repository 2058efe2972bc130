import { z } from 'zod';
import { csvLine, csvText, EvaluatedSubsetSchema, paginate } from '../../evaluation/results.ts';
import type { TaskResults } from '../types.ts';
import type { RegressionItem } from './index.ts';

/**
 * Regression evaluation results: the grid sorted by absolute error (worst first by default),
 * filtered by subset, and the CSV with target / predicted / error columns per target.
 */

export const REGRESSION_RESULT_SORTS = ['abs_error_desc', 'abs_error_asc', 'file'] as const;

/** Strict, as every request schema: a filter of another task (e.g. `label`) is an error naming it. */
export const RegressionResultsQuerySchema = z.strictObject({
  page: z.coerce.number().int().min(1).default(1),
  page_size: z.coerce.number().int().min(1).max(500).default(50),
  subset: EvaluatedSubsetSchema.optional(),
  sort: z.enum(REGRESSION_RESULT_SORTS).default('abs_error_desc'),
});
export type RegressionResultsQuery = z.infer<typeof RegressionResultsQuerySchema>;

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const byName = (a: RegressionItem, b: RegressionItem) => cmp(a.file, b.file) || cmp(a.image_id, b.image_id);

/** Ties fall back to the file then the image id, so pages never shuffle between requests. */
export function sortRegression(items: readonly RegressionItem[], sort: RegressionResultsQuery['sort']): RegressionItem[] {
  const order: Record<RegressionResultsQuery['sort'], (a: RegressionItem, b: RegressionItem) => number> = {
    abs_error_desc: (a, b) => b.abs_error - a.abs_error || byName(a, b),
    abs_error_asc: (a, b) => a.abs_error - b.abs_error || byName(a, b),
    file: byName,
  };
  return [...items].sort(order[sort]);
}

const num = (rec: Record<string, number>, k: string): string => (Object.hasOwn(rec, k) ? String(rec[k]) : '');

/** CSV: `target_<name>`, `predicted_<name>`, `error_<name>` per target (run order), then `abs_error`. */
export function* regressionCsvLines(items: readonly RegressionItem[], names: readonly string[]): Generator<string> {
  const header = ['image_id', 'file', 'subset'];
  for (const n of names) header.push(`target_${n}`, `predicted_${n}`, `error_${n}`);
  header.push('abs_error');
  yield csvLine(header.map(csvText));
  for (const r of items) {
    const cells = [csvText(r.image_id), csvText(r.file), csvText(r.subset)];
    for (const n of names) cells.push(num(r.target, n), num(r.predicted, n), num(r.error, n));
    cells.push(String(r.abs_error));
    yield csvLine(cells);
  }
}

export const regressionResults: TaskResults<RegressionItem, RegressionResultsQuery> = {
  querySchema: RegressionResultsQuerySchema,
  query: (items, q) => paginate(sortRegression(items.filter((r) => q.subset === undefined || r.subset === q.subset), q.sort), q.page, q.page_size),
  csvLines: regressionCsvLines,
};

export default regressionResults;
