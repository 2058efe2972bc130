import { existsSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError, notFound } from '../kernel/errors.ts';
import type { Experiment } from '../core/experiments.ts';
import type { ExportView } from '../core/exports.ts';
import type { RunSummary } from '../core/runs.ts';
import { idOf } from '../schemas/common.ts';
import { ExperimentIdSchema } from '../schemas/experiment.ts';
import { StoredTaskNameSchema } from '../schemas/task.ts';
import { getTask, hasTask } from '../tasks/index.ts';
import { VariantNameSchema } from '../storage/exports.ts';
import { isHtmx } from './errors.ts';
import {
  EXPORT_VARIANTS,
  VARIANT_NOTES,
  accuracyDelta,
  answerBar,
  benchmarkRows,
  formatValue,
  exportsUrl,
  formatCount,
  formatFlops,
  formatMs,
  formatRate,
  mainRun,
  prettyJson,
  profileRows,
  throughputAt,
  validationView,
} from './exports-view.ts';
import { ProjectIds, SelectionIdSchema, parseForm, parseIds } from './forms.ts';
import { streamRenderedJobEvents } from '../http/sse.ts';
import { formatBytes, timeAgo } from './format.ts';
import { projectCrumbs, projectLayout } from './layout.ts';
import { checkpointMetricLabel, fixed, pct } from './training-view.ts';

/**
 * The deploy page: experiments with a finished run on the left; on the right the selected
 * experiment's export form (with a running export's progress over SSE), a table comparing every
 * variant of every export, and one export in detail — try it on an image, its files and package,
 * its speed and per-layer profile, its manifest. public/js/exports.js follows the job and posts
 * "Try it" images to the predict API; actions answer with HX-Location, so the board (#exports) is
 * fetched again and the URL names the selection.
 */

const optional = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === '' ? undefined : v), schema.optional());
const ExportIdSchema = idOf('export');

const BoardQuery = z.strictObject({
  experiment: optional(SelectionIdSchema),
  export: optional(SelectionIdSchema),
});
type BoardQuery = z.infer<typeof BoardQuery>;

const ExperimentIds = ProjectIds.extend({ experiment_id: ExperimentIdSchema });
const ExportIds = ExperimentIds.extend({ export_id: ExportIdSchema });

/** The form: the run and checkpoint in one select, one checkbox per variant (one per registered format). */
const StartForm = z.strictObject({
  checkpoint: z.string().regex(/^run-[0-9a-z]{8}:(best|last)$/, 'choose a checkpoint'),
  ...(Object.fromEntries(EXPORT_VARIANTS.map((v) => [`variant.${v}`, optional(z.literal('on'))])) as Record<`variant.${string}`, z.ZodType<'on' | undefined>>),
  benchmark: optional(z.literal('on')),
});

/** "Try it": what the predict API answered, sent back to be drawn by the export's task's partial. */
const AnswerBody = z.strictObject({
  variant: VariantNameSchema,
  latency_ms: z.number().nonnegative().finite(),
  answer: z.unknown(),
});

/** Where the views live: a task's partials are `views/tasks/<task>/…`. */
const VIEWS_DIR = new URL('../../views/', import.meta.url);

const ACTIVE = new Set(['queued', 'running']);
/** Rows of the per-layer table; the report has every node. */
const PROFILE_ROWS = 15;

/** What a swap asks for: the board, or (a reload, back/forward) the page. */
function swapTarget(req: FastifyRequest): 'board' | 'page' {
  if (!isHtmx(req) || req.headers['hx-history-restore-request'] === 'true') return 'page';
  return req.headers['hx-target'] === 'exports' ? 'board' : 'page';
}

/** How the compare table shows an export's headline metric: its title, format and direction (from the task's epoch metric of that name). */
function metricOfExport(taskName: string, x: ExportView | null): { name: string; title: string; percent: boolean; higher: boolean; reference: number | null } {
  const name = x?.reference_metric?.name ?? 'accuracy';
  const info = hasTask(taskName) ? getTask(taskName).epochMetrics.find((m) => m.key === `val_${name}`) : undefined;
  const title = info ? info.label.replace(/^(validation|val)\s+/i, '') : name;
  return {
    name,
    title: title === title.toLowerCase() ? title.charAt(0).toUpperCase() + title.slice(1) : title,
    percent: info ? info.format === 'percent' : true,
    higher: info ? info.higher_is_better : true,
    reference: x?.reference_metric?.value ?? x?.reference_accuracy ?? null,
  };
}

