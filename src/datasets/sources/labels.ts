import type { Annotation, DatasetTask } from '../types.ts';
import { SkipError } from '../types.ts';

/**
 * The classification label of an image from its annotations: its one category, none when it has
 * none, and for several distinct categories `ambiguous` — except for detection/segmentation tasks,
 * where the boxes are the labels and `label` stays null.
 */
export function labelFromAnnotations(annotations: Annotation[], task: DatasetTask): string | null {
  const categories = [...new Set(annotations.map((a) => a.category))];
  if (task !== 'classification') return categories.length === 1 ? categories[0] : null;
  if (categories.length > 1) throw new SkipError('ambiguous', `several categories: ${categories.sort().join(', ')}`);
  return categories[0] ?? null;
}
