import { createHash } from 'node:crypto';
import { createDatasetsService } from '../../src/core/datasets.ts';
import { createProjectsService } from '../../src/core/projects.ts';
import { createImportSink } from '../../src/storage/import-sink.ts';
import type { Workspace } from '../../src/storage/workspace.ts';

/**
 * A ready dataset with `counts[label]` images per label (and `unlabeled` without), put in through
 * the import sink. The bytes are stand-ins: services never decode them.
 */
export async function makeDataset(ws: Workspace, counts: Record<string, number>, unlabeled = 0) {
  const projects = createProjectsService(ws);
  const datasets = createDatasetsService(ws);
  const project = await projects.create({ name: 'p' });
  const ds = await datasets.create(project.id, { name: 'd', task: 'classification' });
  const sink = createImportSink(ws, project.id, ds.id, { flushEvery: 37 });
  let n = 0;
  const add = async (label: string | null) => {
    const bytes = Buffer.from(`image ${n++}`);
    await sink.addImage({
      hash: createHash('sha256').update(bytes).digest('hex'),
      ext: 'png',
      buffer: bytes,
      thumbnail: Buffer.from(`thumb ${n}`),
      width: 10 + n,
      height: 20,
      label,
      source_path: `${label ?? 'none'}/${n}.png`,
    });
  };
  for (const [label, k] of Object.entries(counts)) for (let i = 0; i < k; i++) await add(label);
  for (let i = 0; i < unlabeled; i++) await add(null);
  await sink.close();
  await datasets.finishImport(project.id, ds.id, { imported: n, skipped: [], duplicates: 0, classes: Object.keys(counts).sort(), elapsed_ms: 1 });
  return { projectId: project.id, datasetId: ds.id, projects, datasets };
}
