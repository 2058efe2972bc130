import os from 'node:os';
import { z } from 'zod';
import { otherDatasetSelection, selectItems } from '../evaluation/run-evaluation.ts';
import { EvaluatedSubsetSchema, type ResultRecord } from '../evaluation/results.ts';
import type { AggregateMetrics } from '../evaluation/metrics/schema.ts';
import type { JobView } from '../jobs/registry.ts';
import { FINISHED, type JobOutcome, type JobsService } from '../jobs/service.ts';
import { submitWorkerJob } from '../jobs/submit.ts';
import { createDedicatedPool, type DedicatedPools } from '../jobs/pool.ts';
import { DatasetIdSchema } from '../schemas/common.ts';
import { CheckpointNameSchema, RunIdSchema, type Warning } from '../schemas/experiment.ts';
import {
  clearStagedResults,
  MAX_STORED_PROBLEMS,
  modifyEvaluation,
  promoteStaging,
  readAggregate,
  readEvaluation,
  readResults,
  removeAsideFolders,
  removeEvaluation,
  writeEvaluation,
  type EvaluationConfig,
  type EvaluationFile,
  type EvaluationProblem,
  type EvaluationRef,
  type LastAttempt,
} from '../storage/evaluation.ts';
import { readExperiment } from '../storage/experiments.ts';
import { checkpointExists, listRunIds, readRun, readRunConfig } from '../storage/runs.ts';
import type { Workspace } from '../storage/workspace.ts';
import { getTask, hasTask, runTaskOf, type AnyTask } from '../tasks/index.ts';

/** A stored evaluation's task: evaluations written before tasks are classification's; an unknown name is NOT_FOUND. */
function evaluationTask(name: string | undefined): AnyTask {
  return getTask(name ?? 'classification');
}
import type { EvaluateWorkerMessage, EvaluateWorkerPayload, EvaluateWorkerResult } from '../workers/evaluate.ts';
import { AppError, conflict, notFound, validation } from '../kernel/errors.ts';

/**
 * An experiment's evaluation (one per experiment, no ids of its own): which checkpoints can be
 * evaluated, starting one as a job (the worker thread in src/workers/evaluate.ts), its status and
 * aggregate metrics, the per-image results (filtered, sorted, paged, CSV) and reset.
 */

/** The body of `POST …/evaluation`. */
export const EvaluationStartSchema = z.strictObject({
  run_id: RunIdSchema,
  checkpoint: CheckpointNameSchema,
  /** Another dataset of the project to evaluate the run on (all its labelled images); absent: the run's own. */
  dataset_id: DatasetIdSchema.optional(),
  /** Of the run's own split; required then. Not for another dataset (every image is evaluated, as `test`). */
  subsets: z
    .array(EvaluatedSubsetSchema, { error: 'must be a list of subsets ("train", "val", "test")' })
    .min(1, 'choose at least one subset')
    .refine((s) => new Set(s).size === s.length, 'a subset is listed twice')
    .optional(),
  tta: z.boolean({ error: 'must be true or false' }).default(false),
  batch_size: z.number({ error: 'must be an integer between 1 and 256' }).int().min(1).max(256).default(32),
});
export type EvaluationStart = z.input<typeof EvaluationStartSchema>;

export interface EvaluationCheckpoint {
  run_id: string;
  checkpoint: 'best' | 'last';
  /** Epochs completed when it was written. */
  epoch: number;
  step: number;
  /** For `best`: the metric it was chosen by and its value. */
  metric?: string;
  value?: number;
  created_at: string;
  run_status: string;
}

export type EvaluationState = 'none' | EvaluationFile['status'];

/**
 * The service answers each task's own aggregate and records (validated with the task's schemas
 * when read); `A` and `I` name the caller's expectation of them, classification's by default.
 */
