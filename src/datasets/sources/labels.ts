import type { Annotation, DatasetTask, ScanItem } from '../types.ts';
import { taskLabelShape } from '../../schemas/task.ts';
import { SkipError, labelShape } from '../types.ts';

/**
 * The classification label of an image from its annotations: its one category, none when it has
 * none, and for several distinct categories `ambiguous` — except for detection/segmentation tasks,
 * where the boxes are the labels and `label` stays null.
 */
export function labelFromAnnotations(annotations: Annotation[], task: DatasetTask): string | null {
  const categories = [...new Set(annotations.map((a) => a.category))];
  // The boxes or masks are the truth of an annotations task: a lone category is its label, several no one.
  if (taskLabelShape(task) === 'annotations') return categories.length === 1 ? categories[0] : null;
  if (categories.length > 1) throw new SkipError('ambiguous', `several categories: ${categories.sort().join(', ')}`);
  return categories[0] ?? null;
}

/**
 * An annotated image's truth for the dataset's task. Multi-label: the distinct categories that
 * have a box (or a polygon, whose extent is one), sorted; an image with none is labeled with no
 * label present (`[]`), since a detection dataset lists its images exhaustively.
 */
export function truthFromAnnotations(annotations: Annotation[], task: DatasetTask): Pick<ScanItem, 'label' | 'labels'> {
  if (labelShape(task) === 'multi') {
    const present = annotations.filter((a) => a.bbox !== undefined || a.segmentation !== undefined).map((a) => a.category);
    return { label: null, labels: [...new Set(present)].sort() };
  }
  return { label: labelFromAnnotations(annotations, task) };
}
