import { createHash } from 'node:crypto';
import {
  ClientTokenSchema,
  ExperimentCreateSchema,
  ExperimentPatchSchema,
  ExperimentSettingsSchema,
  mergeExperimentPatch,
  type ExperimentCreate,
  type ExperimentCreateParsed,
  type ExperimentFile,
  type ExperimentPatch,
  type ExperimentSettings,
  type ResolvedModelChoice,
} from '../schemas/experiment.ts';
import { listModels } from '../models/index.ts';
import { getTask, hasTask, listTasks } from '../tasks/index.ts';
import { ProjectDoc } from '../schemas/project.ts';
import { newId } from '../storage/ids.ts';
import {
  listExperimentIds,
  modifyExperiment,
  readExperiment,
  removeExperiment,
  writeExperiment,
} from '../storage/experiments.ts';
import { listRunIds, readRun } from '../storage/runs.ts';
import type { WeightsService } from './weights.ts';
import type { Workspace } from '../storage/workspace.ts';
import type { JobsService } from '../jobs/service.ts';
import type { DatasetsService } from './datasets.ts';
import type { RunSummary, RunsService } from './runs.ts';
import { otherDatasetSelection } from '../evaluation/run-evaluation.ts';
import { AppError, conflict, notFound, validation } from '../kernel/errors.ts';
import { catalogBlockCount, type ModelEntry, type ModelsService } from './models.ts';
import { announceDeleted, parseInput, projectGate } from './projects.ts';

/** What the API returns for an experiment: its file without the version stamp and the request hash. */
export type Experiment = Omit<ExperimentFile, 'schema_version' | 'request_hash'>;

export interface CreateOptions {
  /** A client token from outside the body (the `Idempotency-Key` header); the body's `client_token`, when also given, must equal it. */
  clientToken?: string;
  /** The request also starts a run (`then` does): part of what a repeat must match. */
  start?: boolean;
  /**
   * Runs inside the project's gate once the experiment is created, or found again by its token
   * (`replayed`): what the request does with it that a repeat must not do twice (the form starts
   * its run here).
   */
  then?: (experiment: Experiment, replayed: boolean) => Promise<void>;
}

export interface CreateOutcome {
  experiment: Experiment;
  /** The token was used before in this project: this is the experiment that request made, nothing new was made. */
  replayed: boolean;
}

export interface ExperimentsService {
  /** `createOnce`'s experiment. */
  create(projectId: string, body: ExperimentCreate, opts?: CreateOptions): Promise<Experiment>;
  /**
   * Creates an experiment, alone among the project's creations and deletion (its gate). With a
   * client token (the body's `client_token` or `opts.clientToken`) already used by an experiment of
   * the project, it creates nothing and answers that experiment (`replayed`), or CONFLICT when this
   * body (normalized: defaults filled, the token left out) is not the one that created it.
   */
  createOnce(projectId: string, body: ExperimentCreate, opts?: CreateOptions): Promise<CreateOutcome>;
  /** Oldest first. */
  list(projectId: string): Promise<Experiment[]>;
  get(projectId: string, experimentId: string): Promise<Experiment>;
  update(projectId: string, experimentId: string, patch: ExperimentPatch): Promise<Experiment>;
  /** NOT_FOUND for no such experiment; CONFLICT while one of its runs is queued or running (a run is not given up silently). */
  checkRemovable(projectId: string, experimentId: string): Promise<void>;
  /**
   * Deletes the experiment with its runs, evaluation and exports (releasing its exports' loaded
   * predict sessions), after `checkRemovable`. Routes go through `deleteExperiment`, which first
   * stops the evaluation or exports still writing into it.
   */
  remove(projectId: string, experimentId: string): Promise<void>;
  /**
   * The stored settings, checked again against the dataset, split and model as they are now
   * (a run starts from these); VALIDATION_ERROR when something they name has changed or gone.
   */
  settingsForRun(projectId: string, experimentId: string): Promise<ExperimentSettings>;
  /** The model entry (catalog or imported) an experiment trains. */
  modelOf(model: { architecture?: string; backbone_id?: string }): Promise<ModelEntry>;
}