export interface EvaluationView<A = AggregateMetrics> {
  /** The run's task (an evaluation from before tasks is classification). */
  task: string;
  status: EvaluationState;
  config: EvaluationConfig | null;
  /** Present once the evaluation succeeded: the task's aggregate. */
  aggregate: A | null;
  /** What makes the aggregate not what it seems (the task's `evaluationWarnings`), each with what to try. */
  warnings: Warning[];
  job_id: string | null;
  error?: { code: string; message: string };
  /**
   * Set when the latest re-evaluation failed or was interrupted: the view is still the previous,
   * succeeded evaluation (it is kept), and this says what became of the attempt to replace it.
   */
  last_attempt?: LastAttempt;
  /**
   * While a re-evaluation is queued or running: the succeeded evaluation it is to replace (whose
   * metrics and results are still served meanwhile), what it evaluated and when it finished.
   */
  previous?: { config: EvaluationConfig; finished_at: string | null };
  /** Images that could not be evaluated (at most MAX_STORED_PROBLEMS; `problems_total` counts all). */
  problems: EvaluationProblem[];
  problems_total: number;
  evaluated: number;
  created_at: string | null;
  finished_at: string | null;
}

export interface EvaluationService {
  /** Checkpoints that exist, of runs that are not training: newest run first, `best` before `last`. */
  checkpoints(projectId: string, experimentId: string): Promise<EvaluationCheckpoint[]>;
  /** Validates the choice against the run and the dataset, then queues the job (202 with it). */
  start(projectId: string, experimentId: string, body: unknown): Promise<{ job: JobView }>;
  get<A = AggregateMetrics>(projectId: string, experimentId: string): Promise<EvaluationView<A>>;
  /**
   * Filtered, sorted, paged records. `query` is the query string as the task's results schema
   * takes it (src/tasks/<task>/results.ts); a filter the task does not have is a VALIDATION_ERROR naming it.
   */
  results<I = ResultRecord>(projectId: string, experimentId: string, query: Record<string, unknown>): Promise<{ items: I[]; total: number }>;
  /** One image's record (classification's with its top-5). */
  result<I = ResultRecord>(projectId: string, experimentId: string, imageId: string): Promise<I>;
  resultsCsv(projectId: string, experimentId: string): Promise<AsyncIterable<string>>;
  /** The aggregate metrics of the succeeded evaluation (NOT_FOUND otherwise). */
  metrics<A = AggregateMetrics>(projectId: string, experimentId: string): Promise<A>;
  /** Stops a running evaluation and deletes the evaluation folder at once. */
  reset(projectId: string, experimentId: string): Promise<{ deleted: boolean }>;
  /** Resolves once the experiment's evaluation job (if any) is finished and recorded. */
  wait(projectId: string, experimentId: string): Promise<EvaluationView>;
  close(): Promise<void>;
}

/** The evaluation thread (a one-thread pool of its own, src/jobs/pool.ts). */
export type EvaluationPool = DedicatedPools['evaluate'];

export interface EvaluationDeps {
  store: Workspace;
  jobs: JobsService;
  /** Intra-op threads of the evaluation thread (default: every core). */
  threads?: number;
  /** Tests may stand in a pool of their own. */
  pool?: EvaluationPool;
}

const ACTIVE_RUN = new Set(['queued', 'running']);

