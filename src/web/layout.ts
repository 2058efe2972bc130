import type { FastifyInstance } from 'fastify';
import type { Project } from '../schemas/project.ts';

/** What the layout (views/layouts/main.eta) needs besides the page's own data. */
export interface Crumb {
  label: string;
  href?: string;
}

export interface LayoutData {
  title: string;
  section: 'projects' | 'project' | 'dataset' | 'models' | 'training' | 'evaluation' | 'exports' | 'error';
  crumbs: Crumb[];
  workspace: string;
  nav: { project: Project; datasets: { id: string; name: string }[]; datasetId?: string } | null;
}

export function layoutData(app: FastifyInstance, page: Omit<LayoutData, 'workspace' | 'nav'>): LayoutData {
  return { ...page, workspace: app.studio.settings.workspace, nav: null };
}

/** The sidebar of a project's pages lists its datasets. */
export async function projectLayout(
  app: FastifyInstance,
  project: Project,
  page: Omit<LayoutData, 'workspace' | 'nav'>,
  datasetId?: string,
): Promise<LayoutData> {
  const datasets = (await app.studio.datasets.list(project.id)).map((d) => ({ id: d.id, name: d.name }));
  return { ...page, workspace: app.studio.settings.workspace, nav: { project, datasets, datasetId } };
}

export const projectCrumbs = (project: Project): Crumb[] => [
  { label: 'Projects', href: '/' },
  { label: project.name, href: `/projects/${project.id}` },
];
