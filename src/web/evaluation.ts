import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError, isAppError, notFound } from '../kernel/errors.ts';
import type { Experiment } from '../core/experiments.ts';
import type { RunSummary } from '../core/runs.ts';
import { ImageIdSchema } from '../schemas/common.ts';
import { ExperimentIdSchema } from '../schemas/experiment.ts';
import { thumbUrl } from './datasets.ts';
import { isHtmx } from './errors.ts';
import type { AggregateMetrics } from '../evaluation/metrics/schema.ts';
import type { ResultRecord } from '../evaluation/results.ts';
import {
  allSorts,
  EVAL_SUBSETS,
  RESULT_SORTS,
  SORT_LABELS,
  chartPayload,
  classRows,
  confidenceLabel,
  confusionView,
  evaluationUrl,
  hasFilters,
  headlineMetrics,
  type EvalSubset,
  type ResultFilters,
} from './evaluation-view.ts';
import { ProjectIds, SelectionIdSchema, parseForm, parseIds } from './forms.ts';
import { pager, timeAgo } from './format.ts';
import { projectCrumbs, projectLayout } from './layout.ts';
import { checkpointMetricLabel, fixed, formatDuration, pct } from './training-view.ts';
import { getTask, hasTask, type TaskEvaluationPage } from '../tasks/index.ts';
import { eventNumber, streamRenderedJobEvents } from '../http/sse.ts';

/**
 * The evaluation page: experiments with a finished run on the left; on the right the selected
 * experiment's evaluation in three sections — configuration and actions (start, reset, exports),
 * metrics and charts (a clickable confusion matrix, per-class bars, ROC/PR curves, reliability),
 * and the per-image results grid with its filters; while a re-evaluation runs, the previous
 * metrics and grid stay, marked as previous. public/js/evaluation.js draws the charts and follows a
 * running evaluation's job over SSE; actions answer with HX-Location, so the board (#evaluation)
 * is fetched again and the URL names the selection.
 */

const optional = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === '' ? undefined : v), schema.optional());
const percent = z.coerce.number().min(0).max(100);

const BoardQuery = z.strictObject({
  experiment: optional(SelectionIdSchema),
  page: optional(z.coerce.number().int().min(1).max(1_000_000)),
  only: optional(z.enum(['misclassified', 'correct'])),
  label: optional(z.string().max(200)),
  predicted: optional(z.string().max(200)),
  missed: optional(z.string().max(200)),
  extra: optional(z.string().max(200)),
  subset: optional(z.enum(EVAL_SUBSETS)),
  min_pct: optional(percent),
  max_pct: optional(percent),
  // every task's sorts; one that is not the selected task's falls back to its default
  sort: optional(z.enum(allSorts())),
});
type BoardQuery = z.infer<typeof BoardQuery>;

const ExperimentIds = ProjectIds.extend({ experiment_id: ExperimentIdSchema });
const ResultIds = ExperimentIds.extend({ image_id: ImageIdSchema });

/** The start form: the run and checkpoint in one select, one checkbox per subset. */
const StartForm = z.strictObject({
  checkpoint: z.string().regex(/^run-[0-9a-z]{8}:(best|last)$/, 'choose a checkpoint'),
  'subset.test': optional(z.literal('on')),
  'subset.val': optional(z.literal('on')),
  'subset.train': optional(z.literal('on')),
  /** Another dataset to evaluate whole; empty: the training dataset's split. */
  dataset_id: optional(z.string()),
  tta: optional(z.literal('on')),
  batch_size: optional(z.coerce.number().int().min(1).max(256)),
});

/** Tiles per grid page: 6 or 8 to a row. */
const PAGE_SIZE = 48;
const ACTIVE = new Set(['queued', 'running']);
/** Problems listed on the page (the API has them all). */
const PROBLEMS_SHOWN = 50;

/** The task's own evaluation page (multi-label, regression…); null: classification's board. */
function pageOf(task: string): TaskEvaluationPage<unknown, unknown> | null {
  return hasTask(task) ? (getTask(task).evaluationPage ?? null) : null;
}

