import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { mapError, type MappedError } from '../http/errors.ts';
import { layoutData } from './layout.ts';

/**
 * The pages' error handler (encapsulated: /api keeps its JSON envelope). An htmx request gets a
 * toast fragment, retargeted into the page's toast area so a failed action never replaces the
 * element it targeted; a full page load gets an error page. Both carry the real status code.
 */
const HEADINGS: Record<number, string> = {
  400: 'That request was not valid',
  401: 'Sign-in required',
  403: 'Not allowed',
  404: 'Not found',
  409: 'Conflict',
  413: 'Too large',
  415: 'Unsupported media',
};

export function isHtmx(req: FastifyRequest): boolean {
  return req.headers['hx-request'] === 'true';
}

export async function renderError(app: FastifyInstance, req: FastifyRequest, reply: FastifyReply, m: MappedError) {
  reply.code(m.status);
  const heading = HEADINGS[m.status] ?? (m.status >= 500 ? 'Something went wrong' : 'Request refused');
  if (isHtmx(req)) {
    reply.header('HX-Retarget', '#toasts').header('HX-Reswap', 'beforeend');
    return reply.view('fragments/error', { title: heading, message: m.message, code: m.code });
  }
  const layout = layoutData(app, { title: heading, section: 'error', crumbs: [{ label: 'Projects', href: '/' }, { label: heading }] });
  return reply.view('pages/error', { ...layout, status: m.status, heading, message: m.message, code: m.code });
}

export function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler(async (err, req, reply) => {
    const m = mapError(err);
    if (m.status >= 500) req.log.error(err);
    return renderError(app, req, reply, m);
  });
  // Outside /api (which has its own), an unknown URL is a page that does not exist.
  app.setNotFoundHandler(async (req, reply) =>
    renderError(app, req, reply, { status: 404, code: 'NOT_FOUND', message: `there is no page at ${req.url.split('?')[0].slice(0, 200)}` }),
  );
}
