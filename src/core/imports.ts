import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Settings } from '../config.ts';
import { AppError } from '../kernel/errors.ts';
import type { Workspace } from '../storage/workspace.ts';
import type { DatasetSummary, ImportReport, Task } from '../schemas/index.ts';
import { applyImportReport } from '../storage/import-sink.ts';
import { checkUpload } from '../storage/uploads.ts';
import { removeUnrecordedImages } from '../storage/cleanup.ts';
import { DEFAULT_IMPORT_LIMITS, type ImportLimits, type ImportProgress, type ImportSource } from '../datasets/types.ts';
import { realDirectory, realFile } from '../datasets/sources/fsutil.ts';
import { readCsvFirstRow, resolveCsvColumns } from '../datasets/sources/csv.ts';
import { checkSourceFitsTask } from '../datasets/task-fit.ts';
import { labelShape } from '../datasets/types.ts';
import { getTask, hasTask } from '../tasks/index.ts';
import type { JobsService } from '../jobs/service.ts';
import { submitWorkerJob } from '../jobs/submit.ts';
import { importingDatasets, quarantineOrphanFolders } from '../storage/cleanup.ts';
import type { JobView } from '../jobs/registry.ts';
import type { ImportWorkerMessage, ImportWorkerPayload, ImportWorkerResult } from '../workers/import.ts';
import type { DatasetsService } from './datasets.ts';

export interface StartImport {
  name: string;
  task: Task;
  source: ImportSource;
}

export interface ImportStarted {
  dataset: DatasetSummary;
  job: JobView;
}

export interface ImportsService {
  /** Checks the source, creates the dataset (status `importing`) and queues the import job. */
  start(projectId: string, req: StartImport): Promise<ImportStarted>;
  /** Deletes a dataset, cancelling its import first if one is still running. */
  removeDataset(projectId: string, datasetId: string): Promise<void>;
  /**
   * At start-up, before any import starts: datasets whose import job was interrupted by a restart
   * are marked failed, then image/thumbnail files that no dataset.json records are removed.
   */
  settleInterrupted(interrupted: JobView[]): Promise<void>;
}

export interface ImportsDeps {
  settings: Settings;
  store: Workspace;
  datasets: DatasetsService;
  jobs: JobsService;
  /** The project's gate (src/core/projects.ts): a dataset is created alone among the project's deletions. */
  gate?: <T>(projectId: string, fn: () => Promise<T>) => Promise<T>;
}

export function importLimits(settings: Settings): ImportLimits {
  return {
    ...DEFAULT_IMPORT_LIMITS,
    maxZipEntries: settings.maxZipEntries,
    maxUncompressedBytes: settings.maxUncompressedBytes,
    maxFileBytes: Math.min(DEFAULT_IMPORT_LIMITS.maxFileBytes, settings.maxUncompressedBytes),
  };
}

