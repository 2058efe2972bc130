import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createWeightsService } from '../../../src/core/weights.ts';
import { createJobRegistry } from '../../../src/jobs/registry.ts';
import { createJobsService } from '../../../src/jobs/service.ts';
import { createModel } from '../../../src/models/index.ts';
import { readWeightsFile } from '../../../src/models/weights/index.ts';
import { openWorkspace } from '../../../src/storage/workspace.ts';
import { startFromWeights } from '../../../src/workers/pretrained.ts';
import { fixtureBytes, WEIGHTS_FIXTURES } from './fixtures.ts';

/** A run's model built for 3 classes starts from stored ImageNet weights: all but the head load. */
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'weights-run-'));
afterAll(async () => fs.rm(dir, { recursive: true, force: true }));

it('startFromWeights loads the backbone, keeps a fresh head of the run\'s size, and refuses weights of another model', async () => {
  const store = await openWorkspace(dir);
  const jobs = createJobsService(createJobRegistry(store));
  const weights = createWeightsService({ settings: { weightsBaseUrl: 'http://127.0.0.1:9/', weightsTimeoutMs: 1000 }, store, jobs });
  try {
    const started = await weights.loadPath('mobilenet_v3_small', path.join(WEIGHTS_FIXTURES, 'mobilenet_v3_small.pth'));
    expect((await jobs.wait(started.job.id)).status).toBe('succeeded');
    const spec = createModel('mobilenet_v3_small', { numClasses: 3, inputSize: 64 });
    const headBefore = spec.model.graph.initializers.get('classifier.3.weight');
    const line = await startFromWeights(store, spec, 'mobilenet_v3_small', started.weights.id);
    expect(line).toMatch(/208 tensors loaded; 2 keep their fresh initialisation \(classifier\.3\.weight, classifier\.3\.bias\)/);
    expect(spec.model.graph.initializers.get('classifier.3.weight')).toBe(headBefore);
    const file = readWeightsFile(fixtureBytes('mobilenet_v3_small.pth'));
    expect([...spec.model.graph.initializers.get('features.0.0.weight')!.data as Float32Array]).toEqual([...file.tensors.get('features.0.0.weight')!.data]);
    await expect(startFromWeights(store, createModel('resnet18', { numClasses: 3 }), 'resnet18', started.weights.id)).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
  } finally {
    await jobs.close();
    await weights.close();
  }
});
