import type { FastifyInstance } from 'fastify';
import { ensureExampleProject } from '../core/example.ts';
import { deleteProject } from '../core/projects.ts';
import type { Project } from '../schemas/project.ts';
import { ProjectForm, ProjectIds, parseForm, parseIds } from './forms.ts';
import { initial, timeAgo } from './format.ts';
import { layoutData } from './layout.ts';

/** The projects list: create, rename inline, delete, and the example project for a fresh studio. */
export interface ProjectCard extends Project {
  initial: string;
  dataset_count: number;
  created_label: string;
}

export default async function projectPages(app: FastifyInstance): Promise<void> {
  const { projects, datasets, imports } = app.studio;

  const card = async (p: Project): Promise<ProjectCard> => ({
    ...p,
    initial: initial(p.name),
    dataset_count: (await datasets.list(p.id)).length,
    created_label: timeAgo(p.created_at),
  });
  const cards = async () => Promise.all((await projects.list()).map(card));

  const listPage = async () => ({
    ...layoutData(app, { title: 'Projects', section: 'projects', crumbs: [{ label: 'Projects' }] }),
    projects: await cards(),
  });

  app.get('/', async (_req, reply) => reply.view('pages/projects', await listPage()));
  app.get('/projects', async (_req, reply) => reply.view('pages/projects', await listPage()));

  app.post('/projects', async (req, reply) => {
    const body = parseForm(ProjectForm, req.body);
    const created = await projects.create({ name: body.name, description: body.description });
    // A new project is where the person goes next: htmx follows HX-Redirect to it (the list, as
    // the body, is what a client that does not follow it swaps in).
    reply.header('HX-Redirect', `/projects/${created.id}`);
    return reply.view('fragments/project-list', { projects: await cards() });
  });

  app.post('/projects/example', async (_req, reply) => {
    // The start-up offer happens once per workspace; this button is the user asking, so it always makes one.
    await ensureExampleProject(app.studio.store, { force: true });
    return reply.view('fragments/project-list', { projects: await cards() });
  });

  app.get('/projects/:project_id/edit', async (req, reply) => {
    const { project_id } = parseIds(ProjectIds, req.params);
    return reply.view('fragments/project-edit', { p: await projects.get(project_id) });
  });

  app.get('/projects/:project_id/card', async (req, reply) => {
    const { project_id } = parseIds(ProjectIds, req.params);
    return reply.view('fragments/project-card', { p: await card(await projects.get(project_id)) });
  });

  app.patch('/projects/:project_id', async (req, reply) => {
    const { project_id } = parseIds(ProjectIds, req.params);
    const body = parseForm(ProjectForm, req.body);
    const p = await projects.update(project_id, { name: body.name, description: body.description });
    return reply.view('fragments/project-card', { p: await card(p) });
  });

  app.delete('/projects/:project_id', async (req, reply) => {
    const { project_id } = parseIds(ProjectIds, req.params);
    await deleteProject(app.studio, project_id);
    return reply.view('fragments/project-list', { projects: await cards() });
  });
}
