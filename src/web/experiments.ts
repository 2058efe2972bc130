import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { createExperiment } from '../core/experiments.ts';
import { isAppError } from '../kernel/errors.ts';
import { DatasetIdSchema } from '../schemas/common.ts';
import { SplitNameSchema } from '../schemas/dataset.ts';
import { AugmentationSchema, HyperparametersSchema, IMAGENET_MEAN, IMAGENET_STD, ResolvedAugmentationSchema } from '../schemas/experiment.ts';
import { PRESETS } from '../training/presets.ts';
import { getTask, hasTask, type AnyTask } from '../tasks/index.ts';
import { renderAugmentationPreview } from '../training/data/preview.ts';
import { ExperimentFormSchema, fieldErrors, formToBody } from './experiments-form.ts';
import { ProjectIds, parseForm, parseIds } from './forms.ts';
import { projectCrumbs, projectLayout } from './layout.ts';
import { modelRow, modelsUrl } from './models.ts';
import { weightsOption, weightsTitle } from './weights-view.ts';
import { trainingUrl } from './training-view.ts';

/**
 * The new-experiment page: dataset and split (with the split's subset counts), model, input size,
 * what to train, presets, every hyperparameter, augmentation with a live preview. The form posts
 * here; a refused form is answered beside it, field by field (see experiments-form.ts).
 */

const PREVIEW_COUNT = 8;
/** Preview tiles are shown at 96 px; rendering above this only costs time. */
const PREVIEW_MAX_SIDE = 160;

const ModelWeightsQuery = z.object({ 'model.choice': z.string().max(200).optional(), 'model.weights_id': z.string().max(64).optional() });

const SplitCheckQuery = z.object({
  dataset_id: z.preprocess((v) => (v === '' ? undefined : v), DatasetIdSchema.optional()),
  split_name: z.preprocess((v) => (v === '' ? undefined : v), SplitNameSchema.optional()),
  val_dataset_id: z.preprocess((v) => (v === '' ? undefined : v), DatasetIdSchema.optional()),
  test_dataset_id: z.preprocess((v) => (v === '' ? undefined : v), DatasetIdSchema.optional()),
});

/** A fresh client token for one rendering of the form: a resubmitted form creates one experiment. */
const clientToken = (): string => randomBytes(18).toString('base64url');

/** An image's truth in a caption: its class, its labels, or its target values; null when it has none. */
function truthLabel(img: { label: string | null; labels?: string[]; targets?: Record<string, number> }): string | null {
  if (img.label !== null) return img.label;
  if (img.labels) return img.labels.length ? img.labels.join(', ') : 'no label';
  if (img.targets) return Object.entries(img.targets).map(([k, v]) => `${k} ${v}`).join(', ');
  return null;
}

