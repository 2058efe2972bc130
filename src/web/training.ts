import { randomInt } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { notFound } from '../kernel/errors.ts';
import { deleteExperiment, type Experiment } from '../core/experiments.ts';
import type { RunDetail, RunSummary } from '../core/runs.ts';
import type { JobEvent } from '../jobs/events.ts';
import { ExperimentIdSchema, RunIdSchema } from '../schemas/experiment.ts';
import { getTask } from '../tasks/index.ts';
import { isHtmx } from './errors.ts';
import { ProjectIds, SelectionIdSchema, parseForm, parseIds } from './forms.ts';
import { streamRenderedJobEvents } from '../http/sse.ts';
import type { MetricsLine } from '../schemas/experiment.ts';
import { timeAgo } from './format.ts';
import { projectCrumbs, projectLayout } from './layout.ts';
import { weightsTitle } from './weights-view.ts';
import {
  ACTIVE,
  RESUMABLE,
  chartSeries,
  configRows,
  dataSources,
  fixed,
  formatDuration,
  formatMetric,
  mergeMetrics,
  metricOf,
  pageMetric,
  pct,
  progressOf,
  type PageMetric,
  queuePositions,
  runRow,
  trainingUrl,
} from './training-view.ts';

/**
 * The training page: experiments and their runs on the left, the selected run on the right with
 * its live curves (public/js/training.js follows the run's job events over SSE), progress, log,
 * config, and the comparison of an experiment's runs. Actions answer with HX-Location, so the
 * board (both columns, #training) is fetched again and the URL names the selection.
 */

const optional = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === '' ? undefined : v), schema.optional());
const BoardQuery = z.strictObject({ experiment: optional(SelectionIdSchema), run: optional(SelectionIdSchema) });
type BoardQuery = z.infer<typeof BoardQuery>;
const ExperimentIds = ProjectIds.extend({ experiment_id: ExperimentIdSchema });
const StartForm = z.strictObject({ seed: optional(z.coerce.number({ error: 'the seed must be a whole number' }).int('the seed must be a whole number').min(0, 'the seed must be at least 0').max(2 ** 31 - 1, 'the seed must be below 2³¹')) });
const RunIds = ExperimentIds.extend({ run_id: RunIdSchema });

/** Runs drawn on the comparison chart: the newest ones. */
const COMPARE_MAX = 8;
/** Log lines the page shows (the SSE log keeps more). */
const LOG_TAIL = 200;

/** A board swap (selection or action) gets the board; a reload or back/forward the whole page. */
function wantsBoardOnly(req: FastifyRequest): boolean {
  return isHtmx(req) && req.headers['hx-target'] === 'training' && req.headers['hx-history-restore-request'] !== 'true';
}

/** Text for an HTML fragment the server writes by hand (the log lines of a live stream). */
function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

/** The experiment's task's first per-epoch metric: what the run panel, its chart and the run list show. */
function headlineMetric(exp: Experiment): PageMetric {
  const m = getTask(exp.task).epochMetrics[0];
  return m ? pageMetric(m) : { key: 'accuracy', title: 'Accuracy', format: 'percent', higher_is_better: true };
}