/** The services an experiment deletion goes through. */
export interface ExperimentDeletion {
  experiments: Pick<ExperimentsService, 'checkRemovable' | 'remove'>;
  jobs: Pick<JobsService, 'cancelWithin'>;
}

/**
 * Deletes an experiment as the API and the pages do: NOT_FOUND / CONFLICT (a run still active)
 * before anything is touched, then its evaluation and export jobs are cancelled and settled, then
 * the folder goes.
 */
export async function deleteExperiment({ experiments, jobs }: ExperimentDeletion, projectId: string, experimentId: string): Promise<void> {
  await experiments.checkRemovable(projectId, experimentId);
  await jobs.cancelWithin({ projectId, experimentId });
  await experiments.remove(projectId, experimentId);
}

/** The services the form's create (and start) goes through. */
export interface ExperimentCreation {
  experiments: Pick<ExperimentsService, 'createOnce'>;
  runs: Pick<RunsService, 'start' | 'list'>;
}

/**
 * Creates an experiment as the API and the new-experiment form do, and with `start` its first run,
 * both once per client token: a repeat (a retried script, a double submit, back and submit again)
 * finds the experiment and the run the first request started (the experiment's oldest), and starts
 * one only when there is none (the first request failed before it could).
 */
export async function createExperiment(
  { experiments, runs }: ExperimentCreation,
  projectId: string,
  body: ExperimentCreate,
  opts: { clientToken?: string; start: boolean },
): Promise<CreateOutcome & { run: RunSummary | null }> {
  let run: RunSummary | null = null;
  const out = await experiments.createOnce(projectId, body, {
    ...(opts.clientToken !== undefined ? { clientToken: opts.clientToken } : {}),
    start: opts.start,
    then: async (experiment, replayed) => {
      if (!opts.start) return;
      run = (replayed ? (await runs.list(projectId, experiment.id)).at(-1) : undefined) ?? (await runs.start(projectId, experiment.id)).run;
    },
  });
  return { ...out, run };
}

export interface ExperimentsDeps {
  store: Workspace;
  datasets: DatasetsService;
  models: ModelsService;
  /** Pretrained weights: `model.weights_id` must name ready weights of the architecture (src/core/weights.ts). */
  weights?: Pick<WeightsService, 'requireReady'>;
  /** The project's gate (src/core/projects.ts); the workspace's own when not given. */
  gate?: <T>(projectId: string, fn: () => Promise<T>) => Promise<T>;
}

const view = ({ schema_version: _v, request_hash: _h, ...rest }: ExperimentFile): Experiment => rest;

/** The settings of a stored experiment: the file without its identity, times and create token. */
function settingsOf(f: ExperimentFile) {
  const { schema_version: _v, id: _id, project_id: _p, created_at: _c, updated_at: _u, client_token: _t, request_hash: _h, ...settings } = f;
  return settings;
}

/** JSON with object keys sorted, so equal values give equal text. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** sha256 of a create request as the schema normalized it (defaults filled), without its token, with whether it starts a run. */
export function requestHash(body: Omit<ExperimentCreateParsed, 'client_token'> & { start_run: boolean }): string {
  return createHash('sha256').update(canonical(body)).digest('hex');
}

/**
 * The fine-tuning settings a person did not choose: a pretrained model (an imported backbone or
 * loaded weights) trains its head alone for the first third of the epochs, then everything with
 * the backbone at a tenth of the rate — on a few hundred images a full fine-tune from the start
 * lets the fresh head's large gradients wreck the pretrained features (plan/training.md). A model
 * from random weights trains everything alike. A frozen backbone with nothing else to train
 * (`trainable: "head"`) is refused when asked for.
 */
