import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { RunIdSchema } from '../schemas/experiment.ts';
import { notFound } from '../kernel/errors.ts';
import { ok } from '../http/envelope.ts';
import { parse, parseParams } from './parse.ts';
import { ExperimentParams } from './experiments.ts';
import { streamJobEvents } from '../http/sse.ts';

const RunParams = ExperimentParams.extend({ run_id: RunIdSchema });
const EventsQuery = z.strictObject({ last_event_id: z.coerce.number().int().min(0).optional() });
/** Strict as every body: a setting belongs to the experiment (PATCH it), only the seed may differ per run. */
const StartBody = z.strictObject({ seed: z.number().int().min(0).max(2 ** 31 - 1).optional() });

/**
 * /api/projects/:project_id/experiments/:experiment_id/runs — start (202 with the job), list,
 * get (config, metrics, best, checkpoints), cancel, resume (202), and the current job's events
 * (SSE, resumable with Last-Event-ID). /api/runs/queue lists what trains now and what waits.
 */
export default async function runsRoutes(app: FastifyInstance): Promise<void> {
  const { runs, jobs } = app.studio;
  const base = '/projects/:project_id/experiments/:experiment_id/runs';

  app.get('/runs/queue', async () => ok(runs.queue()));

  app.post(base, async (req, reply) => {
    const { project_id, experiment_id } = parseParams(ExperimentParams, req.params);
    const body = parse(StartBody, req.body ?? {}, 'body');
    const started = await runs.start(project_id, experiment_id, body);
    reply.code(202);
    return ok(started);
  });

  app.get(base, async (req) => {
    const { project_id, experiment_id } = parseParams(ExperimentParams, req.params);
    return ok(await runs.list(project_id, experiment_id));
  });

  app.get(`${base}/:run_id`, async (req) => {
    const { project_id, experiment_id, run_id } = parseParams(RunParams, req.params);
    return ok(await runs.get(project_id, experiment_id, run_id));
  });

  app.post(`${base}/:run_id/cancel`, async (req) => {
    const { project_id, experiment_id, run_id } = parseParams(RunParams, req.params);
    return ok(await runs.cancel(project_id, experiment_id, run_id));
  });

  app.post(`${base}/:run_id/resume`, async (req, reply) => {
    const { project_id, experiment_id, run_id } = parseParams(RunParams, req.params);
    const started = await runs.resume(project_id, experiment_id, run_id);
    reply.code(202);
    return ok(started);
  });

  app.get(`${base}/:run_id/events`, async (req, reply) => {
    const { project_id, experiment_id, run_id } = parseParams(RunParams, req.params);
    const query = parse(EventsQuery, req.query, 'query');
    const header = req.headers['last-event-id'];
    const fromHeader = typeof header === 'string' && /^\d{1,12}$/.test(header.trim()) ? Number(header.trim()) : undefined;
    const jobId = await runs.jobId(project_id, experiment_id, run_id);
    if (jobId === null) throw notFound('job of run', run_id);
    const job = await jobs.get(jobId);
    return streamJobEvents(req, reply, { job, events: jobs.events, lastEventId: fromHeader ?? query.last_event_id ?? 0 });
  });
}