/** The grid's filters that apply to `task` (another task's are dropped: a URL kept across experiments). */
function filtersOf(q: BoardQuery, task = 'classification'): ResultFilters {
  const page = pageOf(task);
  const sorts = page ? page.sorts.map((x) => x.value) : [...RESULT_SORTS];
  const sort = (q.sort && sorts.includes(q.sort) ? q.sort : (sorts[0] ?? 'mistakes_first')) as ResultFilters['sort'];
  if (page) {
    const f: Record<string, unknown> = { sort };
    for (const k of page.filters) if (k in q && q[k as keyof BoardQuery] !== undefined) f[k] = q[k as keyof BoardQuery];
    return f as unknown as ResultFilters;
  }
  return { only: q.only, label: q.label, predicted: q.predicted, subset: q.subset, min_pct: q.min_pct, max_pct: q.max_pct, sort };
}

/** The headline number of an evaluation in the experiment list: accuracy, or the task's (mAP, MAE). */
function listMetric(task: string, agg: unknown): { value: string; title: string } | null {
  if (!agg) return null;
  const page = pageOf(task);
  if (page) return page.headline(agg);
  return { value: pct((agg as AggregateMetrics).accuracy), title: 'Accuracy' };
}

/** What a swap asks for: the results grid, the whole board, or (a reload, back/forward) the page. */
function swapTarget(req: FastifyRequest): 'results' | 'board' | 'page' {
  if (!isHtmx(req) || req.headers['hx-history-restore-request'] === 'true') return 'page';
  const t = req.headers['hx-target'];
  return t === 'eval-results' ? 'results' : t === 'evaluation' ? 'board' : 'page';
}

