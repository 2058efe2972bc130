import { AppError } from '../kernel/errors.ts';
import { modelMeta, type ModelSpec } from '../models/index.ts';
import { applyWeights, matchWeights, type LoadedTensor } from '../models/weights/index.ts';
import { readWeightsRecord, readWeightsTensors } from '../storage/weights.ts';
import type { Workspace } from '../storage/workspace.ts';
import { decodeCheckpoint } from '../models/checkpoint.ts';

/**
 * A run whose experiment names pretrained weights (`model.weights_id`) starts from them: the
 * stored tensors go into the freshly built catalog model by name; a head of another shape (the
 * usual 1000 ImageNet classes against the experiment's) keeps its fresh initialisation. Returns
 * the line the run's log shows.
 */
export async function startFromWeights(store: Workspace, spec: ModelSpec, architecture: string, weightsId: string): Promise<string> {
  const rec = await readWeightsRecord(store, weightsId).catch(() => null);
  if (!rec || rec.status !== 'ready') throw new AppError('VALIDATION_ERROR', `model.weights_id: the weights '${weightsId}' are ${rec ? rec.status : 'gone'}`);
  if (rec.model !== architecture) throw new AppError('VALIDATION_ERROR', `model.weights_id: the weights '${weightsId}' are for ${rec.model}, not ${architecture}`);
  const ckpt = decodeCheckpoint(await readWeightsTensors(store, weightsId));
  const tensors = new Map<string, LoadedTensor>();
  for (const [name, t] of Object.entries(ckpt.params)) if (t.data instanceof Float32Array) tensors.set(name, { dims: t.dims, data: t.data });
  const m = matchWeights(spec, modelMeta(architecture).family, tensors);
  const n = applyWeights(spec, m.values);
  const fresh = m.missing.length ? `; ${m.missing.length} keep their fresh initialisation (${m.missing.slice(0, 4).join(', ')}${m.missing.length > 4 ? ', …' : ''})` : '';
  return `starting from pretrained weights ${weightsId} (${rec.file_name ?? rec.format}, sha256 ${rec.sha256?.slice(0, 12) ?? '?'}…): ${n} tensors loaded${fresh}`;
}
