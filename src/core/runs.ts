import os from 'node:os';
import type { JobEvent } from '../jobs/events.ts';
import { createJobRegistry } from '../jobs/registry.ts';
import { createDedicatedPool, type DedicatedPools } from '../jobs/pool.ts';
import { createJobsService, type JobOutcome, type JobScope, type JobsService } from '../jobs/service.ts';
import type { JobView } from '../jobs/registry.ts';
import { submitWorkerJob } from '../jobs/submit.ts';
import type { CheckpointInfo, ExperimentSettings, MetricsLine, RunConfigFile, RunFile, RunStatus, Warning } from '../schemas/experiment.ts';
import { getTask, hasTask } from '../tasks/index.ts';
import { newId } from '../storage/ids.ts';
import { readModelRecord } from '../storage/models.ts';
import { listExperimentIds, readExperiment } from '../storage/experiments.ts';
import { listRunIds, modifyRun, readMetrics, readRun, readRunConfig, writeRun, type RunRef } from '../storage/runs.ts';
import type { Workspace } from '../storage/workspace.ts';
import type { TrainWorkerMessage, TrainWorkerPayload, TrainWorkerResult } from '../workers/train.ts';
import { AppError, conflict, validation } from '../kernel/errors.ts';
import type { ExperimentsService } from './experiments.ts';

/**
 * Runs of an experiment: start, cancel, resume, and what the pages and the API read of them.
 * Training runs one at a time (a JobsService of its own with one slot: the rest wait `queued`
 * in its record and on the page), in the training thread (a one-thread pool, src/jobs/pool.ts).
 * Their events are forwarded into the studio's job event log, so `/api/jobs/:id/events` streams a
 * run exactly like any other job: `progress`, `metric` (one per epoch), `log`, `done`/`error`.
 */

/** The training thread; tests may stand in a pool of their own. */
export type TrainingPool = DedicatedPools['train'];

export type RunSummary = Omit<RunFile, 'schema_version'> & {
  /** The last epoch's metrics line, for lists; null before the first epoch ends. */
  last_metrics: MetricsLine | null;
  /** What makes the result not what it seems (the task's `runWarnings`): code, message with what to try. */
  warnings: Warning[];
};

export interface RunDetail extends RunSummary {
  /** config.json: the resolved config the run trains with (null until the worker wrote it). */
  config: Omit<RunConfigFile, 'schema_version'> | null;
  metrics: MetricsLine[];
  checkpoints: CheckpointInfo[];
}

export interface RunStarted {
  run: RunSummary;
  job: JobView;
}

export interface QueueEntry {
  run_id: string;
  experiment_id: string;
  project_id: string;
  job_id: string;
  status: 'queued' | 'running';
}

export interface RunsService {
  /** `seed` overrides the experiment's for this run (stored in its config.json). */
  start(projectId: string, experimentId: string, opts?: { seed?: number }): Promise<RunStarted>;
  /** Newest first. */
  list(projectId: string, experimentId: string): Promise<RunSummary[]>;
  get(projectId: string, experimentId: string, runId: string): Promise<RunDetail>;
  /** Stops a queued or running run (within one step); resolves once it settled as `cancelled`. */
  cancel(projectId: string, experimentId: string, runId: string): Promise<RunSummary>;
  /** Continues a cancelled, interrupted or failed run from its last valid checkpoint, as a new job. */
  resume(projectId: string, experimentId: string, runId: string): Promise<RunStarted>;
  /** Runs waiting or training, in the order they will run (the one training first). */
  queue(): QueueEntry[];
  /** The id of the run's current (latest) job, whose events stream its progress; null if none yet. */
  jobId(projectId: string, experimentId: string, runId: string): Promise<string | null>;
  /** Resolves once the run's current job is finished. */
  wait(projectId: string, experimentId: string, runId: string): Promise<RunSummary>;
  /** Start-up: runs left `queued`/`running` by an earlier process become `interrupted`. */
  settleInterrupted(): Promise<RunSummary[]>;
  /** Cancels the queued and running runs within the project (or one experiment of it); resolves once they settled. */
  cancelWithin(scope: JobScope): Promise<void>;
  close(): Promise<void>;
}

export interface RunsDeps {
  store: Workspace;
  jobs: JobsService;
  experiments: ExperimentsService;
  /** Intra-op threads of the training thread (default: every core). */
  threads?: number;
  /** Tests may stand in a pool of their own. */
  pool?: TrainingPool;
}

