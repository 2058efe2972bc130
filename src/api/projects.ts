import type { FastifyInstance } from 'fastify';
import { ok } from '../http/envelope.ts';
import { parse, parseParams } from './parse.ts';
import { ProjectCreateSchema, ProjectUpdateSchema } from '../schemas/index.ts';
import { ProjectParams } from './schemas.ts';
import { deleteProject } from '../core/projects.ts';

/** /api/projects — create, list, read, rename/describe, delete. */
export default async function projectsRoutes(app: FastifyInstance): Promise<void> {
  const { projects } = app.studio;

  app.post('/projects', async (req, reply) => {
    const body = parse(ProjectCreateSchema, req.body, 'body');
    reply.code(201);
    return ok(await projects.create(body));
  });

  app.get('/projects', async () => ok(await projects.list()));

  app.get('/projects/:project_id', async (req) => {
    const { project_id } = parseParams(ProjectParams, req.params);
    return ok(await projects.get(project_id));
  });

  app.patch('/projects/:project_id', async (req) => {
    const { project_id } = parseParams(ProjectParams, req.params);
    const body = parse(ProjectUpdateSchema, req.body, 'body');
    return ok(await projects.update(project_id, body));
  });

  app.delete('/projects/:project_id', async (req) => {
    const { project_id } = parseParams(ProjectParams, req.params);
    await deleteProject(app.studio, project_id);
    return ok({ id: project_id, deleted: true });
  });
}