export function createEvaluationService({ store, jobs, threads, pool: givenPool }: EvaluationDeps): EvaluationService {
  const pool: EvaluationPool = givenPool ?? createDedicatedPool('evaluate');
  /** Jobs of this process by experiment; a settled one is removed after its outcome is recorded. */
  const live = new Map<string, { jobId: string; done: Promise<void> }>();
  const keyOf = (r: EvaluationRef) => `${r.projectId}/${r.experimentId}`;

  async function requireExperiment(projectId: string, experimentId: string): Promise<EvaluationRef> {
    await readExperiment(store, projectId, experimentId);
    return { projectId, experimentId };
  }

  /**
   * The staging folder as it stands, repaired first: one whose job is no longer alive (the studio
   * stopped mid-evaluation) is recorded as failed, and a finished one left by a crash between the
   * two renames of `promoteStaging` is swapped in. Returns the active (queued/running) one or null.
   */
  async function activeStaging(r: EvaluationRef): Promise<EvaluationFile | null> {
    const staged = await readEvaluation(store, r, 'staging');
    if (!staged) return null;
    if (staged.status === 'queued' || staged.status === 'running') {
      if (live.has(keyOf(r))) return staged;
      const job = staged.job_id ? await jobs.get(staged.job_id).catch(() => null) : null;
      if (job && !FINISHED.has(job.status)) return staged;
      await settleFailed(r, job?.error ?? { code: 'INTERRUPTED', message: 'the studio stopped during this evaluation' }, new Date().toISOString());
    } else if (staged.status === 'failed') {
      // A crash after the failure was written to the staging folder, before it was settled.
      await settleFailed(r, staged.error ?? { code: 'INTERRUPTED', message: 'the studio stopped while recording this evaluation' }, staged.finished_at ?? staged.updated_at);
    } else {
      await promoteStaging(store, r);
    }
    await removeAsideFolders(store, r);
    return null;
  }

  /**
   * A failed (or interrupted) evaluation in the staging folder. Over a succeeded evaluation it is
   * recorded as that one's `last_attempt` and the staging folder goes, so the last good evaluation
   * stays; otherwise (a first evaluation, or one replacing a failed one) it becomes the evaluation,
   * shown as failed. Either step may be repeated after a crash: the staging folder goes last.
   */
  async function settleFailed(r: EvaluationRef, error: { code: string; message: string }, finished_at: string): Promise<void> {
    const cur = await readEvaluation(store, r);
    if (cur?.status === 'succeeded') {
      const staged = await readEvaluation(store, r, 'staging');
      if (staged) {
        const last_attempt: LastAttempt = { status: 'failed', config: staged.config, error, finished_at };
        await modifyEvaluation(store, r, 'current', (c) => ({ ...c, last_attempt }));
      }
      await removeEvaluation(store, r, 'staging');
      return;
    }
    await clearStagedResults(store, r);
    await modifyEvaluation(store, r, 'staging', (c) => ({ ...c, status: 'failed', error, finished_at }));
    await promoteStaging(store, r);
  }

  function view(f: EvaluationFile, aggregate: unknown): EvaluationView<unknown> {
    const task = f.task ?? 'classification';
    const warn = aggregate !== null && hasTask(task) ? getTask(task).evaluationWarnings : undefined;
    return {
      task,
      status: f.status,
      config: f.config,
      aggregate,
      warnings: warn ? warn(aggregate, f.config.classes) : [],
      job_id: f.job_id,
      ...(f.error ? { error: f.error } : {}),
      ...(f.last_attempt ? { last_attempt: f.last_attempt } : {}),
      problems: f.problems,
      problems_total: f.problems_total,
      evaluated: f.evaluated,
      created_at: f.created_at,
      finished_at: f.finished_at,
    };
  }

  /**
   * The current evaluation when it succeeded. A queued or running re-evaluation writes beside it,
   * so the previous results stay served until the new ones replace them.
   */
  async function succeededCurrent(r: EvaluationRef): Promise<EvaluationFile | null> {
    await activeStaging(r);
    const cur = await readEvaluation(store, r);
    return cur?.status === 'succeeded' ? cur : null;
  }

  /** The succeeded evaluation's task and its records, checked with the task's item schema. */
  async function succeededResults(r: EvaluationRef): Promise<{ task: AnyTask; names: string[]; records: unknown[] }> {
    const cur = await succeededCurrent(r);
    if (!cur) throw notFound('evaluation results of experiment', r.experimentId);
    const task = evaluationTask(cur.task);
    return { task, names: cur.config.classes, records: await readResults(store, r, 'current', task.itemSchema) };
  }

  /** The current evaluation's aggregate, checked with its task's schema. */
  async function aggregateOf(r: EvaluationRef, f: EvaluationFile): Promise<unknown> {
    return readAggregate(store, r, 'current', evaluationTask(f.task).aggregateSchema);
  }

  async function record(r: EvaluationRef, outcome: JobOutcome<EvaluateWorkerResult & { ok: true }>): Promise<void> {
    if (outcome.status === 'cancelled') {
      // Cancelled (by a reset, or through the jobs API): what it had made goes, the last evaluation stays.
      await removeEvaluation(store, r, 'staging');
      return;
    }
    const finished_at = new Date().toISOString();
    if (outcome.status === 'succeeded') {
      const problems = outcome.result.problems;
      await modifyEvaluation(store, r, 'staging', (cur) => ({
        ...cur,
        status: 'succeeded',
        problems: problems.slice(0, MAX_STORED_PROBLEMS),
        problems_total: problems.length,
        evaluated: outcome.result.evaluated,
        error: null,
        finished_at,
      }));
      await promoteStaging(store, r);
    } else {
      await settleFailed(r, outcome.error, finished_at);
    }
  }

  interface Reservation {
    jobId: string;
    done: Promise<void>;
    settle(): void;
  }

  /**
   * Claims the experiment's one evaluation slot, synchronously after the conflict check, so two
   * starts racing through their awaits cannot both pass it. Released when the job has settled
   * (or at once when it could not be submitted).
   */
  function reserve(r: EvaluationRef): Reservation {
    if (live.has(keyOf(r))) throw conflict('an evaluation of this experiment is already running');
    let settle!: () => void;
    const done = new Promise<void>((resolve) => (settle = resolve));
    const entry: Reservation = { jobId: '', done, settle: () => (live.delete(keyOf(r)), settle()) };
    live.set(keyOf(r), entry);
    return entry;
  }

  async function submit(r: EvaluationRef, config: EvaluationConfig, entry: Reservation): Promise<JobView> {
    const payload: EvaluateWorkerPayload = {
      workspace: store.root,
      project_id: r.projectId,
      experiment_id: r.experimentId,
      config,
      threads: threads ?? os.availableParallelism(),
    };
    const job = await submitWorkerJob<EvaluateWorkerMessage, EvaluateWorkerResult & { ok: true }>(jobs, {
      kind: 'evaluate',
      project_id: r.projectId,
      experiment_id: r.experimentId,
      dataset_id: config.dataset_id,
      work: (o) => pool.run(payload, o),
      onStart: async (handle) => {
        await modifyEvaluation(store, r, 'staging', (cur) => ({ ...cur, status: 'running', job_id: handle.id }));
      },
      onMessage: (m, handle) => {
        if (m.type === 'progress') handle.progress(m.total > 0 ? m.done / m.total : 0, { done: m.done, total: m.total });
        else handle.log(m.message);
      },
      onSettled: async (outcome) => {
        try {
          await record(r, outcome);
        } finally {
          entry.settle();
        }
      },
    });
    entry.jobId = job.id;
    return job;
  }

  return {
    async checkpoints(projectId, experimentId) {
      await requireExperiment(projectId, experimentId);
      const out: EvaluationCheckpoint[] = [];
      const runs = [];
      for (const id of await listRunIds(store, projectId, experimentId)) {
        const run = await readRun(store, { projectId, experimentId, runId: id }).catch(() => null);
        if (run && !ACTIVE_RUN.has(run.status)) runs.push(run);
      }
      runs.sort((a, b) => b.created_at.localeCompare(a.created_at) || b.id.localeCompare(a.id));
      for (const run of runs) {
        for (const name of ['best', 'last'] as const) {
          const info = run.checkpoints.find((c) => c.name === name);
          if (!info || !(await checkpointExists(store, { projectId, experimentId, runId: run.id }, name))) continue;
          out.push({
            run_id: run.id,
            checkpoint: name,
            epoch: info.epoch,
            step: info.step,
            ...(name === 'best' && run.best ? { metric: run.best.metric, value: run.best.value } : {}),
            created_at: info.created_at,
            run_status: run.status,
          });
        }
      }
      return out;
    },

    async start(projectId, experimentId, body) {
      const r = await requireExperiment(projectId, experimentId);
      const parsed = EvaluationStartSchema.safeParse(body ?? {});
      if (!parsed.success) throw validation(`invalid body: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`, parsed.error.issues);
      const req = parsed.data;
      const runRef = { projectId, experimentId, runId: req.run_id };
      const run = await readRun(store, runRef);
      if (ACTIVE_RUN.has(run.status)) throw conflict(`run '${run.id}' is still ${run.status}: evaluate it once it has finished`);
      if (!run.checkpoints.some((c) => c.name === req.checkpoint) || !(await checkpointExists(store, runRef, req.checkpoint))) {
        throw notFound(`checkpoint '${req.checkpoint}' of run`, run.id);
      }
      const runConfig = await readRunConfig(store, runRef);
      if (!runConfig) throw validation(`run '${run.id}' has no config.json (it stopped before it began)`);

      // Checked now so that a bad choice is a 400 here, not a failed job later.
      const runTask = runTaskOf(runConfig);
      // A run whose test set is another dataset (its experiment's `test_dataset_id`) is evaluated
      // on "test" there: every usable image of that dataset, as with `dataset_id`.
      const testDataset = runConfig.test_dataset ?? null;
      if (testDataset && req.dataset_id === undefined && req.subsets?.includes('test') && req.subsets.length > 1) {
        throw validation(`subsets: the run's test set is the dataset '${testDataset.name}': evaluate "test" on its own, or the split's subsets without it`);
      }
      const requested = req.dataset_id ?? (testDataset && req.subsets?.length === 1 && req.subsets[0] === 'test' ? testDataset.id : undefined);
      const other = requested !== undefined && requested !== runConfig.dataset.id ? requested : null;
      let subsets: EvaluationConfig['subsets'];
      if (other !== null) {
        if (req.dataset_id !== undefined && req.subsets !== undefined) throw validation(`subsets: not for another dataset than the run trained on: every labelled image of '${other}' is evaluated`);
        const ds = await store.readDataset(projectId, other);
        if (!ds) throw req.dataset_id !== undefined ? notFound('dataset', other) : validation(`the run's test dataset '${testDataset?.name ?? other}' no longer exists`);
        otherDatasetSelection(ds, runTask, { field: 'dataset_id', use: 'evaluated', owner: 'the run' });
        subsets = ['test'];
      } else {
        if (req.subsets === undefined) throw validation('invalid body: subsets: choose at least one subset ("train", "val", "test")');
        subsets = req.subsets;
        const ds = await store.readDataset(projectId, runConfig.dataset.id);
        if (!ds) throw validation(`the dataset '${runConfig.dataset.id}' the run trained on no longer exists`);
        if (!ds.split_names.includes(runConfig.split.name)) throw validation(`the dataset no longer has the split '${runConfig.split.name}'`);
        const sel = selectItems(ds, runConfig.split.name, subsets, runTask);
        const empty = subsets.filter((s) => sel.counts[s] === 0);
        if (empty.length > 0) {
          throw validation(`subsets: ${empty.map((s) => `'${s}'`).join(', ')} of split '${runConfig.split.name}' ${empty.length === 1 ? 'has' : 'have'} no labelled images`);
        }
      }

      if ((await activeStaging(r)) !== null) throw conflict('an evaluation of this experiment is already running');
      const entry = reserve(r);
      const config: EvaluationConfig = {
        run_id: run.id,
        checkpoint: req.checkpoint,
        subsets,
        tta: req.tta,
        batch_size: req.batch_size,
        dataset_id: other ?? runConfig.dataset.id,
        split_name: runConfig.split.name,
        ...(other !== null ? { whole_dataset: true } : {}),
        model: runConfig.model.name,
        input_size: runConfig.model.input_size,
        classes: runConfig.dataset.classes,
      };
      const now = new Date().toISOString();
      let job: JobView;
      try {
        await removeEvaluation(store, r, 'staging');
        await writeEvaluation(store, r, 'staging', {
          schema_version: 1,
          task: runTask.task.name,
          status: 'queued',
          config,
          job_id: null,
          problems: [],
          problems_total: 0,
          evaluated: 0,
          error: null,
          created_at: now,
          finished_at: null,
          updated_at: now,
        });
        job = await submit(r, config, entry);
      } catch (e) {
        entry.settle();
        throw e;
      }
      await modifyEvaluation(store, r, 'staging', (cur) => ({ ...cur, job_id: job.id })).catch((e: unknown) => {
        // The job can settle (and its folder be promoted) before this write: then it is recorded already.
        if (!(e instanceof AppError && e.code === 'NOT_FOUND')) throw e;
      });
      return { job };
    },

    // The generic methods answer what the task's schemas validated; `A`/`I` are the caller's names for it.
    async get<A>(projectId: string, experimentId: string): Promise<EvaluationView<A>> {
      const r = await requireExperiment(projectId, experimentId);
      const staged = await activeStaging(r);
      const cur = await readEvaluation(store, r);
      if (staged) return { ...view(staged, null), ...(cur?.status === 'succeeded' ? { previous: { config: cur.config, finished_at: cur.finished_at } } : {}) } as EvaluationView<A>;
      if (!cur) {
        return { task: 'classification', status: 'none', config: null, aggregate: null, warnings: [], job_id: null, problems: [], problems_total: 0, evaluated: 0, created_at: null, finished_at: null };
      }
      return view(cur, cur.status === 'succeeded' ? await aggregateOf(r, cur) : null) as EvaluationView<A>;
    },

    async results<I>(projectId: string, experimentId: string, query: Record<string, unknown>): Promise<{ items: I[]; total: number }> {
      const r = await requireExperiment(projectId, experimentId);
      const { task, records } = await succeededResults(r);
      const results = task.results;
      const q = results.querySchema.safeParse(query);
      if (!q.success) throw validation(`invalid query: ${q.error.issues.slice(0, 5).map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ')}`, q.error.issues);
      return results.query(records, q.data) as { items: I[]; total: number };
    },

    async result<I>(projectId: string, experimentId: string, imageId: string): Promise<I> {
      const r = await requireExperiment(projectId, experimentId);
      const hit = (await succeededResults(r)).records.find((rec) => (rec as { image_id: string }).image_id === imageId);
      if (!hit) throw notFound('evaluation result of image', imageId);
      return hit as I;
    },

    async resultsCsv(projectId, experimentId) {
      const r = await requireExperiment(projectId, experimentId);
      const { task, names, records } = await succeededResults(r);
      const lines = task.results.csvLines(records, names);
      return (async function* () {
        yield* lines;
      })();
    },

    async metrics<A>(projectId: string, experimentId: string): Promise<A> {
      const r = await requireExperiment(projectId, experimentId);
      const cur = await succeededCurrent(r);
      const agg = cur ? await aggregateOf(r, cur) : null;
      if (!agg) throw notFound('evaluation metrics of experiment', experimentId);
      return agg as A;
    },

    async reset(projectId, experimentId) {
      const r = await requireExperiment(projectId, experimentId);
      const l = live.get(keyOf(r));
      if (l) {
        if (l.jobId) await jobs.cancel(l.jobId).catch((e: unknown) => {
          // It finished on its own between the look-up and the cancel.
          if (!(e instanceof AppError && e.code === 'CONFLICT')) throw e;
        });
        await l.done;
      }
      const existed = (await readEvaluation(store, r)) !== null || (await readEvaluation(store, r, 'staging')) !== null;
      await removeEvaluation(store, r, 'staging');
      await removeEvaluation(store, r, 'current');
      await removeAsideFolders(store, r);
      return { deleted: existed };
    },

    async wait(projectId, experimentId) {
      const l = live.get(keyOf({ projectId, experimentId }));
      if (l) await l.done;
      return this.get(projectId, experimentId);
    },

    async close() {
      await pool.destroy();
    },
  };
}