const ACTIVE: ReadonlySet<RunStatus> = new Set(['queued', 'running']);
const RESUMABLE: ReadonlySet<RunStatus> = new Set(['cancelled', 'interrupted', 'failed']);

/** A warning per validation or test dataset of which some images were left out (labels the run does not know). */
export function skippedWarnings(cfg: Pick<RunConfigFile, 'val_dataset' | 'test_dataset'>): Warning[] {
  const out: Warning[] = [];
  for (const [code, role, d] of [['VAL_IMAGES_SKIPPED', 'validation', cfg.val_dataset], ['TEST_IMAGES_SKIPPED', 'test', cfg.test_dataset]] as const) {
    if (!d || d.skipped === 0) continue;
    out.push({
      code,
      message: `${d.skipped} image${d.skipped === 1 ? '' : 's'} of the ${role} dataset '${d.name}' ${d.skipped === 1 ? 'has a label' : 'have labels'} the training data does not have and ${d.skipped === 1 ? 'was' : 'were'} skipped: the ${role} set is its other ${d.images}. Relabel them, or train on data that has their classes.`,
    });
  }
  return out;
}

const summary = ({ schema_version: _v, ...rest }: RunFile, metrics: MetricsLine[], warnings: Warning[]): RunSummary => ({ ...rest, last_metrics: metrics.at(-1) ?? null, warnings });

