import { createModel, importOnnxBytes, replaceHead, type HeadBuilder, type ModelSpec } from '../models/index.ts';
import type { TensorData } from '../onnx/ir.ts';
import type { ResolvedModelChoice, RunConfigFile } from '../schemas/experiment.ts';
import type { CheckpointContent } from '../models/checkpoint.ts';

/**
 * The one place a run's model is built: training builds it from the experiment's choice, evaluation
 * and export rebuild it from the run's config.json. The same catalog entry or imported backbone,
 * class count and seed give the same graph and initializer names, so a checkpoint's parameters fit.
 */

/** An imported backbone's ONNX bytes by id (src/storage/models.ts in a worker). */
export type BackboneReader = (backboneId: string) => Promise<Uint8Array>;

export interface BuildOptions {
  numClasses: number;
  seed: number;
  /** The backbone's display name (an imported model), or the architecture's name. */
  name: string;
  /** The task's own head in place of the linear one (TaskDefinition.head). */
  head?: HeadBuilder;
}

export async function buildModel(model: Pick<ResolvedModelChoice, 'backbone_id' | 'architecture' | 'input_size'>, o: BuildOptions, readBackbone: BackboneReader): Promise<ModelSpec> {
  const spec =
    model.backbone_id !== undefined
      ? importOnnxBytes(await readBackbone(model.backbone_id), { numClasses: o.numClasses, seed: o.seed, name: o.name })
      : createModel(model.architecture ?? o.name, { numClasses: o.numClasses, inputSize: model.input_size, seed: o.seed });
  return o.head ? replaceHead(spec, o.head, o.numClasses, o.seed) : spec;
}

/** The run's model as training built it, from its config.json (with the task's head, if it has its own). */
export function modelFromConfig(cfg: RunConfigFile, readBackbone: BackboneReader, head?: HeadBuilder): Promise<ModelSpec> {
  const m = cfg.model;
  return buildModel(m, { numClasses: m.num_classes, seed: cfg.hyperparameters.seed, name: m.name, ...(head ? { head } : {}) }, readBackbone);
}

/** What inference feeds from a checkpoint: the trained parameters and batch-norm running statistics. */
export function inferenceParams(ckpt: CheckpointContent): Record<string, TensorData> {
  return { ...ckpt.params, ...ckpt.bnStats };
}