export default async function trainingPages(app: FastifyInstance): Promise<void> {
  const { projects, experiments, runs, jobs, weights } = app.studio;

  /** What a run starts from, for its configuration: as its config.json records it (the experiment's before it started). */
  async function weightsLabel(exp: Experiment, run: RunDetail): Promise<string> {
    const m = run.config?.model ?? exp.model;
    if (m.backbone_id !== undefined) return "the imported model's own";
    if (m.weights_id === undefined) return 'random initialisation';
    const w = await weights.get(m.architecture ?? '', m.weights_id).catch(() => null);
    if (!w) return `pretrained ${m.weights_id} (deleted since)`;
    return `pretrained · ${weightsTitle(w)} · sha256 ${w.sha256 ? `${w.sha256.slice(0, 12)}…` : '—'}`;
  }

  /** The run's events so far, from the studio's event log (empty once the log was dropped). */
  function eventsOf(jobId: string | null): JobEvent[] {
    return jobId && jobs.events.has(jobId) ? jobs.events.since(jobId, 0) : [];
  }

  /** Dataset names by id, for where an experiment's validation and test images come from. */
  async function datasetNames(projectId: string): Promise<Map<string, string>> {
    return new Map((await app.studio.datasets.list(projectId)).map((d) => [d.id, d.name]));
  }

  async function runPanel(projectId: string, exp: Experiment, run: RunDetail) {
    const task = getTask(exp.task);
    const metric = headlineMetric(exp);
    const formatOf = (key: string): 'percent' | 'number' => task.epochMetrics.find((m) => m.key === key)?.format ?? 'number';
    const metricName = (key: string): string => task.epochMetrics.find((m) => m.key === key)?.label.replace(/^(validation|val)\b/i, 'val') ?? key.replace(/_/g, ' ');
    const events = eventsOf(run.job_id);
    const metrics = mergeMetrics(run.metrics, events);
    const lastProgress = [...events].reverse().find((e) => e.type === 'progress');
    const live = ACTIVE.has(run.status) && run.job_id !== null;
    const job = run.job_id ? await jobs.get(run.job_id).catch(() => null) : null;
    const detail = (lastProgress?.data as Record<string, unknown> | undefined) ?? (live ? job?.progress_detail : undefined);
    const progress = progressOf(run, detail);
    // A resumed run trained in earlier jobs too: its log and its time are all of theirs together.
    const earlier = await Promise.all((run.previous_job_ids ?? []).map((id) => jobs.get(id).catch(() => null)));
    const spent = (j: { started_at?: string | null; finished_at?: string | null } | null, now: number) =>
      j?.started_at ? Math.max(0, (j.finished_at ? Date.parse(j.finished_at) : now) - Date.parse(j.started_at)) : 0;
    const earlierMs = earlier.reduce((a, j) => a + spent(j, Date.now()), 0);
    // "running for" counts the run's training time: as if it had run without a pause until now.
    const startedAt = live
      ? job?.started_at
        ? new Date(Date.parse(job.started_at) - earlierMs).toISOString()
        : null
      : run.started_at;
    const trainedMs = earlierMs + spent(job, Date.now());
    const pastEvents = (run.previous_job_ids ?? []).flatMap((id) => eventsOf(id));
    const base = `/projects/${projectId}/experiments/${exp.id}/runs/${run.id}`;
    const last = metrics.at(-1) ?? null;
    return {
      id: run.id,
      status: run.status,
      live,
      epochs: run.epochs,
      epochs_done: run.epochs_done,
      started_at: startedAt,
      best_metric: run.best?.metric ?? exp.hyperparameters.early_stopping?.metric ?? task.bestMetric,
      metric,
      events_url: live ? `/api/jobs/${run.job_id}/events` : null,
      // htmx's SSE extension follows the run's job from the event the page was rendered up to.
      live_url: live ? `${base}/live?last_event_id=${events.at(-1)?.id ?? 0}` : null,
      // The page is a snapshot up to this event; the stream continues after it.
      last_event_id: events.at(-1)?.id ?? 0,
      refresh_url: trainingUrl(projectId, exp.id, run.id),
      cancel_url: ACTIVE.has(run.status) ? `${base}/cancel` : null,
      resume_url: RESUMABLE.has(run.status) ? `${base}/resume` : null,
      progress,
      percent: Math.round(progress.fraction * 1000) / 10,
      eta_label: progress.eta_s === null ? '—' : formatDuration(progress.eta_s),
      ips_label: progress.images_per_s === null ? '—' : progress.images_per_s.toFixed(1),
      best: run.best ? { ...run.best, label: `${metricName(run.best.metric)} ${formatMetric(run.best.value, formatOf(run.best.metric))}` } : null,
      last: last
        ? {
            train_loss: fixed(last.train_loss),
            val_loss: fixed(last.val_loss),
            train_metric: formatMetric(metricOf(last, `train_${metric.key}`), metric.format),
            val_metric: formatMetric(metricOf(last, `val_${metric.key}`), metric.format),
          }
        : null,
      series: chartSeries(metrics, metric.key),
      log: [...pastEvents, ...events]
        .filter((e) => e.type === 'log')
        .slice(-LOG_TAIL)
        .map((e) => String((e.data as { message?: unknown } | null)?.message ?? '')),
      error: run.error,
      warnings: run.warnings,
      // The trivial baseline beside the metric: always answering the most frequent class.
      baseline: typeof last?.diagnostics?.majority_baseline === 'number' ? pct(last.diagnostics.majority_baseline) : null,
      stop_reason: run.stop_reason,
      resumes: run.resumes,
      checkpoints: run.checkpoints.map((c) => ({ name: c.name, epoch: c.epoch, bytes: c.bytes, sha: c.sha256.slice(0, 12) })),
      config: configRows(run, exp, await datasetNames(projectId), await weightsLabel(exp, run)),
      started_label: run.started_at ? timeAgo(run.started_at) : null,
      finished_label: run.finished_at ? timeAgo(run.finished_at) : null,
      duration_label: startedAt ? formatDuration((live ? Date.now() - Date.parse(startedAt) : trainedMs || (run.finished_at ? Date.parse(run.finished_at) - Date.parse(startedAt) : 0)) / 1000) : null,
    };
  }

  async function compareOf(projectId: string, exp: Experiment, list: RunSummary[]) {
    const picked = list.filter((r) => r.epochs_done > 0 || r.last_metrics).slice(0, COMPARE_MAX);
    const total = list.length;
    return Promise.all(
      picked.map(async (r) => {
        const d = await runs.get(projectId, exp.id, r.id);
        return { id: r.id, label: `Run ${total - list.indexOf(r)}`, status: r.status, series: chartSeries(mergeMetrics(d.metrics, eventsOf(d.job_id)), headlineMetric(exp).key) };
      }),
    );
  }

  /** Both columns; the left one alone (`panel: false`) skips reading the run's metrics and the comparison. */
  async function board(projectId: string, q: BoardQuery, panel = true) {
    const exps = await experiments.list(projectId);
    const positions = queuePositions(runs.queue());
    const entries = await Promise.all(exps.map(async (exp) => ({ exp, runs: await runs.list(projectId, exp.id) })));
    entries.reverse(); // newest experiment first
    let selected: (typeof entries)[number] | null = entries[0] ?? null;
    if (q.experiment) {
      selected = entries.find((e) => e.exp.id === q.experiment) ?? null;
      if (!selected) throw notFound('experiment', q.experiment);
    }
    let run: RunSummary | null = selected?.runs[0] ?? null;
    if (q.run) {
      run = selected?.runs.find((r) => r.id === q.run) ?? null;
      if (!run) throw notFound('run', q.run);
    }
    const list = entries.map(({ exp, runs: rs }) => ({
      id: exp.id,
      name: exp.name,
      model: exp.model.architecture ?? exp.model.backbone_id ?? '',
      pretrained: exp.model.weights_id !== undefined,
      href: trainingUrl(projectId, exp.id),
      selected: exp.id === selected?.exp.id,
      active: rs.some((r) => ACTIVE.has(r.status)),
      runs: rs.map((r, i) => runRow(projectId, exp, r, i, rs.length, positions, run?.id ?? null, headlineMetric(exp))),
    }));
    const queue = runs.queue().map((entry, i) => {
      const owner = entries.find((e) => e.exp.id === entry.experiment_id);
      return {
        position: i + 1,
        status: entry.status,
        label: owner ? `${owner.exp.name} · Run ${owner.runs.length - owner.runs.findIndex((r) => r.id === entry.run_id)}` : 'a run of another project',
        href: owner ? trainingUrl(projectId, entry.experiment_id, entry.run_id) : null,
      };
    });
    const exp = selected?.exp ?? null;
    return {
      project_id: projectId,
      board_url: trainingUrl(projectId, exp?.id, run?.id),
      new_url: `/projects/${projectId}/experiments/new`,
      experiments: list,
      polling: list.some((e) => e.active),
      queue,
      experiment: exp
        ? {
            id: exp.id,
            name: exp.name,
            description: exp.description,
            model: exp.model.architecture ?? exp.model.backbone_id ?? '',
            input_size: exp.model.input_size,
            epochs: exp.hyperparameters.epochs,
            data: await (async () => {
              const names = await datasetNames(projectId);
              const sources = dataSources(exp, names);
              // shown when a second dataset validates or tests (else the split's subsets, as the run's config says)
              const other = exp.val_dataset_id !== null || exp.test_dataset_id !== null;
              return { other, dataset: names.get(exp.dataset_id) ?? exp.dataset_id, split: exp.split_name, val: sources.val, test: sources.test };
            })(),
            start_url: `/projects/${projectId}/experiments/${exp.id}/runs`,
            // The first run takes the experiment's seed; another gets a fresh one (shown, editable),
            // so it is not a silent copy of the first.
            next_seed: (selected?.runs.length ?? 0) === 0 ? exp.hyperparameters.seed : randomInt(0, 2 ** 31 - 1),
            delete_url: `/projects/${projectId}/experiments/${exp.id}`,
            run_count: selected?.runs.length ?? 0,
            busy: (selected?.runs ?? []).some((r) => ACTIVE.has(r.status)),
          }
        : null,
      run: panel && exp && run ? await runPanel(projectId, exp, await runs.get(projectId, exp.id, run.id)) : null,
      run_label: run && selected ? `Run ${selected.runs.length - selected.runs.indexOf(run)}` : null,
      compare: panel && exp && selected ? await compareOf(projectId, exp, selected.runs) : [],
      metric: exp ? headlineMetric(exp) : null,
    };
  }

  app.get('/projects/:project_id/training', async (req, reply) => {
    const { project_id } = parseIds(ProjectIds, req.params);
    const q = parseForm(BoardQuery, req.query);
    reply.header('Vary', 'HX-Request, HX-Target');
    const data = await board(project_id, q);
    if (wantsBoardOnly(req)) return reply.view('fragments/training-board', data);
    const project = await projects.get(project_id);
    const layout = await projectLayout(app, project, { title: `Training · ${project.name}`, section: 'project', crumbs: [...projectCrumbs(project), { label: 'Training' }] });
    return reply.view('pages/training', { ...layout, section: 'training', project, ...data });
  });

  // The left column polls itself while a run is queued or training (statuses and queue positions).
  app.get('/projects/:project_id/training/list', async (req, reply) => {
    const { project_id } = parseIds(ProjectIds, req.params);
    const q = parseForm(BoardQuery, req.query);
    return reply.view('fragments/training-list', await board(project_id, q, false));
  });

  /** Fetches the board again at `url` (HX-Location keeps the URL bar in step). */
  const relocate = (reply: FastifyReply, url: string, status = 200) =>
    reply.code(status).header('HX-Location', JSON.stringify({ path: url, target: '#training', swap: 'outerHTML' })).send();

  app.post('/projects/:project_id/experiments/:experiment_id/runs', async (req, reply) => {
    const { project_id, experiment_id } = parseIds(ExperimentIds, req.params);
    const form = parseForm(StartForm, req.body ?? {});
    const { run } = await runs.start(project_id, experiment_id, form.seed === undefined ? {} : { seed: form.seed });
    return relocate(reply, trainingUrl(project_id, experiment_id, run.id), 202);
  });

  /**
   * The run panel's live stream for htmx's SSE extension: each `progress` event rendered as the
   * panel's bar and figures (the badges to running out of band, once), each `metric` event as its
   * stats with the epoch's point for the charts (public/js/training.js draws it), each `log` event
   * as one escaped line appended to the log; then `end`, on which the board comes again.
   */
  app.get('/projects/:project_id/experiments/:experiment_id/runs/:run_id/live', async (req, reply) => {
    const { project_id, experiment_id, run_id } = parseIds(RunIds, req.params);
    const exp = await experiments.get(project_id, experiment_id);
    const run = await runs.get(project_id, experiment_id, run_id);
    if (!run.job_id) throw notFound('job of run', run_id);
    const job = await jobs.get(run.job_id);
    const metric = headlineMetric(exp);
    // the time of the run's earlier jobs (before a resume) counts too
    const earlier = await Promise.all((run.previous_job_ids ?? []).map((id) => jobs.get(id).catch(() => null)));
    const earlierMs = earlier.reduce((a, j) => a + (j?.started_at && j.finished_at ? Math.max(0, Date.parse(j.finished_at) - Date.parse(j.started_at)) : 0), 0);
    const shifted = (iso: string) => new Date(Date.parse(iso) - earlierMs).toISOString();
    let startedAt: string | null = job.started_at ? shifted(job.started_at) : null;
    let badges = true;
    let firstLog = true;
    return streamRenderedJobEvents(req, reply, {
      job,
      events: jobs.events,
      render: async (e) => {
        if (e.type === 'progress') {
          const detail = (e.data ?? {}) as Record<string, unknown>;
          const progress = progressOf({ ...run, status: 'running' }, detail);
          if (startedAt === null) startedAt = shifted((await jobs.get(job.id)).started_at ?? new Date().toISOString());
          const r = {
            id: run.id,
            status: 'running',
            live: true,
            progress,
            percent: Math.round(progress.fraction * 1000) / 10,
            eta_label: progress.eta_s === null ? '—' : formatDuration(progress.eta_s),
            ips_label: progress.images_per_s === null ? '—' : progress.images_per_s.toFixed(1),
            started_at: startedAt,
            duration_label: formatDuration((Date.now() - Date.parse(startedAt)) / 1000),
          };
          const html = await app.view('fragments/training-progress', { r, oob: badges });
          badges = false;
          return [{ event: 'progress', html }];
        }
        if (e.type === 'metric') {
          const line = e.data as MetricsLine;
          const panel = await runPanel(project_id, exp, await runs.get(project_id, experiment_id, run_id));
          const html = await app.view('fragments/training-stats', { r: panel, point: chartSeries([line], metric.key)[0] });
          return [{ event: 'metric', html }];
        }
        if (e.type === 'log') {
          const message = String((e.data as { message?: unknown } | null)?.message ?? '');
          const placeholder = firstLog ? `<span id="log-empty-${run.id}" hx-swap-oob="delete"></span>` : '';
          firstLog = false;
          return [{ event: 'log', html: `${escapeHtml(message)}\n${placeholder}` }];
        }
        return [];
      },
    });
  });

  app.post('/projects/:project_id/experiments/:experiment_id/runs/:run_id/cancel', async (req, reply) => {
    const { project_id, experiment_id, run_id } = parseIds(RunIds, req.params);
    await runs.cancel(project_id, experiment_id, run_id);
    return relocate(reply, trainingUrl(project_id, experiment_id, run_id));
  });

  app.post('/projects/:project_id/experiments/:experiment_id/runs/:run_id/resume', async (req, reply) => {
    const { project_id, experiment_id, run_id } = parseIds(RunIds, req.params);
    await runs.resume(project_id, experiment_id, run_id);
    return relocate(reply, trainingUrl(project_id, experiment_id, run_id), 202);
  });

  app.delete('/projects/:project_id/experiments/:experiment_id', async (req, reply) => {
    const { project_id, experiment_id } = parseIds(ExperimentIds, req.params);
    await deleteExperiment(app.studio, project_id, experiment_id);
    return relocate(reply, trainingUrl(project_id));
  });
}
