import path from 'node:path';
import { ExperimentDoc, ExperimentIdSchema, type ExperimentFile } from '../schemas/experiment.ts';
import { notFound } from '../kernel/errors.ts';
import type { Workspace } from './workspace.ts';

/**
 * Experiments on disk: `projects/<pid>/experiments/<exp-id>/experiment.json`, runs below it
 * (src/storage/runs.ts). Ids are checked against their pattern before any path join.
 */

export function experimentsDir(store: Workspace, projectId: string): string {
  return path.join(store.projectDir(projectId), 'experiments');
}

export function experimentDir(store: Workspace, projectId: string, experimentId: string): string {
  if (!ExperimentIdSchema.safeParse(experimentId).success) throw notFound('experiment', experimentId);
  return path.join(experimentsDir(store, projectId), experimentId);
}

export function experimentFile(store: Workspace, projectId: string, experimentId: string): string {
  return path.join(experimentDir(store, projectId, experimentId), 'experiment.json');
}

export async function readExperiment(store: Workspace, projectId: string, experimentId: string): Promise<ExperimentFile> {
  return store.get(ExperimentDoc, experimentFile(store, projectId, experimentId), 'experiment', experimentId);
}

export async function writeExperiment(store: Workspace, exp: ExperimentFile): Promise<ExperimentFile> {
  return store.write(ExperimentDoc, experimentFile(store, exp.project_id, exp.id), exp);
}

export async function modifyExperiment(
  store: Workspace,
  projectId: string,
  experimentId: string,
  fn: (exp: ExperimentFile) => ExperimentFile | Promise<ExperimentFile>,
): Promise<ExperimentFile> {
  return store.modify(ExperimentDoc, experimentFile(store, projectId, experimentId), 'experiment', experimentId, fn);
}

/** Ids of the project's experiment folders (folders that are not experiment ids are ignored). */
export async function listExperimentIds(store: Workspace, projectId: string): Promise<string[]> {
  return (await store.listDirs(experimentsDir(store, projectId))).filter((d) => ExperimentIdSchema.safeParse(d).success);
}

export async function removeExperiment(store: Workspace, projectId: string, experimentId: string): Promise<void> {
  await store.removeTree(experimentDir(store, projectId, experimentId));
}
