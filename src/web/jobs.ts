import type { FastifyInstance } from 'fastify';
import { isAppError, notFound } from '../kernel/errors.ts';
import { FINISHED } from '../jobs/service.ts';
import type { JobView } from '../jobs/registry.ts';
import { ImportReportSchema, type ImportReport } from '../schemas/dataset.ts';
import { eventNumber, streamRenderedJobEvents } from '../http/sse.ts';
import { JobIds, parseIds } from './forms.ts';

/**
 * The import job widget (views/fragments/job.eta). It renders in the project page when an import
 * starts and from its own GET route; while the job runs, the browser follows /api/jobs/:id/events
 * for the progress bar and fetches this route again for the final state with the import report.
 */
export interface JobWidget {
  id: string;
  status: string;
  live: boolean;
  title: string;
  widget_url: string;
  percent: number;
  done: number;
  total: number;
  imported: number;
  skipped: number;
  report: ImportReport | null;
  error: { code: string; message: string } | null;
  dataset_href: string | null;
}

export async function jobWidget(app: FastifyInstance, projectId: string, job: JobView): Promise<JobWidget> {
  const detail = job.progress_detail ?? {};
  let datasetName: string | null = null;
  let datasetExists = false;
  if (job.dataset_id) {
    try {
      datasetName = (await app.studio.datasets.get(projectId, job.dataset_id)).name;
      datasetExists = true;
    } catch (e) {
      // Deleted since: the widget still tells what happened, without a link.
      if (!(isAppError(e) && e.code === 'NOT_FOUND')) throw e;
    }
  }
  const report = job.status === 'succeeded' ? ImportReportSchema.safeParse(job.result) : null;
  return {
    id: job.id,
    status: job.status,
    live: !FINISHED.has(job.status),
    title: `${job.kind === 'import' ? 'Import' : job.kind} · ${datasetName ?? job.dataset_id ?? job.id}`,
    widget_url: `/projects/${projectId}/jobs/${job.id}`,
    percent: Math.round(job.progress * 100),
    done: detail.done ?? 0,
    total: detail.total ?? 0,
    imported: detail.imported ?? 0,
    skipped: detail.skipped ?? 0,
    report: report?.success ? report.data : null,
    error: job.error ?? null,
    dataset_href: datasetExists && job.dataset_id && job.status === 'succeeded' ? `/projects/${projectId}/datasets/${job.dataset_id}` : null,
  };
}

export default async function jobPages(app: FastifyInstance): Promise<void> {
  const { jobs } = app.studio;

  /** A job is shown (and cancelled) only under the project it belongs to. */
  async function jobOf(params: unknown): Promise<{ projectId: string; job: JobView }> {
    const { project_id, job_id } = parseIds(JobIds, params);
    const job = await jobs.get(job_id);
    if (job.project_id !== project_id) throw notFound('job', job_id);
    return { projectId: project_id, job };
  }

  app.get('/projects/:project_id/jobs/:job_id', async (req, reply) => {
    const { projectId, job } = await jobOf(req.params);
    const widget = await jobWidget(app, projectId, job);
    // Fetched again at the end of its stream: the page's lists that show its dataset follow.
    if (!widget.live) reply.header('HX-Trigger', 'job-finished');
    return reply.view('fragments/job', { job: widget });
  });

  /**
   * The widget's live stream for htmx's SSE extension (views/fragments/job.eta): each progress
   * event rendered as the widget's bar and counts, then `end`, on which the widget fetches its
   * final state.
   */
  app.get('/projects/:project_id/jobs/:job_id/live', async (req, reply) => {
    const { projectId, job } = await jobOf(req.params);
    const base = await jobWidget(app, projectId, job);
    let first = true;
    return streamRenderedJobEvents(req, reply, {
      job,
      events: jobs.events,
      render: async (e) => {
        if (e.type !== 'progress') return [];
        const n = (k: string, fallback: number) => eventNumber(e.data, k) ?? fallback;
        const total = n('total', base.total);
        const done = n('done', base.done);
        const progress = n('progress', total > 0 ? done / total : base.percent / 100);
        const widget = { ...base, total, done, imported: n('imported', base.imported), skipped: n('skipped', base.skipped), percent: Math.round(progress * 100) };
        const html = await app.view('fragments/job-progress', { job: widget, oob: first });
        first = false;
        return [{ event: 'progress', html }];
      },
    });
  });

  app.post('/projects/:project_id/jobs/:job_id/cancel', async (req, reply) => {
    const { projectId, job } = await jobOf(req.params);
    const cancelled = await jobs.cancel(job.id);
    reply.header('HX-Trigger', 'job-finished');
    return reply.view('fragments/job', { job: await jobWidget(app, projectId, cancelled) });
  });
}