export default async function experimentPages(app: FastifyInstance): Promise<void> {
  const { projects, datasets, models, experiments, store, weights } = app.studio;

  /**
   * The Weights field for a model choice: a catalog architecture's ready weights (newest first),
   * after "Random initialisation"; null for an imported backbone (it brings its own weights).
   */
  async function weightsField(choice: string | undefined, chosen?: string) {
    const m = /^arch:([a-z0-9_]{1,64})$/.exec(choice ?? '');
    if (!m) return null;
    let ready;
    try {
      ready = (await weights.list(m[1])).filter((w) => w.status === 'ready').reverse();
    } catch (e) {
      if (isAppError(e) && e.code === 'NOT_FOUND') return null;
      throw e;
    }
    return {
      model: m[1],
      models_url: modelsUrl(m[1]),
      options: ready.map((w) => ({ id: w.id, ...weightsOption(w), title: weightsTitle(w), selected: w.id === chosen })),
    };
  }

  /** Ready datasets of a registered task: the ones an experiment can train on. */
  async function trainable(projectId: string) {
    return (await datasets.list(projectId)).filter((d) => d.status === 'ready' && hasTask(d.task));
  }

  async function splitCheck(projectId: string, datasetId: string | undefined, splitName: string | undefined, chosen: { val?: string; test?: string } = {}) {
    const list = await trainable(projectId);
    const dataset = list.find((d) => d.id === datasetId) ?? list.find((d) => d.split_names.length > 0) ?? list[0] ?? null;
    if (!dataset) return { project_id: projectId, dataset: null, split: null, splits: [] as string[], classes: 0, outputs_label: 'classes', warnings: [] as string[], task: null, others: [], val_dataset_id: '', test_dataset_id: '' };
    const task = getTask(dataset.task);
    const name = splitName && dataset.split_names.includes(splitName) ? splitName : dataset.split_names[0];
    const split = name ? await datasets.getSplit(projectId, dataset.id, name) : null;
    // Other ready datasets of the task can be the validation or the test set (the service checks their images).
    const others = list.filter((d) => d.id !== dataset.id && d.task === dataset.task).map((d) => ({ id: d.id, name: d.name, image_count: d.image_count }));
    const pick = (id: string | undefined) => (id !== undefined && others.some((o) => o.id === id) ? id : '');
    const valDataset = pick(chosen.val);
    const warnings: string[] = [];
    if (!split) warnings.push('This dataset has no split yet: make one on its page first.');
    else {
      const withTrain = Object.values(split.per_class).filter((c) => c.train > 0).length;
      if (split.counts.train === 0) warnings.push('The split has no training images.');
      else if (withTrain < task.minTrainClasses) warnings.push(`The training set needs images of at least ${task.minTrainClasses} classes.`);
      if (split.counts.val === 0 && valDataset === '') warnings.push('No validation images: val loss and metrics will not be measured.');
      const missing = Object.entries(split.per_class).filter(([, c]) => c.train === 0).map(([k]) => k);
      if (missing.length > 0 && split.counts.train > 0) warnings.push(`No training images for: ${missing.join(', ')}.`);
    }
    const outputs = task.outputNames({ task: dataset.task, classes: dataset.classes, target_names: dataset.target_names ?? [], images: [] });
    // Regression's outputs are its target columns; the other tasks' are classes.
    const outputsLabel = (dataset.target_names ?? []).length > 0 && outputs.length === dataset.target_names.length ? 'targets' : 'classes';
    return {
      project_id: projectId,
      dataset,
      split,
      splits: dataset.split_names,
      classes: outputs.length,
      outputs_label: outputsLabel,
      warnings,
      task: taskForm(task),
      others,
      val_dataset_id: valDataset,
      test_dataset_id: pick(chosen.test),
    };
  }

  /** What the form shows of the dataset's task: its losses, its own hyperparameters, its early-stopping metrics. */
  function taskForm(task: AnyTask) {
    return {
      name: task.name,
      title: task.title,
      losses: [...task.losses],
      fields: [...(task.hyperparameters ?? [])],
      metrics: [{ key: 'val_loss', label: 'Val loss' }, ...task.epochMetrics.map((m) => ({ key: m.key, label: m.label.replace(/^validation\b/i, 'Val') }))],
    };
  }

  app.get('/projects/:project_id/experiments/new', async (req, reply) => {
    const { project_id } = parseIds(ProjectIds, req.params);
    const project = await projects.get(project_id);
    const layout = await projectLayout(app, project, {
      title: 'New experiment',
      section: 'project',
      crumbs: [...projectCrumbs(project), { label: 'Training', href: trainingUrl(project_id) }, { label: 'New experiment' }],
    });
    const all = (await models.list()).map(modelRow);
    const check = await splitCheck(project_id, undefined, undefined);
    const catalog = all.filter((m) => m.kind === 'catalog');
    // The form preselects small_cnn (else the first architecture): its weights are offered.
    const first = catalog.find((m) => m.name === 'small_cnn') ?? catalog[0];
    const existing = (await experiments.list(project_id)).length;
    return reply.view('pages/experiment-new', {
      ...layout,
      section: 'training',
      project,
      datasets: await trainable(project_id),
      check,
      catalog,
      imported: all.filter((m) => m.kind === 'imported'),
      weights: first ? await weightsField(`arch:${first.name}`) : null,
      client_token: clientToken(),
      defaults: {
        name: `Experiment ${existing + 1}`,
        hp: HyperparametersSchema.parse({}),
        aug: AugmentationSchema.parse({}),
        imagenet: { mean: IMAGENET_MEAN, std: IMAGENET_STD },
      },
      presets: PRESETS,
    });
  });

  app.get('/projects/:project_id/experiments/split-check', async (req, reply) => {
    const { project_id } = parseIds(ProjectIds, req.params);
    const q = parseForm(SplitCheckQuery.passthrough(), req.query);
    // The task's fields and early-stopping metrics follow the dataset (swapped out of band).
    const check = await splitCheck(project_id, q.dataset_id, q.split_name, { val: q.val_dataset_id, test: q.test_dataset_id });
    return reply.view('fragments/experiment-split-check', { check, hp: HyperparametersSchema.parse({}), oob: true });
  });

  // The model changed: the Weights field follows (a catalog architecture's ready weights, or none).
  app.get('/projects/:project_id/experiments/model-weights', async (req, reply) => {
    parseIds(ProjectIds, req.params);
    const q = parseForm(ModelWeightsQuery, req.query);
    return reply.view('fragments/experiment-weights', { weights: await weightsField(q['model.choice'], q['model.weights_id']) });
  });

  // Follows every change of the augmentation fields, so an unfinished form is answered in place.
  app.get('/projects/:project_id/experiments/preview', async (req, reply) => {
    const { project_id } = parseIds(ProjectIds, req.params);
    const form = parseForm(ExperimentFormSchema, req.query);
    try {
      return reply.view('fragments/experiment-preview', await preview(project_id, form));
    } catch (e) {
      if (isAppError(e) && (e.code === 'VALIDATION_ERROR' || e.code === 'NOT_FOUND')) return reply.view('fragments/inline-error', { message: e.message });
      throw e;
    }
  });

  async function preview(projectId: string, form: Record<string, string>) {
    const body = formToBody(form);
    const aug = ResolvedAugmentationSchema.safeParse({ ...(body.augmentation as object), normalize: { mean: IMAGENET_MEAN, std: IMAGENET_STD } });
    if (!aug.success) {
      const first = aug.error.issues[0];
      return { error: `augmentation.${first.path.join('.')}: ${first.message}`, samples: [], image: null };
    }
    const datasetId = String(body.dataset_id ?? '');
    const splitName = String(body.split_name ?? '');
    if (!DatasetIdSchema.safeParse(datasetId).success) return { error: 'Choose a dataset to preview its images.', samples: [], image: null };
    const ds = await datasets.get(projectId, datasetId);
    const split = ds.split_names.includes(splitName) ? splitName : undefined;
    const page = await datasets.listImages(projectId, datasetId, { page: 1, page_size: 500, split, subset: split ? 'train' : undefined });
    if (page.items.length === 0) return { error: 'The training set has no images to preview.', samples: [], image: null };
    const seed = Number.parseInt(form.preview_seed ?? '0', 10) || 0;
    const image = page.items[seed % page.items.length];
    const bytes = await store.readFile(await datasets.imageFilePath(projectId, datasetId, image.id), 'image file');
    const inputSize = typeof (body.model as Record<string, unknown> | undefined)?.input_size === 'number' ? Number((body.model as Record<string, unknown>).input_size) : 224;
    const size = Math.max(16, Math.min(PREVIEW_MAX_SIDE, Math.round(inputSize)));
    const pngs = await renderAugmentationPreview(bytes, { size, augmentation: aug.data, count: PREVIEW_COUNT, seed });
    return {
      error: null,
      image: { label: truthLabel(image), file: image.file },
      samples: pngs.map((b) => `data:image/png;base64,${b.toString('base64')}`),
      inputSize,
    };
  }

  app.post('/projects/:project_id/experiments', async (req, reply) => {
    const { project_id } = parseIds(ProjectIds, req.params);
    const form = parseForm(ExperimentFormSchema, req.body);
    // The form's client token makes a resubmission (double submit, retry, back and submit) land
    // on the experiment, and the run, the first submission made.
    let created;
    try {
      created = await createExperiment(app.studio, project_id, formToBody(form) as Parameters<typeof experiments.create>[1], { start: form.start === '1' });
    } catch (e) {
      if (isAppError(e) && e.code === 'VALIDATION_ERROR') return formErrors(reply, e.status, fieldErrors(e.message, e.details));
      // A second dataset that is gone (404) or still importing (409): beside its field too.
      if (isAppError(e) && (e.code === 'NOT_FOUND' || e.code === 'CONFLICT') && /^(val|test)_dataset_id: /.test(e.message)) return formErrors(reply, e.status, fieldErrors(e.message, undefined));
      if (isAppError(e) && e.code === 'CONFLICT' && /^client_token /.test(e.message)) {
        const message = 'This form already created an experiment with other values. Reload the page to create another one.';
        return formErrors(reply, e.status, [{ field: '', label: 'Experiment', message }]);
      }
      throw e;
    }
    if (created.replayed) reply.header('Idempotent-Replayed', 'true');
    return reply.header('HX-Redirect', trainingUrl(project_id, created.experiment.id, created.run?.id)).code(200).send();
  });

  function formErrors(reply: FastifyReply, status: number, errors: ReturnType<typeof fieldErrors>) {
    return reply.code(status).view('fragments/experiment-errors', { errors });
  }
}
