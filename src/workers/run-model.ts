import { AppError } from '../kernel/errors.ts';
import type { ModelSpec } from '../models/index.ts';
import type { TensorData } from '../onnx/ir.ts';
import type { RunConfigFile } from '../schemas/experiment.ts';
import { readModelBytes } from '../storage/models.ts';
import { readCheckpoint, readRunConfig, type CheckpointName, type RunRef } from '../storage/runs.ts';
import type { Workspace } from '../storage/workspace.ts';
import { decodeCheckpoint } from '../models/checkpoint.ts';
import { inferenceParams, modelFromConfig, type BackboneReader } from '../training/model-from-config.ts';
import { runTaskOf } from '../tasks/index.ts';

/** Reads an imported backbone from this workspace. */
export const backboneReader =
  (store: Workspace): BackboneReader =>
  (id) =>
    readModelBytes(store, id);

export interface RunModel {
  config: RunConfigFile;
  spec: ModelSpec;
  params: Record<string, TensorData>;
}

/** A finished (or stopped) run's model with a checkpoint's parameters: what evaluation and export start from. */
export async function loadRunModel(store: Workspace, r: RunRef, checkpoint: CheckpointName): Promise<RunModel> {
  const config = await readRunConfig(store, r);
  if (!config) throw new AppError('NOT_FOUND', `run '${r.runId}' has no config.json`);
  const bytes = await readCheckpoint(store, r, checkpoint);
  if (!bytes) throw new AppError('NOT_FOUND', `checkpoint '${checkpoint}' of run '${r.runId}' not found`);
  const ckpt = decodeCheckpoint(bytes);
  const head = runTaskOf(config).task.head;
  return { config, spec: await modelFromConfig(config, backboneReader(store), head), params: inferenceParams(ckpt) };
}
