import { validation } from '../kernel/errors.ts';
import { labelShape, type DatasetTask, type ImportSource } from './types.ts';

/** How the messages name a source kind. */
const KIND_NOUN: Record<string, string> = {
  folder: 'a folder',
  zip: 'a zip of class folders',
  csv: 'a CSV',
  coco: 'a COCO annotations file',
  yolo: 'a YOLO dataset',
};

/**
 * Refuses a source, or a source option, that does not fit the dataset's task, with a
 * VALIDATION_ERROR naming the field. `kinds` are the source kinds the task's definition says can
 * feed it (`getTask(task).sources`), or null where the task is not registered (a stored-only task,
 * or a worker thread without the registry): then only the options are checked.
 */
export function checkSourceFitsTask(task: DatasetTask, source: ImportSource, kinds: readonly string[] | null): void {
  if (kinds !== null && !kinds.includes(source.kind)) {
    throw validation(`source.kind: ${KIND_NOUN[source.kind] ?? source.kind} cannot feed a ${task} dataset (it takes ${kinds.join(', ') || 'no source'})`);
  }
  const shape = labelShape(task);
  if (source.kind !== 'csv') {
    if (shape === 'targets') throw validation(`source.kind: a ${task} dataset needs target columns, which only a CSV source has`);
    return;
  }
  if (source.target_columns !== undefined && shape !== 'targets') {
    throw validation('source.target_columns: only a regression dataset takes target columns');
  }
  if (source.label_separator !== undefined && shape !== 'multi') {
    throw validation('source.label_separator: only a multilabel dataset splits labels');
  }
  if (shape === 'targets') {
    if (source.target_columns === undefined || source.target_columns.length === 0) {
      throw validation(`source.target_columns: a ${task} dataset needs at least one target column`);
    }
    if (source.label_column !== undefined) throw validation(`source.label_column: a ${task} dataset reads target_columns, not a label column`);
    const seen = new Set<string>();
    for (const t of source.target_columns) {
      if (seen.has(t)) throw validation(`source.target_columns: '${t}' is named twice`);
      seen.add(t);
    }
    if (source.image_column !== undefined && seen.has(source.image_column)) {
      throw validation(`source.target_columns: '${source.image_column}' is the image column`);
    }
  }
}
