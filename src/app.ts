import Fastify, { type FastifyInstance } from 'fastify';
import type { Settings } from './config.ts';
import { createServices, type StudioServices } from './core/services.ts';
import { AppError } from './kernel/errors.ts';
import securityPlugin, { requestLogSerializer } from './http/security.ts';
import apiRoutes from './api/index.ts';
import webRoutes from './web/index.ts';
// Registers the built-in tasks before any request schema that names a task is used.
import './tasks/index.ts';

declare module 'fastify' {
  interface FastifyInstance {
    studio: StudioServices;
  }
}

export interface BuildOptions {
  logger?: boolean;
  /** Tests may pass services they built themselves (e.g. to share one workspace between apps). */
  services?: StudioServices;
}

/**
 * The whole studio as one Fastify instance: security checks for every request, the JSON API under
 * /api, and the pages plugin (src/web) at the root. Limits are explicit, not Fastify's defaults.
 */
export async function buildApp(settings: Settings, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ? { serializers: { req: requestLogSerializer } } : false,
    bodyLimit: settings.bodyLimitBytes,
    requestTimeout: settings.requestTimeoutMs,
    connectionTimeout: settings.requestTimeoutMs,
    // `__proto__`/`constructor.prototype` keys in JSON bodies are refused by the parser itself.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    routerOptions: { maxParamLength: 200 },
  });

  // Fastify's JSON parser refuses `__proto__` / `constructor.prototype` keys (onProtoPoisoning
  // above) as "not valid JSON"; the refusal names the key instead, everything else is its own.
  const json = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    json(req, String(body), (err, value) => {
      const key = err && typeof body === 'string' ? /"(__proto__|constructor)"\s*:/.exec(body)?.[1] : undefined;
      if (key) done(new AppError('VALIDATION_ERROR', `body: the key "${key === 'constructor' ? 'constructor.prototype' : key}" is not allowed`), undefined);
      else done(err, value);
    });
  });

  const services = opts.services ?? (await createServices(settings));
  app.decorate('studio', services);
  if (!opts.services) app.addHook('onClose', async () => services.close());

  await app.register(securityPlugin, { settings });
  await app.register(apiRoutes, { prefix: '/api' });
  await app.register(webRoutes);
  return app;
}
