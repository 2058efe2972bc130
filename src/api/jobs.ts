import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ok } from '../http/envelope.ts';
import { parse, parseParams } from './parse.ts';
import { JobParams } from './schemas.ts';
import { streamJobEvents } from '../http/sse.ts';

const EventsQuery = z.strictObject({ last_event_id: z.coerce.number().int().min(0).optional() });

/** /api/jobs/:job_id — poll, stream events (SSE, resumable), cancel. */
export default async function jobsRoutes(app: FastifyInstance): Promise<void> {
  const { jobs } = app.studio;

  app.get('/jobs/:job_id', async (req) => {
    const { job_id } = parseParams(JobParams, req.params);
    return ok(await jobs.get(job_id));
  });

  app.post('/jobs/:job_id/cancel', async (req) => {
    const { job_id } = parseParams(JobParams, req.params);
    return ok(await jobs.cancel(job_id));
  });

  app.get('/jobs/:job_id/events', async (req, reply) => {
    const { job_id } = parseParams(JobParams, req.params);
    const query = parse(EventsQuery, req.query, 'query');
    const header = req.headers['last-event-id'];
    const fromHeader = typeof header === 'string' && /^\d{1,12}$/.test(header.trim()) ? Number(header.trim()) : undefined;
    const job = await jobs.get(job_id);
    return streamJobEvents(req, reply, { job, events: jobs.events, lastEventId: fromHeader ?? query.last_event_id ?? 0 });
  });
}
