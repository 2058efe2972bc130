import type { z } from 'zod';
import { ProjectCreateSchema, ProjectDoc, ProjectUpdateSchema, type Project, type ProjectCreate, type ProjectFile, type ProjectUpdate } from '../schemas/project.ts';
import { newId } from '../storage/ids.ts';
import type { Workspace } from '../storage/workspace.ts';
import { notFound, validation } from '../kernel/errors.ts';
import type { JobsService } from '../jobs/service.ts';
import type { RunsService } from './runs.ts';

/** Validates a service input; routes validate too, but pages and scripts call services directly. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) {
    const msg = r.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
    throw validation(`invalid ${what}: ${msg}`, r.error.issues);
  }
  return r.data;
}

/** A project, or one experiment of it, whose folder has just been deleted. */
export interface DeletedScope {
  projectId: string;
  experimentId?: string;
}

/** Called once the folder is gone, to drop what the listener holds of it (loaded predict sessions). */
export type DeletionListener = (scope: DeletedScope) => Promise<void>;

/**
 * Listeners by workspace. What holds things loaded from a project's files (the exports service's
 * predict sessions) is built after the services that delete them, so it subscribes here, through
 * the workspace they share, instead of every deleting service being handed it.
 */
const listeners = new WeakMap<Workspace, Set<DeletionListener>>();

/** Subscribes to deletions in `store`; returns the unsubscribe. */
export function onDeleted(store: Workspace, fn: DeletionListener): () => void {
  let set = listeners.get(store);
  if (!set) listeners.set(store, (set = new Set()));
  set.add(fn);
  return () => void set.delete(fn);
}

/** Tells every listener of `store` that `scope` was deleted, and waits for them. */
export async function announceDeleted(store: Workspace, scope: DeletedScope): Promise<void> {
  await Promise.all([...(listeners.get(store) ?? [])].map((fn) => fn(scope)));
}

function toProject(f: ProjectFile): Project {
  const { schema_version: _v, ...p } = f;
  return p;
}

/** Projects: `projects/<id>/project.json`, one folder each; deleting a project deletes its folder. */
export function createProjectsService(store: Workspace) {
  async function get(projectId: string): Promise<Project> {
    return toProject(await store.get(ProjectDoc, store.projectFile(projectId), 'project', projectId));
  }

  return {
    async create(input: ProjectCreate): Promise<Project> {
      const body = parseInput(ProjectCreateSchema, input, 'project');
      const now = new Date().toISOString();
      const file: ProjectFile = { schema_version: 1, id: newId('proj'), name: body.name, description: body.description ?? '', created_at: now, updated_at: now };
      return toProject(await store.write(ProjectDoc, store.projectFile(file.id), file));
    },

    /** Oldest first. A folder with an unreadable project.json is left out rather than failing the list. */
    async list(): Promise<Project[]> {
      const out: Project[] = [];
      for (const id of await store.listDirs(store.projectsDir())) {
        let f: ProjectFile | null;
        try {
          f = await store.read(ProjectDoc, store.projectFile(id));
        } catch {
          continue;
        }
        if (f) out.push(toProject(f));
      }
      return out.sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
    },

    get,

    async exists(projectId: string): Promise<boolean> {
      try {
        return (await store.read(ProjectDoc, store.projectFile(projectId))) !== null;
      } catch {
        return false;
      }
    },

    async update(projectId: string, input: ProjectUpdate): Promise<Project> {
      const body = parseInput(ProjectUpdateSchema, input, 'project update');
      const f = await store.modify(ProjectDoc, store.projectFile(projectId), 'project', projectId, (cur) => ({
        ...cur,
        ...(body.name !== undefined ? { name: body.name } : {}),
        ...(body.description !== undefined ? { description: body.description } : {}),
        updated_at: new Date().toISOString(),
      }));
      return toProject(f);
    },

    /** Deletes the project with all its datasets and files. */
    /** Runs `fn` alone among this project's deletions and dataset creations (see `projectGate`). */
    gate: projectGate(store),

    async remove(projectId: string): Promise<void> {
      const dir = store.projectDir(projectId);
      if ((await store.read(ProjectDoc, store.projectFile(projectId))) === null) throw notFound('project', projectId);
      await store.removeTree(dir);
      await announceDeleted(store, { projectId });
    },
  };
}

export type ProjectsService = ReturnType<typeof createProjectsService>;

/** The services a project deletion goes through. */
export interface ProjectDeletion {
  projects: ProjectsService;
  jobs: Pick<JobsService, 'cancelWithin'>;
  runs: Pick<RunsService, 'cancelWithin'>;
}

/**
 * Deletes a project as the API and the pages do: NOT_FOUND before anything is touched, then every
 * job still writing into it (imports, training runs, evaluations, exports) is cancelled and settled
 * before its folder goes, then the folder (whose deletion releases the predict sessions of its
 * exports).
 */
export async function deleteProject({ projects, jobs, runs }: ProjectDeletion, projectId: string): Promise<void> {
  await projects.gate(projectId, async () => {
    await projects.get(projectId);
    await Promise.all([runs.cancelWithin({ projectId }), jobs.cancelWithin({ projectId })]);
    await projects.remove(projectId);
  });
}

/**
 * One project's changes of existence, one at a time in this process: deleting it, creating a
 * dataset in it (its dataset.json, then its import job), and creating an experiment in it (with
 * the run a form starts along: an idempotent create looks for its client token and creates
 * alone, so two requests with one token make one experiment). Without this, a delete racing 60
 * dataset creations left folders without project.json behind, with imports still running into them, and
 * answered 500s (a rename into a folder just removed). With it, a creation either finishes — its
 * job registered, so the delete cancels it — before the delete starts, or finds the project gone.
 */
const gates = new Map<string, Promise<unknown>>();

export function projectGate(store: Workspace) {
  return async <T>(projectId: string, fn: () => Promise<T>): Promise<T> => {
    const key = `${store.root}\u0000${projectId}`;
    const before = gates.get(key) ?? Promise.resolve();
    const run = before.then(fn, fn);
    // the chain outlives a failure of `fn`; the caller still sees it
    const tail = run.catch(() => undefined);
    gates.set(key, tail);
    try {
      return await run;
    } finally {
      if (gates.get(key) === tail) gates.delete(key);
    }
  };
}
