import { fileURLToPath } from 'node:url';
import fastifyView from '@fastify/view';
import { Eta } from 'eta';
import type { FastifyInstance } from 'fastify';
import assetRoutes from './assets.ts';
import { registerErrorHandlers } from './errors.ts';
import { registerFormParser } from './forms.ts';
import projectPages from './projects.ts';
import datasetPages from './datasets.ts';
import imagePages from './images.ts';
import splitPages from './splits.ts';
import jobPages from './jobs.ts';
import modelPages from './models.ts';
import experimentPages from './experiments.ts';
import trainingPages from './training.ts';
import evaluationPages from './evaluation.ts';
import exportPages from './exports.ts';

const VIEWS = fileURLToPath(new URL('../../views/', import.meta.url));

/**
 * The pages plugin: server-rendered pages and HTMX fragments over the same core services as /api.
 * Encapsulated on purpose: its view engine, its urlencoded form parser and its HTML error handler
 * stay out of the /api context.
 */
export default async function webRoutes(app: FastifyInstance): Promise<void> {
  await app.register(fastifyView, {
    // autoEscape: every `<%= %>` is HTML-escaped (attributes included); `<%~ %>` is only used
    // for our own includes.
    engine: { eta: new Eta({ views: VIEWS, autoEscape: true }) },
    root: VIEWS,
    // Templates are compiled once and cached, except while developing them.
    production: process.env.NODE_ENV !== 'development',
  });
  registerFormParser(app);
  registerErrorHandlers(app);

  await app.register(assetRoutes);
  await app.register(projectPages);
  await app.register(datasetPages);
  await app.register(imagePages);
  await app.register(splitPages);
  await app.register(jobPages);
  await app.register(modelPages);
  await app.register(experimentPages);
  await app.register(trainingPages);
  await app.register(evaluationPages);
  await app.register(exportPages);
}
