import type { FastifyInstance } from 'fastify';
import { validation } from '../kernel/errors.ts';
import { labelShape } from '../datasets/types.ts';
import type { DatasetSummary, ImageDetail, ImageUpdate } from '../schemas/dataset.ts';
import { ImageIds, RelabelForm, parseForm, parseIds } from './forms.ts';
import { isHtmx } from './errors.ts';
import { datasetBase, thumbUrl } from './datasets.ts';
import { projectCrumbs, projectLayout } from './layout.ts';

/** One image: the detail (a modal over the grid, or its own page), relabel and delete. */

function imageView(projectId: string, datasetId: string, img: ImageDetail) {
  const targets = img.targets ? Object.entries(img.targets).map(([name, value]) => ({ name, value })) : null;
  return {
    ...img,
    file_url: `/api${datasetBase(projectId, datasetId)}/images/${img.id}/file`,
    splits: Object.entries(img.splits).map(([name, subset]) => ({ name, subset })),
    annotation_count: img.annotations.length,
    target_list: targets,
    // One line naming the image's truth, for the heading and the alt text.
    truth: img.labels ? (img.labels.length ? img.labels.join(', ') : 'No label') : targets ? targets.map((t) => `${t.name} ${t.value}`).join(' · ') : img.label,
  };
}

/** What the detail's form edits, by the dataset's task. */
function editView(d: DatasetSummary) {
  return { shape: labelShape(d.task), classes: d.classes, target_names: d.target_names };
}

/**
 * The detail form as an image update, by the dataset's task: a class (a typed new class wins over
 * the select; an empty select means unlabeled), the checked labels, or every target's value (all
 * empty: no targets).
 */
function updateFromForm(d: DatasetSummary, form: RelabelForm): ImageUpdate {
  const shape = labelShape(d.task);
  if (shape === 'multi') return { labels: d.classes.filter((_, i) => form[`label_${i}`] !== undefined) };
  if (shape === 'targets') {
    const cells = d.target_names.map((_, i) => (form[`target_${i}`] ?? '').trim());
    if (cells.every((c) => c === '')) return { targets: null };
    const targets: Record<string, number> = {};
    d.target_names.forEach((name, i) => {
      if (cells[i] === '') throw validation(`targets.${name}: missing; every target needs a value`);
      const v = Number(cells[i]);
      if (!Number.isFinite(v)) throw validation(`targets.${name}: '${cells[i].slice(0, 40)}' is not a number`);
      targets[name] = v;
    });
    return { targets };
  }
  const typed = form.new_label?.trim();
  return { label: typed ? typed : form.label ? form.label : null };
}

/** The grid tile of an image, for the out-of-band swap after a relabel. */
function tileView(projectId: string, datasetId: string, img: ImageDetail) {
  const first = Object.values(img.splits)[0];
  return { ...img, split: first ?? null, thumb_url: thumbUrl(projectId, datasetId, img.id) };
}

export default async function imagePages(app: FastifyInstance): Promise<void> {
  const { projects, datasets } = app.studio;
  const route = '/projects/:project_id/datasets/:dataset_id/images/:image_id';

  app.get(route, async (req, reply) => {
    const { project_id, dataset_id, image_id } = parseIds(ImageIds, req.params);
    const img = await datasets.getImage(project_id, dataset_id, image_id);
    const base = datasetBase(project_id, dataset_id);
    const dataset = await datasets.get(project_id, dataset_id);
    // previous and next in the dataset's order: the viewer steps through the images (buttons, ← →)
    const around = await datasets.neighbours(project_id, dataset_id, image_id);
    const nav = { prev: around.prev ? `${base}/images/${around.prev}` : null, next: around.next ? `${base}/images/${around.next}` : null };
    reply.header('Vary', 'HX-Request');
    if (isHtmx(req) && req.headers['hx-history-restore-request'] !== 'true') {
      return reply.view('fragments/image-detail', { base, image: imageView(project_id, dataset_id, img), classes: dataset.classes, edit: editView(dataset), nav });
    }
    const project = await projects.get(project_id);
    const layout = await projectLayout(
      app,
      project,
      {
        title: `Image ${img.id}`,
        section: 'dataset',
        crumbs: [...projectCrumbs(project), { label: dataset.name, href: base }, { label: img.id }],
      },
      dataset_id,
    );
    return reply.view('pages/image', { ...layout, base, image: imageView(project_id, dataset_id, img), nav });
  });

  app.patch(route, async (req, reply) => {
    const { project_id, dataset_id, image_id } = parseIds(ImageIds, req.params);
    const form = parseForm(RelabelForm, req.body);
    const before = await datasets.get(project_id, dataset_id);
    const img = await datasets.relabelImage(project_id, dataset_id, image_id, updateFromForm(before, form));
    const dataset = await datasets.get(project_id, dataset_id);
    return reply.view('fragments/image-detail', {
      base: datasetBase(project_id, dataset_id),
      image: imageView(project_id, dataset_id, img),
      classes: dataset.classes,
      edit: editView(dataset),
      saved: true,
      tile: tileView(project_id, dataset_id, img),
      stats: dataset,
    });
  });

  app.delete(route, async (req, reply) => {
    const { project_id, dataset_id, image_id } = parseIds(ImageIds, req.params);
    await datasets.deleteImage(project_id, dataset_id, image_id);
    // The modal closes (empty swap) and the tile leaves the grid out of band.
    return reply.view('fragments/tile-removed', { id: image_id, dataset: await datasets.get(project_id, dataset_id) });
  });
}
