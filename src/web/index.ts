import type { FastifyInstance } from 'fastify';

/** The pages plugin: page routes and HTMX fragments over the same core services as /api. */
export default async function webRoutes(_app: FastifyInstance): Promise<void> {}
