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

/** One message of a rendered stream: an event name and its HTML. */
export interface RenderedMessage {
  event: string;
  html: string;
}

/**
 * A job's events rendered by the server for htmx's SSE extension (`hx-ext="sse"`): each event
 * becomes the fragments `render` makes of it (swapped by `sse-swap="<event>"` elements), with the
 * event's id so a reconnecting EventSource resumes after it. After `done` or `error` it sends
 * `end` and closes; the widget closes its source on `end` (`sse-close`) and fetches its final
 * state (`hx-trigger="sse:end"`). Unlike the JSON stream it never answers 204 (the extension would
 * keep reconnecting): a finished job's stream is its remaining events, then `end`.
 */
export function streamRenderedJobEvents(
  req: FastifyRequest,
  reply: FastifyReply,
  opts: { job: JobView; events: JobEvents; lastEventId: number; render: (e: JobEvent) => Promise<RenderedMessage[]> },
): FastifyReply | undefined {
  const { job, events, lastEventId, render } = opts;
  const hasLog = events.has(job.id);
  const finished = hasLog ? events.isFinished(job.id) : FINISHED.has(job.status);
  const replay = !hasLog && finished ? replayFromRecord(job).filter((e) => e.id > lastEventId) : null;

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
  const write = (id: number | null, m: RenderedMessage): void => {
    if (ended) return;
    // SSE data is line-based: every line of the fragment gets its own `data:` field.
    const data = m.html.split(/\r?\n/).map((l) => `data: ${l}`).join('\n');
    res.write(`${id === null ? '' : `id: ${id}\n`}event: ${m.event}\n${data}\n\n`);
  };
  // Renders are asynchronous (templates): a chain keeps the events in their order.
  let chain = Promise.resolve();
  const send = (e: JobEvent): void => {
    chain = chain.then(async () => {
      if (ended) return;
      for (const m of await render(e)) write(e.id, m);
      if (e.type === 'done' || e.type === 'error') {
        write(null, { event: 'end', html: '' });
        end();
      }
    }).catch(() => end());
  };

  if (replay !== null || (finished && events.since(job.id, lastEventId).length === 0)) {
    (replay ?? []).forEach(send);
    chain = chain.then(() => {
      write(null, { event: 'end', html: '' });
      end();
    });
    return undefined;
  }
  const backlog = events.since(job.id, lastEventId);
  unsubscribe = events.subscribe(job.id, send);
  backlog.forEach(send);
  heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
  req.raw.on('close', end);
  return undefined;
}
