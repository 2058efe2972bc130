import type { Settings } from '../config.ts';
import { openWorkspace, type Workspace } from '../storage/workspace.ts';
import { lockWorkspace } from '../storage/workspace-lock.ts';
import { createProjectsService } from './projects.ts';
import { createDatasetsService, type DatasetsService } from './datasets.ts';
import { createImportsService, type ImportsService } from './imports.ts';
import { createJobsService, type JobsService } from '../jobs/service.ts';
import { createJobRegistry } from '../jobs/registry.ts';
import { ensureExampleProject } from './example.ts';
import { createModelsService, type ModelsService } from './models.ts';
import { createExperimentsService, type ExperimentsService } from './experiments.ts';
import { createRunsService, type RunsService } from './runs.ts';
import { createEvaluationService, type EvaluationService } from './evaluation.ts';
import { createExportsService, type ExportsService } from './exports.ts';
import { createWeightsService, type WeightsService } from './weights.ts';

export type ProjectsService = ReturnType<typeof createProjectsService>;
export type { DatasetsService, ModelsService, ExperimentsService, RunsService };

/** Everything the routes (API and pages) use; decorated on Fastify as `app.studio`. */
export interface StudioServices {
  settings: Settings;
  store: Workspace;
  projects: ProjectsService;
  datasets: DatasetsService;
  imports: ImportsService;
  jobs: JobsService;
  /** The catalog and imported ONNX backbones. */
  models: ModelsService;
  /** Pretrained weights for catalog architectures: load (upload, path), download, list, delete. */
  weights: WeightsService;
  experiments: ExperimentsService;
  /** Training runs: one trains at a time, the rest queue (`runs.queue()`). */
  runs: RunsService;
  /** An experiment's evaluation: checkpoints, start (a job), metrics, per-image results, reset. */
  evaluation: EvaluationService;
  /** An experiment's exports: start (a job), list, get, files and zip, predict, remove. */
  exports: ExportsService;
  /** Stops the worker pool and drops SSE subscribers; called from the app's onClose. */
  close(): Promise<void>;
}

/**
 * Locks the workspace (one studio per folder: src/storage/workspace-lock.ts), opens it (removing orphan temp files a crash left behind), makes the example project
 * on a first start (when enabled), settles jobs the last process left `queued`/`running` as
 * `interrupted`, and wires the services together.
 */
export async function createServices(settings: Settings): Promise<StudioServices> {
  // Before any recovery: a second studio on this workspace must not settle the first one's live work.
  const lock = await lockWorkspace(settings.workspace);
  const store = await openWorkspace(settings.workspace);
  if (settings.exampleProject) await ensureExampleProject(store);
  const projects = createProjectsService(store);
  const datasets = createDatasetsService(store);
  const jobs = createJobsService(createJobRegistry(store));
  const interrupted = await jobs.settleInterrupted();
  const imports = createImportsService({ settings, store, datasets, jobs, gate: projects.gate });
  await imports.settleInterrupted(interrupted);
  const models = createModelsService(store);
  const weights = createWeightsService({ settings, store, jobs });
  await weights.settleInterrupted();
  const experiments = createExperimentsService({ store, datasets, models, weights });
  const runs = createRunsService({ store, jobs, experiments });
  // Before the server takes requests: runs the last process left queued/running agree with their jobs.
  await runs.settleInterrupted();
  const evaluation = createEvaluationService({ store, jobs });
  const exports = createExportsService({ store, jobs });
  return {
    settings,
    store,
    projects,
    datasets,
    imports,
    jobs,
    models,
    weights,
    experiments,
    runs,
    evaluation,
    exports,
    close: async () => {
      await runs.close();
      await jobs.close();
      // After the jobs: a running evaluation settles (as failed, interrupted) before its thread goes.
      await evaluation.close();
      await exports.close();
      await weights.close();
      await lock.release();
    },
  };
}
