import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DatasetIds, DeleteQuery, GridQuery, ImportForm, NavQuery, ProjectIds, parseForm, parseIds } from './forms.ts';
import { formatBytes, pager, timeAgo } from './format.ts';
import { isHtmx } from './errors.ts';
import { projectCrumbs, projectLayout } from './layout.ts';
import { jobWidget } from './jobs.ts';
import { splitsCard } from './splits.ts';
import type { DatasetSummary } from '../schemas/dataset.ts';
import type { ImportSource } from '../datasets/types.ts';
import { listTasks } from '../tasks/index.ts';

/** The new-dataset form's task choices: the registered tasks, each with the source kinds that feed it. */
export const taskChoices = () => listTasks().map((t) => ({ name: t.name, title: t.title, description: t.description, sources: [...t.sources] }));

/** Grid pages hold 60 tiles: 10 rows of 6 on a laptop, few enough that page 1 paints at once. */
export const PAGE_SIZE = 60;

export const datasetBase = (projectId: string, datasetId: string) => `/projects/${projectId}/datasets/${datasetId}`;
export const thumbUrl = (projectId: string, datasetId: string, imageId: string) =>
  `/api${datasetBase(projectId, datasetId)}/images/${imageId}/thumbnail`;

const withLabels = (d: DatasetSummary) => ({ ...d, updated_label: timeAgo(d.updated_at) });

function toSource(form: ImportForm): ImportSource {
  switch (form.kind) {
    case 'folder':
      return { kind: 'folder', path: form.path };
    case 'csv':
      return {
        kind: 'csv',
        path: form.path,
        images_root: form.images_root,
        ...(form.image_column !== undefined ? { image_column: form.image_column } : {}),
        ...(form.label_column !== undefined ? { label_column: form.label_column } : {}),
        ...(form.label_separator !== undefined ? { label_separator: form.label_separator } : {}),
        ...(form.target_columns !== undefined && form.target_columns.length > 0 ? { target_columns: form.target_columns } : {}),
      };
    case 'coco':
      return { kind: 'coco', annotations: form.annotations, images_root: form.images_root };
    case 'yolo':
      return { kind: 'yolo', path: form.path };
  }
}

/** A number for a chart tick or a stats cell: 3 significant digits, no exponent for everyday sizes. */
export function shortNumber(v: number | null): string {
  if (v === null) return '—';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-3) return v.toExponential(2);
  return String(Number(v.toPrecision(3)));
}

/**
 * What the dataset page shows besides the grid, by task: multi-label's label-cardinality chart;
 * regression's per-target statistics and histograms (data for public/js/studio.js's bar charts).
 */
export function taskPanels(d: DatasetSummary) {
  const cardinality = d.label_cardinality
    ? { labels: d.label_cardinality.map((_, k) => String(k)), counts: d.label_cardinality, series: 'images', x: 'labels per image' }
    : null;
  const targets = Object.entries(d.target_stats ?? {}).map(([name, t]) => ({
    name,
    count: t.count,
    min: shortNumber(t.min),
    max: shortNumber(t.max),
    mean: shortNumber(t.mean),
    std: shortNumber(t.std),
    chart:
      t.count === 0
        ? null
        : {
            labels: t.histogram.counts.map((_, i) => `${shortNumber(t.histogram.edges[i])}–${shortNumber(t.histogram.edges[i + 1])}`),
            counts: t.histogram.counts,
            series: 'images',
            x: name,
            histogram: true,
            color: '#0e9384',
          },
  }));
  return { cardinality, targets };
}

/** The grid swaps itself on filter and page changes; back/forward and reloads get the whole page. */
function wantsGridOnly(req: FastifyRequest): boolean {
  return isHtmx(req) && req.headers['hx-target'] === 'grid' && req.headers['hx-history-restore-request'] !== 'true';
}

