import type { FastifyReply, FastifyRequest } from 'fastify';
import type { JobEvent, JobEvents } from '../jobs/events.ts';
import type { JobView } from '../jobs/registry.ts';
import { FINISHED } from '../jobs/service.ts';

const HEARTBEAT_MS = 15_000;

/**
 * Streams a job's events as Server-Sent Events: first those after `lastEventId` (a reconnecting
 * EventSource sends it as `Last-Event-ID`), then live ones, and closes after `done`/`error` so a
 * client (or a test) sees the end. A finished job with nothing left to send answers 204, which
 * tells an EventSource to stop reconnecting. A job that finished in an earlier process has no
 * event log; its record is replayed as one progress and one terminal event.
 */
export function streamJobEvents(
  req: FastifyRequest,
  reply: FastifyReply,
  opts: { job: JobView; events: JobEvents; lastEventId: number },
): FastifyReply | undefined {
  const { job, events, lastEventId } = opts;
  const hasLog = events.has(job.id);
  const finished = hasLog ? events.isFinished(job.id) : FINISHED.has(job.status);
  const replay = !hasLog && finished ? replayFromRecord(job).filter((e) => e.id > lastEventId) : null;
  if (finished && (replay ?? events.since(job.id, lastEventId)).length === 0) return reply.code(204).send();

  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Content-Type-Options': 'nosniff',
    'X-Accel-Buffering': 'no',
  });
  res.write('retry: 2000\n\n');

  let ended = false;
  let unsubscribe = (): void => {};
  let heartbeat: NodeJS.Timeout | undefined;
  const end = (): void => {
    if (ended) return;
    ended = true;
    unsubscribe();
    if (heartbeat) clearInterval(heartbeat);
    res.end();
  };
  const send = (e: JobEvent): void => {
    if (ended) return;
    res.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`);
    if (e.type === 'done' || e.type === 'error') end();
  };

  if (replay) {
    replay.forEach(send);
    end();
    return undefined;
  }
  // Backlog and subscription in one synchronous step: no event can slip between them.
  const backlog = events.since(job.id, lastEventId);
  unsubscribe = events.subscribe(job.id, send);
  backlog.forEach(send);
  if (ended) return undefined;
  // Comments keep proxies and idle-socket timeouts from closing a quiet stream.
  heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
  req.raw.on('close', end);
  return undefined;
}

function replayFromRecord(job: JobView): JobEvent[] {
  const progress: JobEvent = { id: 1, type: 'progress', data: { progress: job.progress, ...job.progress_detail } };
  if (job.status === 'succeeded') return [progress, { id: 2, type: 'done', data: { status: job.status, result: job.result } }];
  return [progress, { id: 2, type: 'error', data: { status: job.status, ...(job.error ?? { code: 'INTERNAL', message: job.status }) } }];
}