export function createRunsService({ store, jobs, experiments, threads, pool: givenPool }: RunsDeps): RunsService {
  const trainingJobs = createJobsService(createJobRegistry(store), { maxConcurrent: 1 });
  const pool: TrainingPool = givenPool ?? createDedicatedPool('train');
  const live = new Map<string, QueueEntry>();
  const keyOf = (r: RunRef) => `${r.projectId}/${r.experimentId}/${r.runId}`;
  const ref = (projectId: string, experimentId: string, runId: string): RunRef => ({ projectId, experimentId, runId });

  async function toSummary(run: RunFile): Promise<RunSummary> {
    const metrics = await readMetrics(store, ref(run.project_id, run.experiment_id, run.id));
    return summary(run, metrics, await warningsOf(run, metrics));
  }

  /**
   * Images of the run's validation or test dataset left out (labels the run does not know), then
   * the task's warnings about the run's validation history; the output names are the run's
   * (config.json), else the dataset's.
   */
  async function warningsOf(run: RunFile, metrics: MetricsLine[]): Promise<Warning[]> {
    const cfg = await readRunConfig(store, ref(run.project_id, run.experiment_id, run.id)).catch(() => null);
    const out = cfg ? skippedWarnings(cfg) : [];
    if (metrics.length === 0) return out;
    const exp = await readExperiment(store, run.project_id, run.experiment_id).catch(() => null);
    if (!exp || !hasTask(exp.task)) return out;
    const task = getTask(exp.task);
    if (!task.runWarnings) return out;
    return [...out, ...task.runWarnings(metrics, cfg?.dataset.classes ?? [])];
  }

  /** Copies the training job's events into the studio's log (same order; ids are the log's own). */
  function forward(jobId: string): void {
    const fwd = (e: JobEvent): void => {
      jobs.events.publish(jobId, e.type, e.data);
      if (e.type === 'done' || e.type === 'error') unsubscribe();
    };
    const backlog = trainingJobs.events.since(jobId, 0);
    const unsubscribe = trainingJobs.events.subscribe(jobId, fwd);
    backlog.forEach(fwd);
  }

  /**
   * The settings a run was started with, read back from its config.json. Only what the resumed
   * worker cannot do without is checked: its dataset and split (missing images are the loader's
   * to report) and an imported backbone.
   */
  async function backboneExists(id: string): Promise<boolean> {
    try {
      await readModelRecord(store, id);
      return true;
    } catch (e) {
      if (e instanceof AppError && e.code === 'NOT_FOUND') return false;
      throw e;
    }
  }

  async function settingsOfConfig(projectId: string, experimentId: string, cfg: RunConfigFile): Promise<ExperimentSettings> {
    const exp = await readExperiment(store, projectId, experimentId);
    // The header says all this: no need to read the dataset's records.
    const ds = await store.datasets.header(projectId, cfg.dataset.id);
    if (!ds) throw validation(`the run's dataset '${cfg.dataset.id}' no longer exists`);
    if (!ds.splits.some((s) => s.name === cfg.split.name)) throw validation(`the run's dataset no longer has the split '${cfg.split.name}'`);
    const { name: _n, num_classes: _c, param_count: _p, trainable_param_count: _t, ...model } = cfg.model;
    if (model.backbone_id !== undefined && !(await backboneExists(model.backbone_id))) {
      throw validation(`the run's imported model '${model.backbone_id}' no longer exists`);
    }
    for (const [which, other] of [['validation', cfg.val_dataset], ['test', cfg.test_dataset]] as const) {
      if (other && !(await store.datasets.header(projectId, other.id))) throw validation(`the run's ${which} dataset '${other.name}' no longer exists`);
    }
    return {
      name: exp.name,
      description: exp.description,
      dataset_id: cfg.dataset.id,
      split_name: cfg.split.name,
      val_dataset_id: cfg.val_dataset?.id ?? null,
      test_dataset_id: cfg.test_dataset?.id ?? null,
      task: cfg.task,
      model,
      hyperparameters: cfg.hyperparameters,
      augmentation: cfg.augmentation,
    };
  }

  async function submit(r: RunRef, settings: ExperimentSettings, resume: boolean): Promise<JobView> {
    const key = keyOf(r);
    const payload: TrainWorkerPayload = {
      workspace: store.root,
      project_id: r.projectId,
      experiment_id: r.experimentId,
      run_id: r.runId,
      resume,
      settings,
      threads: threads ?? os.availableParallelism(),
    };
    const job = await submitWorkerJob<TrainWorkerMessage, TrainWorkerResult & { ok: true }>(trainingJobs, {
      kind: 'train',
      project_id: r.projectId,
      experiment_id: r.experimentId,
      dataset_id: settings.dataset_id,
      work: (o) => pool.run(payload, o),
      onStart: async () => {
        const entry = live.get(key);
        if (entry) entry.status = 'running';
        await modifyRun(store, r, (run) => ({ ...run, status: 'running', started_at: run.started_at ?? new Date().toISOString() }));
      },
      onMessage: (m, handle) => {
        if (m.type === 'progress') handle.progress(m.fraction, m.detail);
        else if (m.type === 'log') handle.log(m.message);
        else if (m.type === 'metric') jobs.events.publish(handle.id, 'metric', m.line);
      },
      onSettled: async (outcome) => {
        live.delete(key);
        await settleRun(r, outcome);
      },
    });
    live.set(key, { run_id: r.runId, experiment_id: r.experimentId, project_id: r.projectId, job_id: job.id, status: 'queued' });
    forward(job.id);
    return job;
  }

  async function settleRun(r: RunRef, outcome: JobOutcome<TrainWorkerResult & { ok: true }>): Promise<void> {
    const finished_at = new Date().toISOString();
    await modifyRun(store, r, (run) =>
      outcome.status === 'succeeded'
        ? { ...run, status: 'succeeded', error: null, finished_at, stop_reason: outcome.result.stop_reason }
        : { ...run, status: outcome.status, error: outcome.error, finished_at, stop_reason: outcome.status === 'cancelled' ? 'cancelled' : run.stop_reason },
    ).catch(() => undefined); // the experiment may have been deleted meanwhile
  }

  async function requireRun(projectId: string, experimentId: string, runId: string): Promise<RunFile> {
    await readExperiment(store, projectId, experimentId);
    return readRun(store, ref(projectId, experimentId, runId));
  }

  return {
    async start(projectId, experimentId, opts = {}) {
      // Re-checked now: the dataset, split or imported model may have changed since it was saved.
      const saved0 = await experiments.settingsForRun(projectId, experimentId);
      const settings = opts.seed === undefined ? saved0 : { ...saved0, hyperparameters: { ...saved0.hyperparameters, seed: opts.seed } };
      const now = new Date().toISOString();
      const run: RunFile = {
        schema_version: 1,
        id: newId('run'),
        experiment_id: experimentId,
        project_id: projectId,
        status: 'queued',
        job_id: null,
        previous_job_ids: [],
        epochs: settings.hyperparameters.epochs,
        epochs_done: 0,
        best: null,
        checkpoints: [],
        stop_reason: null,
        resumes: 0,
        error: null,
        created_at: now,
        started_at: null,
        finished_at: null,
        updated_at: now,
      };
      await writeRun(store, run);
      const r = ref(projectId, experimentId, run.id);
      const job = await submit(r, settings, false);
      const saved = await modifyRun(store, r, (cur) => ({ ...cur, job_id: job.id }));
      return { run: await toSummary(saved), job };
    },

    async list(projectId, experimentId) {
      await readExperiment(store, projectId, experimentId);
      const out: RunSummary[] = [];
      for (const id of await listRunIds(store, projectId, experimentId)) {
        const run = await readRun(store, ref(projectId, experimentId, id)).catch(() => null);
        if (run) out.push(await toSummary(run));
      }
      return out.sort((a, b) => b.created_at.localeCompare(a.created_at) || b.id.localeCompare(a.id));
    },

    async get(projectId, experimentId, runId) {
      const run = await requireRun(projectId, experimentId, runId);
      const r = ref(projectId, experimentId, runId);
      const metrics = await readMetrics(store, r);
      const cfg = await readRunConfig(store, r);
      let config: RunDetail['config'] = null;
      if (cfg) {
        const { schema_version: _v, ...rest } = cfg;
        config = rest;
      }
      return { ...summary(run, metrics, await warningsOf(run, metrics)), config, metrics, checkpoints: run.checkpoints };
    },

    async cancel(projectId, experimentId, runId) {
      const run = await requireRun(projectId, experimentId, runId);
      const entry = live.get(keyOf(ref(projectId, experimentId, runId)));
      if (!ACTIVE.has(run.status) || !entry) throw conflict(`run '${runId}' is not queued or running (${run.status})`);
      await trainingJobs.cancel(entry.job_id).catch((e: unknown) => {
        // It finished on its own between the check and the cancel: report what it became.
        if (!(e instanceof AppError && e.code === 'CONFLICT')) throw e;
      });
      await trainingJobs.wait(entry.job_id);
      return toSummary(await readRun(store, ref(projectId, experimentId, runId)));
    },

    async resume(projectId, experimentId, runId) {
      const run = await requireRun(projectId, experimentId, runId);
      const r = ref(projectId, experimentId, runId);
      if (!RESUMABLE.has(run.status) || live.has(keyOf(r))) {
        throw conflict(`run '${runId}' is ${run.status}: only a cancelled, interrupted or failed run can be resumed`);
      }
      // A run keeps the settings it started with (config.json, what the worker reads on resume), so
      // later edits of the experiment neither block nor change it; one interrupted before it wrote
      // them takes the experiment's current ones, validated as for a new run.
      const cfg = await readRunConfig(store, r);
      const settings = cfg ? await settingsOfConfig(projectId, experimentId, cfg) : await experiments.settingsForRun(projectId, experimentId);
      await modifyRun(store, r, (cur) => ({
        ...cur,
        status: 'queued',
        error: null,
        finished_at: null,
        stop_reason: null,
        resumes: cur.resumes + 1,
        previous_job_ids: cur.job_id ? [...(cur.previous_job_ids ?? []), cur.job_id] : (cur.previous_job_ids ?? []),
      }));
      const job = await submit(r, settings, true);
      const saved = await modifyRun(store, r, (cur) => ({ ...cur, job_id: job.id }));
      return { run: await toSummary(saved), job };
    },

    queue() {
      const entries = [...live.values()];
      return [...entries.filter((e) => e.status === 'running'), ...entries.filter((e) => e.status === 'queued')].map((e) => ({ ...e }));
    },

    async jobId(projectId, experimentId, runId) {
      return (await requireRun(projectId, experimentId, runId)).job_id;
    },

    async wait(projectId, experimentId, runId) {
      const run = await requireRun(projectId, experimentId, runId);
      if (run.job_id) await trainingJobs.wait(run.job_id);
      return toSummary(await readRun(store, ref(projectId, experimentId, runId)));
    },

    async settleInterrupted() {
      const out: RunSummary[] = [];
      for (const projectId of await store.listDirs(store.projectsDir())) {
        let expIds: string[];
        try {
          expIds = await listExperimentIds(store, projectId);
        } catch {
          continue;
        }
        for (const experimentId of expIds) {
          for (const runId of await listRunIds(store, projectId, experimentId)) {
            const r = ref(projectId, experimentId, runId);
            const run = await readRun(store, r).catch(() => null);
            if (!run || !ACTIVE.has(run.status)) continue;
            const error = { code: 'INTERRUPTED', message: 'the studio stopped while this run was ' + run.status };
            const saved = await modifyRun(store, r, (cur) => ({ ...cur, status: 'interrupted', error, finished_at: new Date().toISOString() }));
            out.push(await toSummary(saved));
          }
        }
      }
      return out;
    },

    cancelWithin: (scope) => trainingJobs.cancelWithin(scope),

    async close() {
      await trainingJobs.close();
      await pool.destroy();
    },
  };
}