export default async function datasetPages(app: FastifyInstance): Promise<void> {
  const { projects, datasets, imports, settings } = app.studio;

  const listFragment = async (projectId: string) => ({
    project: await projects.get(projectId),
    datasets: (await datasets.list(projectId)).map(withLabels),
  });

  app.get('/projects/:project_id', async (req, reply) => {
    const { project_id } = parseIds(ProjectIds, req.params);
    const project = await projects.get(project_id);
    const layout = await projectLayout(app, project, { title: project.name, section: 'project', crumbs: projectCrumbs(project) });
    return reply.view('pages/project', {
      ...layout,
      project,
      datasets: (await datasets.list(project_id)).map(withLabels),
      maxUploadLabel: formatBytes(settings.maxUploadBytes),
      tasks: taskChoices(),
    });
  });

  // The sidebar refreshes itself when datasets come and go.
  app.get('/projects/:project_id/nav', async (req, reply) => {
    const { project_id } = parseIds(ProjectIds, req.params);
    const q = parseForm(NavQuery, req.query);
    const project = await projects.get(project_id);
    const layout = await projectLayout(app, project, { title: project.name, section: q.section, crumbs: [] }, q.dataset);
    return reply.view('fragments/project-nav', { nav: layout.nav, section: q.section });
  });

  app.get('/projects/:project_id/datasets-list', async (req, reply) => {
    const { project_id } = parseIds(ProjectIds, req.params);
    return reply.view('fragments/dataset-list', await listFragment(project_id));
  });

  // Server-side sources (folder, CSV, COCO, YOLO); zip uploads go to the API's multipart route.
  app.post('/projects/:project_id/datasets', async (req, reply) => {
    const { project_id } = parseIds(ProjectIds, req.params);
    const form = parseForm(ImportForm, req.body);
    const started = await imports.start(project_id, { name: form.name, task: form.task, source: toSource(form) });
    reply.code(202).header('HX-Trigger', 'datasets-changed');
    return reply.view('fragments/job', { job: await jobWidget(app, project_id, started.job) });
  });

  app.get('/projects/:project_id/datasets/:dataset_id', async (req, reply) => {
    const { project_id, dataset_id } = parseIds(DatasetIds, req.params);
    const q = parseForm(GridQuery, req.query);
    reply.header('Vary', 'HX-Request, HX-Target');
    const grid = await gridData(project_id, dataset_id, q);
    if (wantsGridOnly(req)) return reply.view('fragments/grid', grid);

    const project = await projects.get(project_id);
    const dataset = await datasets.get(project_id, dataset_id);
    const layout = await projectLayout(
      app,
      project,
      { title: dataset.name, section: 'dataset', crumbs: [...projectCrumbs(project), { label: dataset.name }] },
      dataset_id,
    );
    return reply.view('pages/dataset', {
      ...layout,
      ...grid,
      ...(await splitsCard(app, project_id, dataset_id, q)),
      project,
      dataset,
      pageUrl: datasetBase(project_id, dataset_id),
      panels: taskPanels(dataset),
      // With splits, the bars are stacked by subset of the split in view (the first by default).
      histogram: await datasets.classHistogram(project_id, dataset_id, q.split ?? dataset.split_names[0]),
    });
  });

  app.delete('/projects/:project_id/datasets/:dataset_id', async (req, reply) => {
    const { project_id, dataset_id } = parseIds(DatasetIds, req.params);
    const { redirect } = parseForm(DeleteQuery, req.query);
    await imports.removeDataset(project_id, dataset_id);
    if (redirect) return reply.header('HX-Redirect', `/projects/${project_id}`).code(204).send();
    return reply.view('fragments/dataset-list', await listFragment(project_id));
  });

  async function gridData(projectId: string, datasetId: string, q: GridQuery) {
    const page = q.page ?? 1;
    const images = await datasets.listImages(projectId, datasetId, {
      page,
      page_size: PAGE_SIZE,
      label: q.label,
      split: q.split,
      subset: q.subset,
    });
    const base = datasetBase(projectId, datasetId);
    const hrefOf = (n: number) => {
      const params = new URLSearchParams();
      if (q.label) params.set('label', q.label);
      if (q.split) params.set('split', q.split);
      if (q.subset) params.set('subset', q.subset);
      if (n > 1) params.set('page', String(n));
      const s = params.toString();
      return s ? `${base}?${s}` : base;
    };
    return {
      base,
      filters: q,
      filtered: Boolean(q.label || q.subset),
      images: { ...images, items: images.items.map((i) => ({ ...i, thumb_url: thumbUrl(projectId, datasetId, i.id) })) },
      pager: pager(page, PAGE_SIZE, images.total, hrefOf),
    };
  }
}
