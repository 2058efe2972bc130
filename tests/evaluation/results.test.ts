import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import {
  csvText,
  filterResults,
  paginate,
  queryResults,
  ResultRecordSchema,
  ResultsQuerySchema,
  resultsToCsv,
  sortResults,
  type ResultRecord,
} from '../../src/evaluation/results.ts';

function rec(id: string, file: string, label: string, predicted: string, confidence: number, subset: 'test' | 'val' = 'test'): ResultRecord {
  return {
    image_id: `img-${id.padStart(8, '0')}`,
    file,
    subset,
    label,
    predicted,
    confidence,
    correct: label === predicted,
    top_k: [
      { label: predicted, score: confidence },
      { label: predicted === 'cat' ? 'dog' : 'cat', score: 1 - confidence },
    ],
  };
}

const items: ResultRecord[] = [
  rec('1', 'images/a.png', 'cat', 'cat', 0.9),
  rec('2', 'images/b.png', 'cat', 'dog', 0.8),
  rec('3', 'images/c.png', 'dog', 'dog', 0.6, 'val'),
  rec('4', 'images/d.png', 'dog', 'cat', 0.55, 'val'),
  rec('5', 'images/e.png', 'cat', 'dog', 0.95),
  rec('6', 'images/f.png', 'dog', 'dog', 0.6),
];
const ids = (list: readonly ResultRecord[]) => list.map((r) => r.image_id.slice(-1));

describe('result records', () => {
  it('accept a well-formed record and refuse a malformed one', () => {
    expect(ResultRecordSchema.parse(items[0])).toEqual(items[0]);
    expect(ResultRecordSchema.safeParse({ ...items[0], confidence: 1.2 }).success).toBe(false);
    expect(ResultRecordSchema.safeParse({ ...items[0], subset: 'none' }).success).toBe(false);
    expect(ResultRecordSchema.safeParse({ ...items[0], image_id: '../x' }).success).toBe(false);
  });
});

describe('filtering, sorting and paging', () => {
  it('filters by correctness, class, prediction, subset and confidence range', () => {
    expect(ids(filterResults(items, { only: 'misclassified' }))).toEqual(['2', '4', '5']);
    expect(ids(filterResults(items, { only: 'correct' }))).toEqual(['1', '3', '6']);
    expect(ids(filterResults(items, { label: 'cat', predicted: 'dog' }))).toEqual(['2', '5']);
    expect(ids(filterResults(items, { subset: 'val' }))).toEqual(['3', '4']);
    expect(ids(filterResults(items, { min_conf: 0.6, max_conf: 0.9 }))).toEqual(['1', '2', '3', '6']);
    expect(filterResults(items, {})).toEqual(items);
  });

  it('sorts by confidence, by file, and mistakes first with ties in file order', () => {
    expect(ids(sortResults(items, 'confidence_desc'))).toEqual(['5', '1', '2', '3', '6', '4']);
    expect(ids(sortResults(items, 'confidence_asc'))).toEqual(['4', '3', '6', '2', '1', '5']);
    expect(ids(sortResults([...items].reverse(), 'file'))).toEqual(['1', '2', '3', '4', '5', '6']);
    // Most confident mistakes first, then the correct ones from least confident up.
    expect(ids(sortResults(items, 'mistakes_first'))).toEqual(['5', '2', '4', '3', '6', '1']);
    expect(ids(items)).toEqual(['1', '2', '3', '4', '5', '6']); // the input is left alone
  });

  it('pages from 1 and reports the total', () => {
    expect(paginate([1, 2, 3, 4, 5], 2, 2)).toEqual({ items: [3, 4], total: 5 });
    expect(paginate([1, 2, 3, 4, 5], 3, 2)).toEqual({ items: [5], total: 5 });
    expect(paginate([1, 2, 3], 9, 2)).toEqual({ items: [], total: 3 });
  });

  it('answers a query string: filters, then sorts, then pages', () => {
    const q = ResultsQuerySchema.parse({ only: 'misclassified', sort: 'confidence_asc', page: '1', page_size: '2' });
    expect(queryResults(items, q)).toEqual({ items: [items[3], items[1]], total: 3 });
    const d = ResultsQuerySchema.parse({});
    expect(d).toMatchObject({ page: 1, page_size: 50, sort: 'mistakes_first' });
    expect(queryResults(items, ResultsQuerySchema.parse({ min_conf: '0.7' })).total).toBe(3);
  });

  it('refuses a bad query', () => {
    expect(ResultsQuerySchema.safeParse({ min_conf: '0.9', max_conf: '0.1' }).success).toBe(false);
    expect(ResultsQuerySchema.safeParse({ sort: 'random' }).success).toBe(false);
    expect(ResultsQuerySchema.safeParse({ page: '0' }).success).toBe(false);
    expect(ResultsQuerySchema.safeParse({ page_size: '10000' }).success).toBe(false);
    expect(ResultsQuerySchema.safeParse({ min_conf: 'abc' }).success).toBe(false);
    // strict: a misspelt parameter is an error, not a silently unfiltered answer
    expect(ResultsQuerySchema.safeParse({ lable: 'cat' }).success).toBe(false);
    expect(ResultsQuerySchema.safeParse({ label: 'x'.repeat(201) }).success).toBe(false);
    expect(ResultsQuerySchema.safeParse({ predicted: 'x'.repeat(201) }).success).toBe(false);
    expect(ResultsQuerySchema.safeParse({ label: 'x'.repeat(200), predicted: 'y'.repeat(200) }).success).toBe(true);
  });
});

