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

  const stream = openStream(reply);
  const res = stream.res;
  const send = (e: JobEvent): void => {
    if (stream.ended) return;
    res.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`);
    if (e.type === 'done' || e.type === 'error') stream.end();
  };

  if (replay) {
    replay.forEach(send);
    stream.end();
    return undefined;
  }
  stream.follow(req, events, job.id, lastEventId, send);
  return undefined;
}

interface OpenStream {
  res: FastifyReply['raw'];
  readonly ended: boolean;
  end(): void;
  /** Sends the backlog after `lastEventId` and every later event, until the stream ends. */
  follow(req: FastifyRequest, events: JobEvents, jobId: string, lastEventId: number, send: (e: JobEvent) => void): void;
}

/** Takes the response over as an event stream: headers, the retry hint, heartbeats, one end. */
function openStream(reply: FastifyReply): OpenStream {
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
  return {
    res,
    get ended() {
      return ended;
    },
    end,
    follow(req, events, jobId, lastEventId, send) {
      // Backlog and subscription in one synchronous step: no event can slip between them.
      const backlog = events.since(jobId, lastEventId);
      unsubscribe = events.subscribe(jobId, send);
      backlog.forEach(send);
      if (ended) return;
      // Comments keep proxies and idle-socket timeouts from closing a quiet stream.
      heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
      req.raw.on('close', end);
    },
  };
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
  opts: { job: JobView; events: JobEvents; render: (e: JobEvent) => Promise<RenderedMessage[]> },
): FastifyReply | undefined {
  const { job, events, render } = opts;
  const lastEventId = lastEventIdOf(req);
  const hasLog = events.has(job.id);
  const finished = hasLog ? events.isFinished(job.id) : FINISHED.has(job.status);
  const replay = !hasLog && finished ? replayFromRecord(job).filter((e) => e.id > lastEventId) : null;

  const stream = openStream(reply);
  const res = stream.res;
  const write = (id: number | null, m: RenderedMessage): void => {
    if (stream.ended) return;
    // SSE data is line-based: every line of the fragment gets its own `data:` field.
    const data = m.html.split(/\r?\n/).map((l) => `data: ${l}`).join('\n');
    res.write(`${id === null ? '' : `id: ${id}\n`}event: ${m.event}\n${data}\n\n`);
  };
  // Renders are asynchronous (templates): a chain keeps the events in their order.
  let chain = Promise.resolve();
  const send = (e: JobEvent): void => {
    chain = chain
      .then(async () => {
        if (stream.ended) return;
        for (const m of await render(e)) write(e.id, m);
        if (e.type === 'done' || e.type === 'error') {
          write(null, { event: 'end', html: '' });
          stream.end();
        }
      })
      .catch(() => stream.end());
  };

  if (replay !== null || (finished && events.since(job.id, lastEventId).length === 0)) {
    (replay ?? []).forEach(send);
    chain = chain.then(() => {
      write(null, { event: 'end', html: '' });
      stream.end();
    });
    return undefined;
  }
  stream.follow(req, events, job.id, lastEventId, send);
  return undefined;
}

/**
 * Where a reconnecting stream resumes: the `Last-Event-ID` header an EventSource sends by itself,
 * else `?last_event_id=` (the event the page was rendered up to), else the beginning.
 */
export function lastEventIdOf(req: { headers: Record<string, string | string[] | undefined>; query: unknown }): number {
  const header = req.headers['last-event-id'];
  if (typeof header === 'string' && /^\d{1,12}$/.test(header.trim())) return Number(header.trim());
  const q = (req.query ?? {}) as Record<string, unknown>;
  return typeof q.last_event_id === 'string' && /^\d{1,12}$/.test(q.last_event_id) ? Number(q.last_event_id) : 0;
}

/** A finite number of an event's data by key, else null (event data is whatever the worker posted). */
export function eventNumber(data: unknown, key: string): number | null {
  const v = typeof data === 'object' && data !== null ? (data as Record<string, unknown>)[key] : undefined;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