/** "+0.0123" / "−0.0042" for a metric in the target's units. */
function valueDelta(v: number | null | undefined, reference: number | null): string | null {
  if (v === null || v === undefined || reference === null) return null;
  const d = v - reference;
  return `${d > 0 ? '+' : d < 0 ? '−' : '±'}${Math.abs(d).toFixed(4)}`;
}

export default async function exportPages(app: FastifyInstance): Promise<void> {
  const { projects, experiments, runs, jobs, evaluation, exports } = app.studio;

  /** Run labels as the training page numbers them: Run 1 is the oldest. */
  const runLabels = (list: RunSummary[]) => new Map(list.map((r, i) => [r.id, `Run ${list.length - i}`]));

  function liveOf(projectId: string, experimentId: string, x: ExportView, labels: Map<string, string>, refreshUrl: string) {
    const jobId = x.job_id;
    const events = jobId && jobs.events.has(jobId) ? jobs.events.since(jobId, 0) : [];
    const last = [...events].reverse().find((e) => e.type === 'progress');
    const log = [...events].reverse().find((e) => e.type === 'log');
    const d = (last?.data ?? {}) as Record<string, unknown>;
    const n = (k: string): number | null => (typeof d[k] === 'number' && Number.isFinite(d[k]) ? (d[k] as number) : null);
    const message = (log?.data as { message?: unknown } | undefined)?.message;
    return {
      export_id: x.id,
      status: x.status,
      source: `${labels.get(x.run_id) ?? x.run_id} · ${x.checkpoint}`,
      variants: x.requested.join(' + '),
      events_url: jobId ? `/api/jobs/${jobId}/events` : null,
      last_event_id: events.at(-1)?.id ?? 0,
      // htmx's SSE extension follows the job from the event the page was rendered up to.
      live_url: jobId ? `/projects/${projectId}/experiments/${experimentId}/exports/${x.id}/live?last_event_id=${events.at(-1)?.id ?? 0}` : null,
      refresh_url: refreshUrl,
      percent: Math.round(Math.min(1, Math.max(0, n('progress') ?? 0)) * 1000) / 10,
      step: typeof message === 'string' && message ? message.charAt(0).toUpperCase() + message.slice(1) : x.status === 'queued' ? 'Waiting for the export thread' : 'Starting',
    };
  }

  function compareRow(projectId: string, exp: Experiment, x: ExportView, labels: Map<string, string>, selected: boolean) {
    const experimentId = exp.id;
    return {
      id: x.id,
      href: exportsUrl(projectId, experimentId, x.id),
      selected,
      source: `${labels.get(x.run_id) ?? x.run_id} · ${x.checkpoint}`,
      created_label: timeAgo(x.created_at),
      status: x.status,
      error: x.error ?? null,
      variants: x.requested.join(' + '),
      rows: x.variants.map((v) => {
        const run = mainRun(v.benchmark);
        // The task's headline metric (accuracy, mAP, MAE, …), formatted as its epoch metric is.
        const m = metricOfExport(exp.task, x);
        const value = v.metric?.value ?? (m.name === 'accuracy' ? v.accuracy : null);
        const delta = v.name === 'fp32' ? null : m.percent ? accuracyDelta(value, m.reference) : valueDelta(value, m.reference);
        return {
          variant: v.name,
          size: formatBytes(v.size_bytes),
          params: formatCount(v.profile?.params ?? x.params),
          flops: formatFlops(v.profile?.flops ?? x.flops),
          p50: formatMs(run?.latency_b1.p50_ms),
          p99: formatMs(run?.latency_b1.p99_ms),
          t8: formatRate(throughputAt(run, 8)),
          t32: formatRate(throughputAt(run, 32)),
          accuracy: m.percent ? pct(value) : value === null || value === undefined ? '—' : value.toFixed(4),
          delta,
          // "down" is worse: a lower accuracy or mAP, a higher error
          delta_down: delta !== null && (m.higher ? delta.startsWith('−') : delta.startsWith('+')),
          validation: validationView(v.validation),
        };
      }),
    };
  }

  function detailOf(projectId: string, experimentId: string, x: ExportView, labels: Map<string, string>) {
    const api = `/api/projects/${projectId}/experiments/${experimentId}/exports/${x.id}`;
    const done = x.status === 'succeeded';
    const m = x.manifest;
    const listed = m ? m.files.map((f) => ({ name: f.name, size: formatBytes(f.size_bytes), sha256: f.sha256 })) : [];
    // manifest.json and SHA256SUMS are in the package but not in the manifest's own list.
    const files = done ? [...listed, { name: 'manifest.json', size: '', sha256: '' }, { name: 'SHA256SUMS', size: '', sha256: '' }].map((f) => ({ ...f, url: `${api}/files/${f.name}` })) : [];
    const benched = x.variants.filter((v) => v.benchmark);
    const batches = [...new Set(benched.flatMap((v) => v.benchmark?.results.flatMap((r) => r.throughput.map((t) => t.batch)) ?? []))].sort((a, b) => a - b);
    const peak = Math.max(0, ...benched.map((v) => v.benchmark?.peak_rss_bytes ?? 0));
    const source = `${labels.get(x.run_id) ?? x.run_id} · ${x.checkpoint}`;
    return {
      id: x.id,
      status: x.status,
      live: ACTIVE.has(x.status),
      source,
      created_label: timeAgo(x.created_at),
      error: x.error ?? null,
      zip_url: done ? `${api}/download` : null,
      delete_url: `/projects/${projectId}/experiments/${experimentId}/exports/${x.id}`,
      predict_url: `${api}/predict`,
      answer_url: `/projects/${projectId}/experiments/${experimentId}/exports/${x.id}/answer`,
      variants: x.variants.map((v) => ({ name: v.name, size: formatBytes(v.size_bytes) })),
      files,
      report: done
        ? { images: x.images, subset: x.subset ?? 'val', reference_accuracy: x.reference_accuracy === null ? null : pct(x.reference_accuracy) }
        : null,
      bench: benched.map((v) => ({ name: v.name, rows: benchmarkRows(v.benchmark) })),
      bench_batches: batches,
      peak_rss: peak > 0 ? formatBytes(peak) : null,
      profiles: x.variants.flatMap((v) =>
        v.profile
          ? [{
              name: v.name,
              rows: profileRows(v.profile.nodes, PROFILE_ROWS),
              summary: `${Math.min(PROFILE_ROWS, v.profile.nodes.length)} of ${v.profile.nodes.length} nodes · mean of ${v.profile.runs} runs on ${v.profile.threads} thread${v.profile.threads === 1 ? '' : 's'} · ${formatCount(v.profile.params)} parameters · ${formatFlops(v.profile.flops)}FLOPs at batch 1`,
            }]
          : [],
      ),
      manifest: m
        ? {
            schema_version: m.schema_version,
            opset: m.opset,
            labels: m.labels.length,
            input: m.inputs.map((t) => `${t.name} · ${t.dtype} · [${t.shape.join(', ')}]`).join('; '),
            outputs: m.outputs.map((t) => `${t.name} · ${t.dtype} · [${t.shape.join(', ')}]`).join('; '),
            preprocessing: preprocessingText(m.preprocessing),
            source: `${source} · dataset ${m.source.dataset_id} · split ${m.source.split_id}`,
          }
        : null,
      manifest_json: m ? prettyJson(m) : '',
    };
  }

  async function board(projectId: string, q: BoardQuery) {
    const exps = await experiments.list(projectId);
    const entries = await Promise.all(
      exps.map(async (exp) => ({ exp, runs: await runs.list(projectId, exp.id), list: await exports.list(projectId, exp.id) })),
    );
    // Exportable: a run finished (so it has checkpoints), or exports exist from before.
    const completed = entries.filter((e) => e.runs.some((r) => r.status === 'succeeded') || e.list.length > 0).reverse();
    const selected = q.experiment ? completed.find((e) => e.exp.id === q.experiment) : completed.at(0);
    if (q.experiment && !selected) throw notFound('experiment', q.experiment);
    const list = completed.map(({ exp, list }) => ({
      id: exp.id,
      name: exp.name,
      model: exp.model.architecture ?? exp.model.backbone_id ?? '',
      href: exportsUrl(projectId, exp.id),
      selected: exp.id === selected?.exp.id,
      count: list.length,
      live: list.some((x) => ACTIVE.has(x.status)),
    }));
    const training_url = `/projects/${projectId}/training`;
    const base = { project_id: projectId, training_url, evaluation_url: `/projects/${projectId}/evaluation`, experiments: list };
    if (!selected) return { ...base, board_url: exportsUrl(projectId), experiment: null, compare: [], detail: null, live: null, form: null };

    const { exp } = selected;
    const labels = runLabels(selected.runs);
    const chosen = q.export ? selected.list.find((x) => x.id === q.export) : selected.list.at(0);
    if (q.export && !chosen) throw notFound('export', q.export);
    const boardUrl = exportsUrl(projectId, exp.id, q.export);
    const running = selected.list.find((x) => ACTIVE.has(x.status));
    const checkpoints = await evaluation.checkpoints(projectId, exp.id);
    const last = selected.list.at(0);
    const lastChoice = last ? `${last.run_id}:${last.checkpoint}` : null;
    const options = checkpoints.map((c) => {
      const value = `${c.run_id}:${c.checkpoint}`;
      // Short enough for the select: "Run 2 · best (epoch 9, val acc 91.3%)".
      const metric = c.metric === undefined || c.value === undefined ? '' : `, ${checkpointMetricLabel(hasTask(exp.task) ? getTask(exp.task) : null, c.metric, c.value).replace('accuracy', 'acc')}`;
      return { value, label: `${labels.get(c.run_id) ?? c.run_id} · ${c.checkpoint} (epoch ${c.epoch}${metric})`, selected: value === lastChoice };
    });
    if (options.length > 0 && !options.some((o) => o.selected)) options[0].selected = true;
    const requested = last?.requested ?? EXPORT_VARIANTS;
    return {
      ...base,
      board_url: boardUrl,
      experiment: {
        id: exp.id,
        name: exp.name,
        model: exp.model.architecture ?? exp.model.backbone_id ?? '',
        input_size: exp.model.input_size,
        split: exp.split_name,
        training_href: `${training_url}?experiment=${exp.id}`,
        evaluation_href: `/projects/${projectId}/evaluation?experiment=${exp.id}`,
      },
      form: {
        start_url: `/projects/${projectId}/experiments/${exp.id}/exports`,
        options,
        variants: EXPORT_VARIANTS.map((name) => ({ name, note: VARIANT_NOTES[name], checked: requested.includes(name) })),
        benchmark: last?.benchmark ?? true,
      },
      live: running ? liveOf(projectId, exp.id, running, labels, boardUrl) : null,
      compare: selected.list.map((x) => compareRow(projectId, exp, x, labels, x.id === chosen?.id)),
      metric_title: metricOfExport(exp.task, selected.list.find((x) => x.reference_metric) ?? null).title,
      detail: chosen ? detailOf(projectId, exp.id, chosen, labels) : null,
    };
  }

  app.get('/projects/:project_id/exports', async (req, reply) => {
    const { project_id } = parseIds(ProjectIds, req.params);
    const q = parseForm(BoardQuery, req.query);
    reply.header('Vary', 'HX-Request, HX-Target');
    const data = await board(project_id, q);
    if (swapTarget(req) === 'board') return reply.view('fragments/export-board', data);
    const project = await projects.get(project_id);
    const layout = await projectLayout(app, project, { title: `Deploy · ${project.name}`, section: 'project', crumbs: [...projectCrumbs(project), { label: 'Deploy' }] });
    return reply.view('pages/exports', { ...layout, section: 'exports', project, ...data });
  });

  /** Fetches the board again at `url` (HX-Location keeps the URL bar in step). */
  const relocate = (reply: FastifyReply, url: string, status = 200) =>
    reply.code(status).header('HX-Location', JSON.stringify({ path: url, target: '#exports', swap: 'outerHTML' })).send();

  app.post('/projects/:project_id/experiments/:experiment_id/exports', async (req, reply) => {
    const { project_id, experiment_id } = parseIds(ExperimentIds, req.params);
    const form = parseForm(StartForm, req.body);
    const [run_id, checkpoint] = form.checkpoint.split(':') as [string, 'best' | 'last'];
    const variants = EXPORT_VARIANTS.filter((v) => (form as Record<string, unknown>)[`variant.${v}`] === 'on');
    if (variants.length === 0) throw new AppError('VALIDATION_ERROR', 'choose at least one variant to export');
    const started = await exports.start(project_id, experiment_id, { run_id, checkpoint, variants, benchmark: form.benchmark === 'on' });
    return relocate(reply, exportsUrl(project_id, experiment_id, started.export.id), 202);
  });

  /**
   * "Try it": public/js/exports.js posts the predict API's answer here and shows the HTML: the
   * export's task draws it with `views/tasks/<task>/predict-answer.eta` (the raw answer as JSON for
   * a task without one).
   */
  app.post('/projects/:project_id/experiments/:experiment_id/exports/:export_id/answer', async (req, reply) => {
    const { project_id, experiment_id, export_id } = parseIds(ExportIds, req.params);
    const body = parseForm(AnswerBody, req.body);
    const x = await exports.get(project_id, experiment_id, export_id);
    if (!x.manifest) throw new AppError('CONFLICT', `export '${export_id}' has not finished`);
    const task = StoredTaskNameSchema.parse(x.manifest.task);
    const partial = `tasks/${task}/predict-answer`;
    const own = existsSync(new URL(`${partial}.eta`, VIEWS_DIR));
    return reply.view(own ? partial : 'fragments/export-answer', {
      task,
      variant: body.variant,
      latency: (Math.round(body.latency_ms * 10) / 10).toFixed(1),
      answer: body.answer,
      labels: x.manifest.labels,
      postprocessing: x.manifest.postprocessing,
      bar: answerBar,
      value: formatValue,
    });
  });

  /**
   * The export's live stream for htmx's SSE extension: each progress or log event rendered as the
   * box's bar, step and percentage (the badge out of band once); then `end`, on which the board
   * comes again with the export.
   */
  app.get('/projects/:project_id/experiments/:experiment_id/exports/:export_id/live', async (req, reply) => {
    const { project_id, experiment_id, export_id } = parseIds(ExportIds, req.params);
    const x = await exports.get(project_id, experiment_id, export_id);
    if (!x.job_id) throw notFound('running export', export_id);
    const job = await jobs.get(x.job_id);
    let percent = 0;
    let step = 'Starting';
    let oob = true;
    return streamRenderedJobEvents(req, reply, {
      job,
      events: jobs.events,
      render: async (e) => {
        const d = (e.data ?? {}) as Record<string, unknown>;
        if (e.type === 'progress' && typeof d.progress === 'number' && Number.isFinite(d.progress)) percent = Math.round(Math.min(1, Math.max(0, d.progress)) * 1000) / 10;
        else if (e.type === 'log' && typeof d.message === 'string' && d.message) step = d.message.charAt(0).toUpperCase() + d.message.slice(1);
        else return [];
        const html = await app.view('fragments/export-progress', { l: { percent, step }, oob });
        oob = false;
        return [{ event: e.type, html }];
      },
    });
  });

  app.delete('/projects/:project_id/experiments/:experiment_id/exports/:export_id', async (req, reply) => {
    const { project_id, experiment_id, export_id } = parseIds(ExportIds, req.params);
    await exports.remove(project_id, experiment_id, export_id);
    return relocate(reply, exportsUrl(project_id, experiment_id));
  });
}

/** The manifest's input transform in one line a person can check against their own code. */
function preprocessingText(p: NonNullable<ExportView['manifest']>['preprocessing']): string {
  const r = p.resize;
  const scale = Math.abs(p.scale - 1 / 255) < 1e-12 ? '1/255' : String(p.scale);
  const triple = (t: readonly number[]) => `[${t.map((v) => Number(v.toFixed(4))).join(', ')}]`;
  return `resize to ${r.width}×${r.height} (${r.mode}, ${r.interpolation}${r.antialias ? ', antialiased' : ''}) · ${p.color} ${p.layout} ${p.dtype} · ×${scale} · mean ${triple(p.mean)} · std ${triple(p.std)}`;
}