describe('CSV export', () => {
  it('quotes per RFC 4180 and neutralises formula prefixes', () => {
    expect(csvText('plain')).toBe('plain');
    expect(csvText('a,b')).toBe('"a,b"');
    expect(csvText('say "hi"')).toBe('"say ""hi"""');
    expect(csvText('two\nlines')).toBe('"two\nlines"');
    expect(csvText('=SUM(A1:A9)')).toBe("'=SUM(A1:A9)");
    expect(csvText('+1')).toBe("'+1");
    expect(csvText('-2')).toBe("'-2");
    expect(csvText('@cmd')).toBe("'@cmd");
    expect(csvText('\tx')).toBe("'\tx");
    expect(csvText('=HYPERLINK("x","y")')).toBe(`"'=HYPERLINK(""x"",""y"")"`);
    expect(csvText('a=b')).toBe('a=b');
  });

  it('writes a header, one CRLF line per record and top-k columns, and parses back', () => {
    const nasty = 'tabby, "the" cat\nline two';
    const list = [rec('1', 'images/a.png', nasty, nasty, 0.75), rec('2', 'images/b.png', '=cmd|x', 'dog', 0.5)];
    list[1].top_k = [{ label: 'dog', score: 0.5 }];
    const csv = resultsToCsv(list);
    expect(csv.startsWith('image_id,file,subset,label,predicted,confidence,correct,top1_label,top1_score,top2_label,top2_score\r\n')).toBe(true);
    expect(csv.endsWith('\r\n')).toBe(true);
    const table = parse(csv, { record_delimiter: '\r\n' }) as string[][];
    expect(table).toHaveLength(3);
    expect(table[1]).toEqual(['img-00000001', 'images/a.png', 'test', nasty, nasty, '0.75', 'true', nasty, '0.75', 'cat', '0.25']);
    expect(table[2]).toEqual(['img-00000002', 'images/b.png', 'test', "'=cmd|x", 'dog', '0.5', 'false', 'dog', '0.5', '', '']);
  });

  it('writes only the header for no records', () => {
    expect(resultsToCsv([])).toBe('image_id,file,subset,label,predicted,confidence,correct\r\n');
  });
});