export function fineTuneDefaults(
  model: { backbone_id?: string; weights_id?: string; trainable: ResolvedModelChoice['trainable'] },
  h: { epochs: number; freeze_backbone_epochs?: number; backbone_lr_multiplier?: number },
): { freeze_backbone_epochs: number; backbone_lr_multiplier: number } {
  const pretrained = model.backbone_id !== undefined || model.weights_id !== undefined;
  const headOnly = model.trainable === 'head';
  if (headOnly && (h.freeze_backbone_epochs ?? 0) > 0) {
    throw validation('hyperparameters.freeze_backbone_epochs: only the head trains (model.trainable is "head"): there is no backbone to unfreeze');
  }
  const freeze = h.freeze_backbone_epochs ?? (pretrained && !headOnly && h.epochs >= 3 ? Math.max(1, Math.round(h.epochs / 3)) : 0);
  return { freeze_backbone_epochs: freeze, backbone_lr_multiplier: h.backbone_lr_multiplier ?? (pretrained ? 0.1 : 1) };
}

export function createExperimentsService({ store, datasets, models, weights, gate = projectGate(store) }: ExperimentsDeps): ExperimentsService {
  async function checkRemovable(projectId: string, experimentId: string): Promise<void> {
    await readExperiment(store, projectId, experimentId);
    for (const runId of await listRunIds(store, projectId, experimentId)) {
      const run = await readRun(store, { projectId, experimentId, runId }).catch(() => null);
      if (run && (run.status === 'queued' || run.status === 'running')) {
        throw conflict(`run '${runId}' of this experiment is ${run.status}: cancel it first`);
      }
    }
  }

  async function requireProject(projectId: string): Promise<void> {
    if ((await store.read(ProjectDoc, store.projectFile(projectId))) === null) throw notFound('project', projectId);
  }

  /** The project's experiment created with this client token, if one still exists. */
  async function findByToken(projectId: string, token: string): Promise<ExperimentFile | null> {
    for (const id of await listExperimentIds(store, projectId)) {
      const exp = await readExperiment(store, projectId, id).catch(() => null);
      if (exp?.client_token === token) return exp;
    }
    return null;
  }

  async function modelOf(model: { architecture?: string; backbone_id?: string }): Promise<ModelEntry> {
    if (model.backbone_id !== undefined) {
      try {
        return await models.get(model.backbone_id);
      } catch {
        throw validation(`model.backbone_id: no imported model '${model.backbone_id}' (import one under /api/models/import)`);
      }
    }
    const name = model.architecture ?? '';
    if (!listModels().includes(name)) {
      throw validation(`model.architecture: '${name}' is not in the catalog (one of: ${listModels().join(', ')})`);
    }
    return models.catalogEntry(name);
  }

  /**
   * The checks a schema cannot make: the dataset, split and model exist and fit together, and the
   * model-dependent defaults (input size, normalisation) are filled from the chosen model.
   */
  async function resolve(projectId: string, s: Omit<ExperimentSettings, 'model' | 'augmentation' | 'task'> & {
    task?: string;
    model: Omit<ResolvedModelChoice, 'input_size'> & { input_size?: number };
    augmentation: Omit<ExperimentSettings['augmentation'], 'normalize'> & { normalize: ExperimentSettings['augmentation']['normalize'] | null };
  }): Promise<ExperimentSettings> {
    await requireProject(projectId);
    let ds;
    try {
      ds = await datasets.get(projectId, s.dataset_id);
    } catch {
      throw validation(`dataset_id: no dataset '${s.dataset_id}' in this project`);
    }
    if (ds.status !== 'ready') throw validation(`dataset_id: the dataset is ${ds.status}, not ready`);
    if (!hasTask(ds.task)) throw validation(`dataset_id: a ${ds.task} dataset cannot be trained yet (tasks: ${listTasks().map((t) => t.name).join(', ')})`);
    if (s.task !== undefined && s.task !== ds.task) throw validation(`task: the dataset is a ${ds.task} dataset; an experiment takes its task from its dataset`);
    const task = getTask(ds.task);
    const h = s.hyperparameters;
    if (h.loss !== undefined && !task.losses.includes(h.loss)) {
      throw validation(`hyperparameters.loss: '${h.loss}' is not a ${task.name} loss (one of: ${task.losses.join(', ')})`);
    }
    // A task-specific setting given to a task that does not read it would be silently ignored.
    const own = new Set(task.hyperparameters ?? []);
    const unused: [keyof typeof h, unknown, string][] = [
      ['class_weights', 'none', 'class weights (classification)'],
      ['pos_weight', 'none', 'positive weights (multi-label)'],
      ['huber_delta', 1, 'Huber delta (regression, loss "huber")'],
      ['label_smoothing', 0, 'label smoothing (classification, multi-label)'],
    ];
    for (const [field, neutral, what] of unused) {
      if (!own.has(field as 'class_weights') && h[field] !== neutral) {
        throw validation(`hyperparameters.${String(field)}: a ${task.name} experiment takes no ${what}; leave it out`);
      }
    }
    const metrics = ['val_loss', ...task.epochMetrics.map((m) => m.key)];
    if (h.early_stopping && !metrics.includes(h.early_stopping.metric)) {
      throw validation(`hyperparameters.early_stopping.metric: must be one of ${metrics.map((m) => `"${m}"`).join(', ')} for ${task.name}`);
    }
    if (!ds.split_names.includes(s.split_name)) {
      throw validation(`split_name: the dataset has no split '${s.split_name}' (it has: ${ds.split_names.join(', ') || 'none'})`);
    }
    const split = await datasets.getSplit(projectId, s.dataset_id, s.split_name);
    if (split.counts.train === 0) throw validation(`split_name: split '${s.split_name}' has no training images`);
    const labelled = Object.values(split.per_class).filter((c) => c.train > 0).length;
    if (labelled < task.minTrainClasses) {
      throw validation(`split_name: the training set of '${s.split_name}' needs images of at least ${task.minTrainClasses} ${task.minTrainClasses === 1 ? 'class' : 'classes'}`);
    }

    // A second dataset as the validation or test set: checked as evaluation checks another dataset.
    const names = task.outputNames({ task: ds.task, classes: ds.classes, target_names: ds.target_names ?? [], images: [] });
    for (const which of ['val', 'test'] as const) {
      const field = `${which}_dataset_id` as const;
      const id = s[field];
      if (id === null) continue;
      if (id === s.dataset_id) throw validation(`${field}: '${ds.name}' is the training dataset; leave ${field} null to use the split's ${which} subset`);
      const other = await store.readDataset(projectId, id);
      if (!other) throw new AppError('NOT_FOUND', `${field}: no dataset '${id}' in this project`);
      otherDatasetSelection(other, { task, state: null, names }, { field, use: which === 'val' ? 'used for validation' : 'used as the test set', owner: 'the training dataset' });
    }

    const entry = await modelOf(s.model);
    const weightsId = s.model.weights_id;
    if (weightsId !== undefined) {
      if (entry.kind !== 'catalog') throw validation('model.weights_id: pretrained weights go with a catalog architecture; an imported backbone brings its own');
      if (!weights) throw validation('model.weights_id: pretrained weights are not available here');
      await weights.requireReady(entry.name, weightsId);
    }
    const input_size = s.model.input_size ?? entry.input_size;
    if (entry.kind === 'imported' && input_size !== entry.input_size) {
      throw validation(`model.input_size: the imported model '${entry.name}' takes ${entry.input_size}×${entry.input_size} images`);
    }
    const t = s.model.trainable;
    if (typeof t === 'object') {
      // a catalog model's block count is known once it is built (cached); an imported one's is stored
      const blocks = entry.block_count ?? (entry.kind === 'catalog' ? catalogBlockCount(entry.name) : undefined);
      if (blocks !== undefined && t.last_blocks > blocks + 1) {
        throw validation(`model.trainable.last_blocks: the model has ${blocks + 1} blocks (the head included)`);
      }
    }
    const model: ResolvedModelChoice = { ...s.model, input_size };
    const normalize = s.augmentation.normalize ?? { mean: entry.mean, std: entry.std };
    const hyperparameters = { ...h, ...fineTuneDefaults(model, h) };
    return parseInput(ExperimentSettingsSchema, { ...s, task: task.name, model, hyperparameters, augmentation: { ...s.augmentation, normalize } }, 'experiment');
  }

  async function createOnce(projectId: string, body: ExperimentCreate, opts: CreateOptions = {}): Promise<CreateOutcome> {
    const { client_token: bodyToken, ...request } = parseInput(ExperimentCreateSchema, body, 'experiment');
    if (opts.clientToken !== undefined) parseInput(ClientTokenSchema, opts.clientToken, 'Idempotency-Key');
    if (opts.clientToken !== undefined && bodyToken !== undefined && opts.clientToken !== bodyToken) {
      throw validation('client_token: the body\'s client_token and the Idempotency-Key header differ: send one of them, or the same token in both');
    }
    const token = opts.clientToken ?? bodyToken;
    const hash = requestHash({ ...request, start_run: opts.start ?? false });
    return gate(projectId, async () => {
      if (token !== undefined) {
        await requireProject(projectId);
        const prior = await findByToken(projectId, token);
        if (prior) {
          if (prior.request_hash !== undefined && prior.request_hash !== hash) {
            throw conflict(`client_token '${token}' already created the experiment '${prior.name}' (${prior.id}) from another body: repeat that request unchanged, or send a new token to create another experiment`);
          }
          const experiment = view(prior);
          await opts.then?.(experiment, true);
          return { experiment, replayed: true };
        }
      }
      const settings = await resolve(projectId, request);
      const now = new Date().toISOString();
      const file: ExperimentFile = {
        schema_version: 1,
        id: newId('exp'),
        project_id: projectId,
        ...settings,
        ...(token !== undefined ? { client_token: token, request_hash: hash } : {}),
        created_at: now,
        updated_at: now,
      };
      const experiment = view(await writeExperiment(store, file));
      await opts.then?.(experiment, false);
      return { experiment, replayed: false };
    });
  }

  return {
    modelOf,

    async settingsForRun(projectId, experimentId) {
      return resolve(projectId, settingsOf(await readExperiment(store, projectId, experimentId)));
    },

    createOnce,

    async create(projectId, body, opts) {
      return (await createOnce(projectId, body, opts)).experiment;
    },

    async list(projectId) {
      await requireProject(projectId);
      const out: Experiment[] = [];
      for (const id of await listExperimentIds(store, projectId)) {
        const exp = await readExperiment(store, projectId, id).catch(() => null);
        if (exp) out.push(view(exp));
      }
      return out.sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
    },

    async get(projectId, experimentId) {
      await requireProject(projectId);
      return view(await readExperiment(store, projectId, experimentId));
    },

    async update(projectId, experimentId, patch) {
      const p = parseInput(ExperimentPatchSchema, patch, 'experiment update');
      const current = await readExperiment(store, projectId, experimentId);
      const merged = mergeExperimentPatch(settingsOf(current), p) as ExperimentSettings;
      // A new model brings its own input size unless the patch names one.
      const newModel = p.model && ('architecture' in p.model || 'backbone_id' in p.model);
      if (newModel && !(p.model && 'input_size' in p.model)) delete (merged.model as { input_size?: number }).input_size;
      const { model, augmentation, ...rest } = merged;
      const checked = parseInput(ExperimentSettingsSchema.omit({ model: true, augmentation: true }), rest, 'experiment');
      const resolved = await resolve(projectId, { ...checked, model, augmentation });
      const out = await modifyExperiment(store, projectId, experimentId, (cur) => ({ ...cur, ...resolved, updated_at: new Date().toISOString() }));
      return view(out);
    },

    checkRemovable,

    async remove(projectId, experimentId) {
      await checkRemovable(projectId, experimentId);
      await removeExperiment(store, projectId, experimentId);
      await announceDeleted(store, { projectId, experimentId });
    },
  };
}

