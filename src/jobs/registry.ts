import type { Workspace } from '../storage/workspace.ts';
import { newId } from '../storage/ids.ts';
import { notFound } from '../kernel/errors.ts';
import type { JobFile } from '../schemas/index.ts';

/** What the API returns for a job: its record without the version stamp. */
export type JobView = Omit<JobFile, 'schema_version'>;
export type JobPatch = Partial<Omit<JobView, 'id' | 'kind' | 'created_at'>>;

/** Durable job records, one JSON file each (`workspace/jobs/<job-id>.json`), via the workspace. */
export interface JobRegistry {
  create(init: { kind: string; project_id?: string; dataset_id?: string }): Promise<JobView>;
  get(id: string): Promise<JobView>;
  update(id: string, patch: JobPatch): Promise<JobView>;
  list(): Promise<JobView[]>;
}

const view = ({ schema_version: _v, ...rest }: JobFile): JobView => rest;

export function createJobRegistry(store: Workspace): JobRegistry {
  return {
    async create(init) {
      const now = new Date().toISOString();
      const record: JobFile = {
        schema_version: 1,
        id: newId('job'),
        kind: init.kind,
        status: 'queued',
        progress: 0,
        ...(init.project_id ? { project_id: init.project_id } : {}),
        ...(init.dataset_id ? { dataset_id: init.dataset_id } : {}),
        created_at: now,
        updated_at: now,
      };
      return view(await store.writeJob(record));
    },
    async get(id) {
      const job = await store.readJob(id);
      if (!job) throw notFound('job', id);
      return view(job);
    },
    async update(id, patch) {
      return view(await store.updateJob(id, (job) => ({ ...job, ...patch, updated_at: new Date().toISOString() })));
    },
    async list() {
      return (await store.listJobs()).map(view);
    },
  };
}