export default async function evaluationPages(app: FastifyInstance): Promise<void> {
  const { projects, experiments, runs, datasets, jobs, evaluation } = app.studio;

  /** Run labels as the training page numbers them: Run 1 is the oldest. */
  const runLabels = (list: RunSummary[]) => new Map(list.map((r, i) => [r.id, `Run ${list.length - i}`]));

  async function subsetCounts(projectId: string, exp: Experiment): Promise<Record<EvalSubset, number> | null> {
    try {
      const split = await datasets.getSplit(projectId, exp.dataset_id, exp.split_name);
      return { test: split.counts.test, val: split.counts.val, train: split.counts.train };
    } catch (e) {
      // The split (or dataset) was deleted since: the form says so instead of failing the page.
      if (isAppError(e) && e.code === 'NOT_FOUND') return null;
      throw e;
    }
  }

  /** A running evaluation's last progress (the job reports images done of total; the page measures the rate). */
  function liveOf(jobId: string | null) {
    const events = jobId && jobs.events.has(jobId) ? jobs.events.since(jobId, 0) : [];
    const last = [...events].reverse().find((e) => e.type === 'progress');
    const d = (last?.data ?? {}) as Record<string, unknown>;
    const n = (k: string): number | null => (typeof d[k] === 'number' && Number.isFinite(d[k]) ? (d[k] as number) : null);
    const fraction = Math.min(1, Math.max(0, n('progress') ?? 0));
    return {
      events_url: jobId ? `/api/jobs/${jobId}/events` : null,
      last_event_id: events.at(-1)?.id ?? 0,
      percent: Math.round(fraction * 1000) / 10,
      done: n('done'),
      total: n('total'),
    };
  }

  /**
   * The evaluation's live stream for htmx's SSE extension: each progress event rendered as the
   * box's bar and figures (the rate and ETA measured from the stream's first report), the badges
   * and the previous evaluation's note out of band; then `end`, on which the board comes again.
   */
  app.get('/projects/:project_id/experiments/:experiment_id/evaluation/live', async (req, reply) => {
    const { project_id, experiment_id } = parseIds(ExperimentIds, req.params);
    const state = await evaluation.get(project_id, experiment_id);
    if (!state.job_id) throw notFound('running evaluation of experiment', experiment_id);
    const job = await jobs.get(state.job_id);
    let first: { t: number; done: number } | null = null;
    let oob = true;
    return streamRenderedJobEvents(req, reply, {
      job,
      events: jobs.events,
      render: async (e) => {
        if (e.type !== 'progress') return [];
        const n = (k: string) => eventNumber(e.data, k);
        const done = n('done');
        const total = n('total');
        const fraction = Math.min(1, Math.max(0, n('progress') ?? (done !== null && total ? done / total : 0)));
        let ips: number | null = null;
        if (done !== null) {
          const now = Date.now();
          if (!first) first = { t: now, done };
          const dt = (now - first.t) / 1000;
          if (dt > 0.5 && done > first.done) ips = (done - first.done) / dt;
        }
        const p = {
          percent: Math.round(fraction * 1000) / 10,
          done,
          total,
          ips_label: ips === null ? null : ips.toFixed(1),
          eta_label: ips === null || done === null || total === null ? null : formatDuration((total - done) / ips),
        };
        const html = await app.view('fragments/evaluation-progress', { p, oob, previous: state.previous !== undefined });
        oob = false;
        return [{ event: 'progress', html }];
      },
    });
  });

  /** The succeeded evaluation a running one is to replace, if there is one. */
  async function previousAggregate(projectId: string, experimentId: string) {
    try {
      return await evaluation.metrics<unknown>(projectId, experimentId);
    } catch (e) {
      if (isAppError(e) && e.code === 'NOT_FOUND') return null;
      throw e;
    }
  }

  /** The grid of an evaluation with its task's own page: the task's query, its items with their display fields. */
  async function taskResultsOf(page: TaskEvaluationPage<unknown, unknown>, projectId: string, experimentId: string, datasetId: string, filters: ResultFilters, pageNo: number) {
    const query: Record<string, unknown> = { page: pageNo, page_size: PAGE_SIZE, sort: filters.sort };
    for (const k of page.filters) {
      const v = (filters as unknown as Record<string, unknown>)[k];
      if (v !== undefined) query[k] = v;
    }
    const res = await evaluation.results<{ image_id: string; file: string; subset: string }>(projectId, experimentId, query);
    const base = `/projects/${projectId}/experiments/${experimentId}/evaluation/images`;
    return {
      total: res.total,
      items: res.items.map((r) => ({
        image_id: r.image_id,
        file: r.file,
        subset: r.subset,
        thumb_url: thumbUrl(projectId, datasetId, r.image_id),
        detail_url: `${base}/${r.image_id}`,
        ...page.tile(r),
      })),
      pager: pager(pageNo, PAGE_SIZE, res.total, (n) => evaluationUrl(projectId, experimentId, filters, n)),
    };
  }

  async function resultsOf(projectId: string, experimentId: string, datasetId: string, filters: ResultFilters, page: number) {
    const res = await evaluation.results<ResultRecord>(projectId, experimentId, {
      page,
      page_size: PAGE_SIZE,
      only: filters.only,
      label: filters.label,
      predicted: filters.predicted,
      subset: filters.subset,
      min_conf: filters.min_pct === undefined ? undefined : filters.min_pct / 100,
      max_conf: filters.max_pct === undefined ? undefined : filters.max_pct / 100,
      // classification's query (src/evaluation/results.ts) — only its own keys
      sort: filters.sort,
    });
    const base = `/projects/${projectId}/experiments/${experimentId}/evaluation/images`;
    return {
      total: res.total,
      items: res.items.map((r) => ({
        ...r,
        thumb_url: thumbUrl(projectId, datasetId, r.image_id),
        detail_url: `${base}/${r.image_id}`,
        confidence_label: confidenceLabel(r.confidence),
      })),
      pager: pager(page, PAGE_SIZE, res.total, (n) => evaluationUrl(projectId, experimentId, filters, n)),
    };
  }

  async function board(projectId: string, q: BoardQuery) {
    const exps = await experiments.list(projectId);
    const entries = await Promise.all(
      exps.map(async (exp) => ({ exp, runs: await runs.list(projectId, exp.id), state: await evaluation.get<unknown>(projectId, exp.id) })),
    );
    // Completed: a run finished (so it has checkpoints), or an evaluation exists from before.
    const completed = entries.filter((e) => e.runs.some((r) => r.status === 'succeeded') || e.state.status !== 'none').reverse();
    const selected = q.experiment ? completed.find((e) => e.exp.id === q.experiment) : completed.at(0);
    if (q.experiment && !selected) throw notFound('experiment', q.experiment);
    const list = completed.map(({ exp, state }) => ({
      id: exp.id,
      name: exp.name,
      model: exp.model.architecture ?? exp.model.backbone_id ?? '',
      href: evaluationUrl(projectId, exp.id),
      selected: exp.id === selected?.exp.id,
      status: state.status,
      metric: listMetric(state.task, state.aggregate),
    }));
    const training_url = `/projects/${projectId}/training`;
    if (!selected) return { project_id: projectId, board_url: evaluationUrl(projectId), training_url, experiments: list, experiment: null };

    const { exp, state } = selected;
    // The experiment's task: the evaluation's, else the experiment's own (nothing evaluated yet).
    const task = state.status === 'none' ? ((exp as { task?: string }).task ?? 'classification') : state.task;
    const filters = filtersOf(q, task);
    const labels = runLabels(selected.runs);
    const checkpoints = await evaluation.checkpoints(projectId, exp.id);
    const counts = await subsetCounts(projectId, exp);
    const config = state.config;
    const chosen = config ? `${config.run_id}:${config.checkpoint}` : null;
    const options = checkpoints.map((c) => {
      const value = `${c.run_id}:${c.checkpoint}`;
      const metric = c.metric === undefined || c.value === undefined ? '' : ` · ${checkpointMetricLabel(hasTask(exp.task) ? getTask(exp.task) : null, c.metric, c.value)}`;
      return { value, label: `${labels.get(c.run_id) ?? c.run_id} · ${c.checkpoint} (epoch ${c.epoch}${metric})`, selected: value === chosen };
    });
    if (options.length > 0 && !options.some((o) => o.selected)) options[0].selected = true;
    const defaults = config && !config.whole_dataset ? config.subsets : counts && counts.test > 0 ? ['test'] : ['val'];
    // Other ready datasets of the experiment's task can be evaluated whole (a separately imported test folder).
    const others = (await datasets.list(projectId)).filter((d) => d.id !== exp.dataset_id && d.status === 'ready' && d.task === task);
    const evaluatedName = config?.whole_dataset ? (others.find((d) => d.id === config.dataset_id)?.name ?? config.dataset_id) : null;
    // Before a first evaluation, an experiment whose test set is another dataset offers that one.
    const testSet = others.some((d) => d.id === exp.test_dataset_id) ? exp.test_dataset_id : null;
    const chosenSource = config ? (config.whole_dataset ? config.dataset_id : null) : testSet;
    const sources = others.length === 0 ? [] : [
      { value: '', label: `Split ${exp.split_name} of the training dataset`, selected: chosenSource === null },
      ...others.map((d) => ({
        value: d.id,
        label: `${d.name} · all ${d.image_count.toLocaleString('en-US')} images${d.id === exp.test_dataset_id ? ' (the test set)' : ''}`,
        selected: chosenSource === d.id,
      })),
    ];
    const subsets = EVAL_SUBSETS.map((name) => ({ name, count: counts ? counts[name] : null, checked: defaults.includes(name) }));

    const base = `/projects/${projectId}/experiments/${exp.id}/evaluation`;
    const live = ACTIVE.has(state.status);
    // While a re-evaluation runs, the last good one stays on view (marked as previous) until the
    // new one replaces it: the service keeps serving its metrics and results meanwhile.
    const previous = live ? await previousAggregate(projectId, exp.id) : null;
    const agg = state.status === 'succeeded' ? state.aggregate : previous;
    const datasetId = config?.dataset_id ?? exp.dataset_id;
    const taskPage = pageOf(task);
    if (taskPage) return { ...common(), ...(await taskParts(task, taskPage, agg)) };
    const cagg = agg as AggregateMetrics | null;
    const images = cagg ? cagg.confusion_matrix.matrix.reduce((s, row) => s + row.reduce((a, b) => a + b, 0), 0) : 0;
    const results = cagg ? await resultsOf(projectId, exp.id, datasetId, filters, q.page ?? 1) : null;
    function common() {
    return {
      task,
      warnings: state.status === 'succeeded' ? state.warnings : [],
      result_hint: pageOf(task)?.hint ?? 'its top-5 predictions',
      project_id: projectId,
      board_url: evaluationUrl(projectId, exp.id, filters, q.page),
      training_url,
      experiments: list,
      experiment: {
        id: exp.id,
        name: exp.name,
        description: exp.description,
        model: exp.model.architecture ?? exp.model.backbone_id ?? '',
        input_size: exp.model.input_size,
        split: exp.split_name,
        training_href: `${training_url}?experiment=${exp.id}`,
      },
      state: {
        status: state.status,
        live,
        previous: previous !== null,
        // What the evaluation kept on view evaluated, and when: "run 2 · best · 5 min ago".
        previous_of: previous !== null && state.previous
          ? [labels.get(state.previous.config.run_id) ?? state.previous.config.run_id, state.previous.config.checkpoint, ...(state.previous.finished_at ? [timeAgo(state.previous.finished_at)] : [])].join(' · ')
          : null,
        error: state.error ?? null,
        config: config
          ? {
              run: labels.get(config.run_id) ?? config.run_id,
              checkpoint: config.checkpoint,
              subsets: evaluatedName !== null ? `all of dataset ${evaluatedName}` : config.subsets.join(' + '),
              tta: config.tta,
              batch_size: config.batch_size,
            }
          : null,
        problems: state.problems.slice(0, PROBLEMS_SHOWN),
        problems_total: state.problems_total,
        finished_label: state.finished_at ? timeAgo(state.finished_at) : null,
        // The latest re-evaluation failed: the evaluation shown is the previous one, kept.
        last_attempt: state.last_attempt
          ? {
              run: labels.get(state.last_attempt.config.run_id) ?? state.last_attempt.config.run_id,
              checkpoint: state.last_attempt.config.checkpoint,
              error: state.last_attempt.error,
              finished_label: timeAgo(state.last_attempt.finished_at),
            }
          : null,
        ...liveOf(live ? state.job_id : null),
        // htmx's SSE extension follows the job from the event the page was rendered up to.
        live_url: live && state.job_id ? `${base}/live?last_event_id=${liveOf(state.job_id).last_event_id}` : null,
      },
      form: {
        start_url: base,
        options,
        subsets,
        sources,
        source: sources.find((o) => o.selected)?.value ?? '',
        split_missing: counts === null,
        tta: config?.tta ?? false,
        batch_size: config?.batch_size ?? 32,
      },
      links: agg
        ? { csv: `/api${base}/results.csv`, json: `/api${base}/metrics.json`, reset: base }
        : state.status === 'none'
          ? null
          : { csv: null, json: null, reset: base },
    };
    }

    /** What every task's results grid is given besides its rows, classes and sorts. */
    function gridCommon() {
      return {
        previous: previous !== null,
        filters,
        filtered: hasFilters(filters),
        clear_url: evaluationUrl(projectId, exp.id, { sort: filters.sort }),
        page_url: evaluationUrl(projectId),
        experiment_id: exp.id,
        subsets: config?.subsets ?? [],
      };
    }

    /** The metrics section and grid of a task with its own page (views/tasks/<task>/). */
    async function taskParts(name: string, page: TaskEvaluationPage<unknown, unknown>, a: unknown) {
      if (!a) return { metrics: null, grid: null };
      const results = await taskResultsOf(page, projectId, exp.id, datasetId, filters, q.page ?? 1);
      const images = state.status === 'succeeded' ? state.evaluated : (await evaluation.results<unknown>(projectId, exp.id, { page: 1, page_size: 1 })).total;
      const view = page.board(a, images);
      const names = view.names;
      return {
        metrics: { partial: `/tasks/${name}/evaluation-metrics`, previous: previous !== null, images, ...view },
        grid: {
          ...results,
          partial: `/tasks/${name}/evaluation-results`,
          ...gridCommon(),
          classes: names,
          sorts: page.sorts,
        },
      };
    }

    return {
      ...common(),
      metrics: cagg
        ? {
            previous: previous !== null,
            images,
            headline: headlineMetrics(cagg, images),
            confusion: confusionView(
              cagg,
              (label, predicted) => evaluationUrl(projectId, exp.id, { label, predicted, sort: filters.sort }),
              { label: filters.label, predicted: filters.predicted },
            ),
            classes: classRows(cagg),
            charts: chartPayload(cagg),
          }
        : null,
      grid: results
        ? {
            ...results,
            ...gridCommon(),
            classes: cagg?.confusion_matrix.labels ?? [],
            sorts: RESULT_SORTS.map((s) => ({ value: s, label: SORT_LABELS[s] })),
          }
        : null,
    };
  }

  app.get('/projects/:project_id/evaluation', async (req, reply) => {
    const { project_id } = parseIds(ProjectIds, req.params);
    const q = parseForm(BoardQuery, req.query);
    reply.header('Vary', 'HX-Request, HX-Target');
    const data = await board(project_id, q);
    const target = swapTarget(req);
    const grid = 'grid' in data ? data.grid : null;
    if (target === 'results' && grid) return reply.view('partial' in grid ? grid.partial.slice(1) : 'fragments/evaluation-results', { grid });
    if (target !== 'page') return reply.view('fragments/evaluation-board', data);
    const project = await projects.get(project_id);
    const layout = await projectLayout(app, project, { title: `Evaluation · ${project.name}`, section: 'project', crumbs: [...projectCrumbs(project), { label: 'Evaluation' }] });
    return reply.view('pages/evaluation', { ...layout, section: 'evaluation', project, ...data });
  });

  /** Fetches the board again at `url` (HX-Location keeps the URL bar in step). */
  const relocate = (reply: FastifyReply, url: string, status = 200) =>
    reply.code(status).header('HX-Location', JSON.stringify({ path: url, target: '#evaluation', swap: 'outerHTML' })).send();

  app.post('/projects/:project_id/experiments/:experiment_id/evaluation', async (req, reply) => {
    const { project_id, experiment_id } = parseIds(ExperimentIds, req.params);
    const form = parseForm(StartForm, req.body);
    const [run_id, checkpoint] = form.checkpoint.split(':') as [string, 'best' | 'last'];
    const common = { run_id, checkpoint, tta: form.tta === 'on', batch_size: form.batch_size };
    if (form.dataset_id) {
      await evaluation.start(project_id, experiment_id, { ...common, dataset_id: form.dataset_id });
    } else {
      const subsets = EVAL_SUBSETS.filter((s) => form[`subset.${s}`] === 'on');
      if (subsets.length === 0) throw new AppError('VALIDATION_ERROR', 'choose at least one subset to evaluate');
      await evaluation.start(project_id, experiment_id, { ...common, subsets });
    }
    return relocate(reply, evaluationUrl(project_id, experiment_id), 202);
  });

  app.delete('/projects/:project_id/experiments/:experiment_id/evaluation', async (req, reply) => {
    const { project_id, experiment_id } = parseIds(ExperimentIds, req.params);
    await evaluation.reset(project_id, experiment_id);
    return relocate(reply, evaluationUrl(project_id, experiment_id));
  });

  // One image's result: the modal over the grid, or its own page on a full load.
  app.get('/projects/:project_id/experiments/:experiment_id/evaluation/images/:image_id', async (req, reply) => {
    const { project_id, experiment_id, image_id } = parseIds(ResultIds, req.params);
    const state = await evaluation.get<unknown>(project_id, experiment_id);
    const exp = await experiments.get(project_id, experiment_id);
    const datasetId = state.config?.dataset_id ?? exp.dataset_id;
    const taskPage = pageOf(state.task);
    if (taskPage) {
      // A result of a task with its own page: its partials (views/tasks/<task>/).
      const raw = await evaluation.result<unknown>(project_id, experiment_id, image_id);
      const links = {
        file_url: `/api/projects/${project_id}/datasets/${datasetId}/images/${image_id}/file`,
        image_href: `/projects/${project_id}/datasets/${datasetId}/images/${image_id}`,
      };
      const result = { ...taskPage.detail(raw), ...links };
      const body = `/tasks/${state.task}/evaluation-detail`;
      reply.header('Vary', 'HX-Request');
      if (isHtmx(req) && req.headers['hx-history-restore-request'] !== 'true') return reply.view('fragments/evaluation-detail', { result, body, title: result.title });
      const project = await projects.get(project_id);
      const layout = await projectLayout(app, project, {
        title: `Result ${image_id}`,
        section: 'project',
        crumbs: [...projectCrumbs(project), { label: 'Evaluation', href: evaluationUrl(project_id, experiment_id) }, { label: image_id }],
      });
      return reply.view('pages/evaluation-image', { ...layout, section: 'evaluation', result, body, title: result.title, back_url: evaluationUrl(project_id, experiment_id) });
    }
    const r = await evaluation.result<ResultRecord>(project_id, experiment_id, image_id);
    const result = {
      ...r,
      confidence_label: confidenceLabel(r.confidence),
      file_url: `/api/projects/${project_id}/datasets/${datasetId}/images/${image_id}/file`,
      image_href: `/projects/${project_id}/datasets/${datasetId}/images/${image_id}`,
      top: r.top_k.slice(0, 5).map((t) => ({ ...t, percent: Math.round(t.score * 1000) / 10, is_true: t.label === r.label })),
    };
    reply.header('Vary', 'HX-Request');
    if (isHtmx(req) && req.headers['hx-history-restore-request'] !== 'true') return reply.view('fragments/evaluation-detail', { result });
    const project = await projects.get(project_id);
    const layout = await projectLayout(app, project, {
      title: `Result ${image_id}`,
      section: 'project',
      crumbs: [...projectCrumbs(project), { label: 'Evaluation', href: evaluationUrl(project_id, experiment_id) }, { label: image_id }],
    });
    return reply.view('pages/evaluation-image', { ...layout, section: 'evaluation', result, back_url: evaluationUrl(project_id, experiment_id) });
  });
}
