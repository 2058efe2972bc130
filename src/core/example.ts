import type { Project } from '../schemas/project.ts';
import { runImport } from '../datasets/import.ts';
import { writeSyntheticFolder } from '../datasets/synthetic.ts';
import { createImportSink } from '../storage/import-sink.ts';
import type { Workspace } from '../storage/workspace.ts';
import { createDatasetsService } from './datasets.ts';
import { createProjectsService } from './projects.ts';

export interface ExampleOptions {
  classes?: string[];
  perClass?: number;
  /** Pixels per side. */
  size?: number;
  /** Make one even if the workspace was offered one already or has projects (the user asked for it). */
  force?: boolean;
}

/**
 * On the first start of an empty workspace, makes an example project so nobody faces an empty
 * page: a classification dataset of synthetic shapes (rendered on the spot, imported through the
 * ordinary folder import) with a stratified 70/15/15 split. Offered once: `studio.json` remembers,
 * so deleting the example does not bring it back. Returns the project, or null when none was made.
 */
export async function ensureExampleProject(store: Workspace, opts: ExampleOptions = {}): Promise<Project | null> {
  const projects = createProjectsService(store);
  const datasets = createDatasetsService(store);

  // Claim the offer atomically, so two starts at once cannot both make one.
  let claimed = false;
  await store.updateStudio((s) => {
    claimed = !s.example_offered;
    return { ...s, example_offered: true };
  });
  if (!opts.force) {
    if (!claimed) return null;
    if ((await projects.list()).length > 0) return null;
  }

  const project = await projects.create({
    name: 'Example: shapes',
    description: 'Synthetic circles, squares and triangles made at first start. Explore, split, delete freely.',
  });
  const scratch = await store.tempDir('example');
  try {
    const classes = opts.classes ?? ['circle', 'square', 'triangle'];
    await writeSyntheticFolder(scratch, { classes, perClass: opts.perClass ?? 20, size: opts.size ?? 96, format: 'png', seed: 7 });
    const ds = await datasets.create(project.id, { name: 'Shapes', task: 'classification' });
    const sink = createImportSink(store, project.id, ds.id);
    const report = await runImport({ kind: 'folder', path: scratch }, sink, { task: 'classification' });
    // Source paths are relative to the scratch folder, so the report names no temp path.
    await sink.finish(report);
    await datasets.createSplit(project.id, ds.id, { name: 'default', ratios: { train: 0.7, val: 0.15, test: 0.15 }, stratify: true, seed: 0 });
    return project;
  } catch (e) {
    await projects.remove(project.id).catch(() => undefined);
    await store.updateStudio((s) => ({ ...s, example_offered: false })).catch(() => undefined);
    throw e;
  } finally {
    await store.removeTemp(scratch);
  }
}