export function createImportsService({ settings, store, datasets, jobs, gate = (_p, fn) => fn() }: ImportsDeps): ImportsService {
  /** `${projectId}/${datasetId}` → id of its running import job. */
  const running = new Map<string, string>();
  const key = (p: string, d: string) => `${p}/${d}`;

  async function cancelIfRunning(projectId: string, datasetId: string): Promise<void> {
    const jobId = running.get(key(projectId, datasetId));
    if (!jobId) return;
    await jobs.cancel(jobId).catch(() => undefined);
    await jobs.wait(jobId);
  }

  /** A zip source is always the upload's temp file (see datasets/types.ts); the import owns it. */
  async function dropUpload(source: ImportSource): Promise<void> {
    if (source.kind === 'zip') await store.removeTemp(source.path);
  }

  return {
    start: (projectId, req) => gate(projectId, () => start(projectId, req)),

    async removeDataset(projectId, datasetId) {
      await cancelIfRunning(projectId, datasetId);
      await datasets.remove(projectId, datasetId);
    },

    async settleInterrupted(interrupted) {
      await settle(interrupted);
    },
  };

  async function start(projectId: string, req: StartImport): Promise<ImportStarted> {
    try {
      // Which kinds feed a task is the task's to say; a stored-only task (detection) takes any.
      checkSourceFitsTask(req.task, req.source, hasTask(req.task) ? getTask(req.task).sources : null);
      await checkSource(store, req.source, req.task);
    } catch (e) {
      await dropUpload(req.source);
      throw e;
    }
    let dataset: DatasetSummary;
    try {
      dataset = await datasets.create(projectId, {
        name: req.name,
        task: req.task,
        ...(req.source.kind === 'csv' && req.source.target_columns !== undefined && labelShape(req.task) === 'targets'
          ? { target_names: req.source.target_columns }
          : {}),
      });
    } catch (e) {
      await dropUpload(req.source);
      throw e;
    }
    const payload: ImportWorkerPayload = {
      workspace: store.root,
      project_id: projectId,
      dataset_id: dataset.id,
      task: req.task,
      source: req.source,
      limits: importLimits(settings),
    };
    const job = await submitWorkerJob<ImportWorkerMessage, ImportReport>(jobs, {
      kind: 'import',
      project_id: projectId,
      dataset_id: dataset.id,
      work: async (o) => {
        const out = await jobs.pool.run<ImportWorkerResult>('import', payload, { signal: o.signal, onMessage: (msg) => o.onMessage(msg as ImportWorkerMessage) });
        return out.ok ? out.report : out;
      },
      onMessage: (m, handle) => {
        if (m.type === 'progress') handle.progress(fraction(m.progress), { ...m.progress });
        else if (m.type === 'log') handle.log(m.message);
      },
      onSettled: async (outcome) => {
        running.delete(key(projectId, dataset.id));
        await dropUpload(req.source);
        if (outcome.status === 'succeeded') {
          await finishDataset(store, projectId, dataset.id, outcome.result);
        } else {
          // A dataset deleted while importing has nothing left to mark.
          await datasets.markFailed(projectId, dataset.id, outcome.error).catch((e: unknown) => {
            if (!(e instanceof AppError && e.code === 'NOT_FOUND')) throw e;
          });
        }
      },
    });
    // Registered before any await: a delete that follows at once still finds it.
    running.set(key(projectId, dataset.id), job.id);
    return { dataset, job };
  }

  async function settle(interrupted: JobView[]): Promise<void> {
    const settled: { project_id: string; dataset_id: string }[] = [];
    for (const job of interrupted) {
      if (job.kind !== 'import' || !job.project_id || !job.dataset_id) continue;
      const error = job.error ?? { code: 'INTERRUPTED', message: 'the studio stopped during the import' };
      settled.push({ project_id: job.project_id, dataset_id: job.dataset_id });
      await datasets.markFailed(job.project_id, job.dataset_id, error).catch(() => undefined);
    }
    // No job runs yet (the workspace is locked, this process has started none): a dataset still
    // `importing` is one whose import died before its job was recorded. It fails, resumable by a
    // new import, instead of staying `importing` for ever.
    for (const d of await importingDatasets(store)) {
      settled.push(d);
      await datasets
        .markFailed(d.project_id, d.dataset_id, { code: 'INTERRUPTED', message: 'the studio stopped before this import was recorded; import again' })
        .catch(() => undefined);
    }
    await quarantineOrphanFolders(store);
    // No import runs yet, and every interrupted one is settled: files a killed import wrote
    // before their records were committed can go now (storage/cleanup.ts). Only those datasets:
    // start-up does not read every dataset.
    await removeUnrecordedImages(store, undefined, settled);
  }
}

/** The worker flushed every image; the report, classes and `ready` land in one locked write. */
async function finishDataset(store: Workspace, projectId: string, datasetId: string, report: ImportReport): Promise<void> {
  await store.datasets.transact(projectId, datasetId, (tx) => applyImportReport(tx.header, report));
}


function fraction(p: ImportProgress): number {
  return p.total > 0 ? p.done / p.total : 0;
}

/**
 * Source paths are the user's: they must exist before a dataset is created for them, and a CSV's
 * named columns must be in its header (so a typo is a 400 now, not a failed job later).
 */
async function checkSource(store: Workspace, source: ImportSource, task: string): Promise<void> {
  switch (source.kind) {
    case 'folder':
      await realDirectory(source.path, 'source folder');
      return;
    case 'zip':
      // The upload's temp file: a workspace path, so storage checks it.
      await checkUpload(store, source.path);
      return;
    case 'csv': {
      await realFile(source.path, 'CSV file');
      await realDirectory(source.images_root, 'images root');
      const first = await readCsvFirstRow(source.path);
      if (first.length > 0) resolveCsvColumns(first, source, labelShape(task));
      return;
    }
    case 'coco':
      await realFile(source.annotations, 'COCO annotations file');
      await realDirectory(source.images_root, 'images root');
      return;
    case 'yolo':
      try {
        await fs.stat(path.resolve(source.path));
      } catch {
        throw new AppError('VALIDATION_ERROR', `YOLO dataset does not exist: ${source.path}`);
      }
  }
}
