import { queryResults, resultsCsvLines, ResultsQuerySchema, type ResultRecord, type ResultsQuery } from '../../evaluation/results.ts';
import type { TaskResults } from '../types.ts';

/**
 * Classification's evaluation results: the query (true/predicted class, correct or not, subset,
 * confidence range; mistakes first) and CSV (top-k columns) that src/evaluation/results.ts has
 * always served, unchanged.
 */
export const classificationResults: TaskResults<ResultRecord, ResultsQuery> = {
  querySchema: ResultsQuerySchema,
  query: queryResults,
  csvLines: (items) => resultsCsvLines(items),
};

export default classificationResults;
