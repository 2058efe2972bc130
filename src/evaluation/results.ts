import { z } from 'zod';
import { ImageIdSchema } from '../schemas/common.ts';

/**
 * The per-image results of an evaluation (`results.jsonl`, one record a line, and the items of
 * `GET …/evaluation/results`), and the pure query and CSV export over a list of them.
 */
export { EvaluatedSubsetSchema } from '../schemas/evaluation.ts';
import { EvaluatedSubsetSchema } from '../schemas/evaluation.ts';

export const ScoredLabelSchema = z.object({ label: z.string(), score: z.number().min(0).max(1) });

export const ResultRecordSchema = z.object({
  image_id: ImageIdSchema,
  /** The image's path inside its dataset folder, as dataset.json has it. */
  file: z.string().min(1),
  subset: EvaluatedSubsetSchema,
  /** True label. */
  label: z.string(),
  predicted: z.string(),
  /** Probability of the predicted class. */
  confidence: z.number().min(0).max(1),
  correct: z.boolean(),
  /** The highest-scoring classes, best first (top-5, or all classes when fewer). */
  top_k: z.array(ScoredLabelSchema),
});
export type ResultRecord = z.infer<typeof ResultRecordSchema>;

export const ResultSortSchema = z.enum(['confidence_desc', 'confidence_asc', 'mistakes_first', 'file']);
export type ResultSort = z.infer<typeof ResultSortSchema>;

/** The same bound as the images query's `label` filter (src/schemas/dataset.ts). */
export const MAX_FILTER_LABEL = 200;

/**
 * The query string of `GET …/evaluation/results` (values arrive as strings, hence the coercion).
 * Strict, as every request schema: a misspelt filter is an error, not silently ignored.
 */
export const ResultsQuerySchema = z
  .strictObject({
    page: z.coerce.number().int().min(1).default(1),
    page_size: z.coerce.number().int().min(1).max(500).default(50),
    only: z.enum(['misclassified', 'correct']).optional(),
    label: z.string().min(1).max(MAX_FILTER_LABEL).optional(),
    predicted: z.string().min(1).max(MAX_FILTER_LABEL).optional(),
    subset: EvaluatedSubsetSchema.optional(),
    min_conf: z.coerce.number().min(0).max(1).optional(),
    max_conf: z.coerce.number().min(0).max(1).optional(),
    sort: ResultSortSchema.default('mistakes_first'),
  })
  .refine((q) => q.min_conf === undefined || q.max_conf === undefined || q.min_conf <= q.max_conf, {
    message: 'min_conf must not exceed max_conf',
    path: ['min_conf'],
  });
export type ResultsQuery = z.infer<typeof ResultsQuerySchema>;

export type ResultFilter = Pick<ResultsQuery, 'only' | 'label' | 'predicted' | 'subset' | 'min_conf' | 'max_conf'>;

/** The records matching every given filter; a confidence bound is inclusive. Order is kept. */
export function filterResults(items: readonly ResultRecord[], f: ResultFilter): ResultRecord[] {
  return items.filter(
    (r) =>
      (f.only === undefined || r.correct === (f.only === 'correct')) &&
      (f.label === undefined || r.label === f.label) &&
      (f.predicted === undefined || r.predicted === f.predicted) &&
      (f.subset === undefined || r.subset === f.subset) &&
      (f.min_conf === undefined || r.confidence >= f.min_conf) &&
      (f.max_conf === undefined || r.confidence <= f.max_conf),
  );
}

/**
 * A sorted copy. `mistakes_first` puts the misclassified images first, most confident first — the
 * mistakes most worth a look — then the correct ones, least confident first. Ties fall back to the
 * file then the image id, so pages never shuffle between requests.
 */
export function sortResults(items: readonly ResultRecord[], sort: ResultSort): ResultRecord[] {
  const byName = (a: ResultRecord, b: ResultRecord) => cmp(a.file, b.file) || cmp(a.image_id, b.image_id);
  const order: Record<ResultSort, (a: ResultRecord, b: ResultRecord) => number> = {
    confidence_desc: (a, b) => b.confidence - a.confidence || byName(a, b),
    confidence_asc: (a, b) => a.confidence - b.confidence || byName(a, b),
    mistakes_first: (a, b) => {
      if (a.correct !== b.correct) return a.correct ? 1 : -1;
      return (a.correct ? a.confidence - b.confidence : b.confidence - a.confidence) || byName(a, b);
    },
    file: byName,
  };
  return [...items].sort(order[sort]);
}

/** One page (1-based) of a list, and the list's length. A page past the end is empty. */
export function paginate<T>(items: readonly T[], page: number, pageSize: number): { items: T[]; total: number } {
  const start = (page - 1) * pageSize;
  return { items: items.slice(start, start + pageSize), total: items.length };
}

/** Filter, sort and page in one call: the body of `GET …/evaluation/results`. */
export function queryResults(items: readonly ResultRecord[], q: ResultsQuery): { items: ResultRecord[]; total: number } {
  return paginate(sortResults(filterResults(items, q), q.sort), q.page, q.page_size);
}

/** Code-unit order: the same on every machine, unlike localeCompare. */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const FIXED_COLUMNS = ['image_id', 'file', 'subset', 'label', 'predicted', 'confidence', 'correct'] as const;

/**
 * The CSV export, one line at a time (header first), each ending in CRLF as RFC 4180 has it, so a
 * route can stream a large result list. The top-k predictions become `top1_label, top1_score, …`
 * columns, as many as the longest list has.
 */
export function* resultsCsvLines(items: readonly ResultRecord[]): Generator<string> {
  const k = items.reduce((m, r) => Math.max(m, r.top_k.length), 0);
  const header: string[] = [...FIXED_COLUMNS];
  for (let i = 1; i <= k; i++) header.push(`top${i}_label`, `top${i}_score`);
  yield csvLine(header.map(csvText));
  for (const r of items) {
    const cells = [csvText(r.image_id), csvText(r.file), csvText(r.subset), csvText(r.label), csvText(r.predicted), String(r.confidence), String(r.correct)];
    for (let i = 0; i < k; i++) {
      const t = r.top_k[i];
      cells.push(t === undefined ? '' : csvText(t.label), t === undefined ? '' : String(t.score));
    }
    yield csvLine(cells);
  }
}

export function resultsToCsv(items: readonly ResultRecord[]): string {
  let out = '';
  for (const line of resultsCsvLines(items)) out += line;
  return out;
}

/** One CSV line of ready cells, CRLF-ended (RFC 4180). */
export function csvLine(cells: readonly string[]): string {
  return `${cells.join(',')}\r\n`;
}

/**
 * One text cell. A spreadsheet runs a cell that starts with = + - @ (or a tab or carriage return,
 * which some strip before looking) as a formula, so such a cell gets a leading apostrophe (OWASP's
 * CSV-injection advice); numbers are written by us and never pass through here. Then RFC 4180: a
 * cell holding a comma, quote, CR or LF is quoted, inner quotes doubled.
 */
export function csvText(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
