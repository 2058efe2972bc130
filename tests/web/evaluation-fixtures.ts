import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import type { Settings } from '../../src/config.ts';
import { createEvaluationService, type EvaluationPool } from '../../src/core/evaluation.ts';
import { ensureExampleProject } from '../../src/core/example.ts';
import { createServices } from '../../src/core/services.ts';
import { createDedicatedPool } from '../../src/jobs/pool.ts';
import type { EvaluateWorkerMessage } from '../../src/workers/evaluate.ts';

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

/**
 * A studio whose evaluation thread can be held: after `hold()`, the next evaluation reports
 * 3 of 10 images done and waits (for `release()`, or a reset) before it really runs, so a test
 * can look at the page in between; `report()` sends it another progress message meanwhile.
 */
export interface HeldEvaluationStudio {
  app: FastifyInstance;
  hold(): void;
  release(): void;
  report(done: number, total: number): void;
  close(): Promise<void>;
}

export async function heldEvaluationStudio(settings: Settings): Promise<HeldEvaluationStudio> {
  const services = await createServices(settings);
  const real = createDedicatedPool('evaluate');
  let gate: Promise<void> = Promise.resolve();
  let release: () => void = () => {};
  let post: ((m: EvaluateWorkerMessage) => void) | null = null;
  const pool: EvaluationPool = {
    async run(payload, opts) {
      const held = gate;
      post = opts.onMessage;
      opts.onMessage({ type: 'progress', done: 3, total: 10 });
      // A reset (abort) lets it go too, so one failed test does not hold the next.
      await Promise.race([held, new Promise((resolve) => opts.signal.addEventListener('abort', resolve, { once: true }))]);
      post = null;
      return real.run(payload, opts);
    },
    destroy: () => real.destroy(),
  };
  const evaluation = createEvaluationService({ store: services.store, jobs: services.jobs, pool });
  const app = await buildApp(settings, { services: { ...services, evaluation } });
  await app.ready();
  return {
    app,
    hold: () => void (gate = new Promise<void>((resolve) => (release = resolve))),
    release: () => release(),
    report(done, total) {
      if (!post) throw new Error('no evaluation is held');
      post({ type: 'progress', done, total });
    },
    async close() {
      release();
      await app.close();
      // The jobs first (services.close), then the evaluation that records their outcomes.
      await services.close();
      await evaluation.close();
    },
  };
}
