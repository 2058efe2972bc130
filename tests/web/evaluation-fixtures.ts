import type { FastifyInstance } from 'fastify';
import { ensureExampleProject } from '../../src/core/example.ts';

/**
 * A project with a small trained experiment, made through the services: the example shapes
 * dataset (sharp-rendered, 70/15/15 stratified split), one class optionally renamed to a label
 * full of HTML, and a 2-epoch small CNN at 32 px. A few seconds on 2 cores.
 */
export interface TrainedExperiment {
  projectId: string;
  datasetId: string;
  experimentId: string;
  runId: string;
}

export async function trainedExperiment(app: FastifyInstance, opts: { name: string; renameClass?: { from: string; to: string }; perClass?: number; classes?: string[] }): Promise<TrainedExperiment> {
  const { store, datasets, experiments, runs } = app.studio;
  const project = await ensureExampleProject(store, { force: true, perClass: opts.perClass ?? 12, size: 32, classes: opts.classes });
  if (!project) throw new Error('example project not made');
  const ds = (await datasets.list(project.id))[0];
  if (opts.renameClass) {
    const { items } = await datasets.listImages(project.id, ds.id, { page: 1, page_size: 500, label: opts.renameClass.from });
    for (const img of items) await datasets.relabelImage(project.id, ds.id, img.id, { label: opts.renameClass.to });
  }
  const exp = await experiments.create(project.id, {
    name: opts.name,
    dataset_id: ds.id,
    split_name: 'default',
    model: { architecture: 'small_cnn', input_size: 32 },
    hyperparameters: { epochs: 2, batch_size: 8, seed: 1 },
  });
  const { run } = await runs.start(project.id, exp.id);
  const done = await runs.wait(project.id, exp.id, run.id);
  if (done.status !== 'succeeded') throw new Error(`training ${done.status}: ${JSON.stringify(done.error)}`);
  return { projectId: project.id, datasetId: ds.id, experimentId: exp.id, runId: run.id };
}
