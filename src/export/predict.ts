import { AppError, badInput } from '../kernel/errors.ts';
import { sniffImage } from '../datasets/image.ts';
import { ImageDecodeError } from '../training/data/decode.ts';
import { evalImage } from '../training/data/eval-transform.ts';
import { normalizeInto } from '../training/data/tensor.ts';
import { getTask } from '../tasks/index.ts';
import type { Manifest } from './manifest.ts';
import type { PredictCache } from './predict-cache.ts';

/**
 * Predict with an exported model: the images through the eval transform the model was validated
 * with (the manifest's size, mean and std), one batch through the cached session of the variant's
 * file, and the run's task's answer for each image (classification's top classes, multi-label's
 * labels above their thresholds, regression's values).
 */

export interface Prediction {
  label: string;
  score: number;
}

export interface PredictRequest {
  cache: PredictCache;
  /** The cache key of the export's variant. */
  key: string;
  /** The variant's model file, read when the session is not cached. */
  load: () => Promise<Uint8Array>;
  manifest: Manifest;
  /** For messages: `fp32`, `int8`, … */
  variant: string;
  images: readonly Buffer[];
  /** Classes per image, best first (classification). */
  topK: number;
}

export interface PredictOutput {
  /** The task's answer per image (TaskDefinition.predict), in input order. */
  answers: unknown[];
  /** Time of the model run alone (all images in one batch), milliseconds. */
  ms: number;
}

/** The output predict reads: the one the manifest's postprocessing names, else the first after `logits`. */
export function primaryOutput(m: Manifest): string {
  const pp = m.postprocessing as Record<string, unknown>;
  for (const key of ['scores_output', 'values_output']) if (typeof pp[key] === 'string') return pp[key];
  const first = m.outputs.find((o) => o.name !== 'logits');
  if (!first) throw new AppError('STORAGE_CORRUPT', 'the manifest names no output besides the logits');
  return first.name;
}

export async function predictImages(req: PredictRequest): Promise<PredictOutput> {
  const { manifest, images, variant } = req;
  const x = await preprocess(images, manifest);
  const n = images.length;
  const { width, height } = manifest.preprocessing.resize;
  const k = manifest.labels.length;
  const output = primaryOutput(manifest);
  // the manifest's task answers: a package of a task this studio no longer has is NOT_FOUND
  const task = getTask(manifest.task);
  const { rows, ms } = await req.cache.use(req.key, req.load, async (session) => {
    const t0 = performance.now();
    const out = await session.run({ input: { dtype: 'float32', dims: [n, 3, height, width], data: x } }, [output]);
    const ms = performance.now() - t0;
    const data = out[output].data;
    if (!(data instanceof Float32Array) || data.length !== n * k) {
      throw new AppError('STORAGE_CORRUPT', `the ${variant} model gave ${data.length} values for ${n} images × ${k} outputs`);
    }
    return { rows: data.slice(), ms };
  });
  const answers = Array.from({ length: n }, (_, i) =>
    task.predict(rows.subarray(i * k, (i + 1) * k), manifest.labels, manifest.postprocessing as Record<string, unknown>, { topK: req.topK }));
  return { answers, ms };
}

/**
 * The images as one input batch. The type comes from the bytes: a file that is not one of our
 * image formats is UNSUPPORTED_MEDIA, one that claims to be but does not decode is BAD_INPUT.
 */
async function preprocess(images: readonly Buffer[], m: Manifest): Promise<Float32Array> {
  const { width, height } = m.preprocessing.resize;
  if (width !== height) throw new AppError('STORAGE_CORRUPT', 'the eval transform makes square inputs; the manifest asks otherwise');
  if (Math.abs(m.preprocessing.scale - 1 / 255) > 1e-12) throw new AppError('STORAGE_CORRUPT', `unsupported preprocessing scale ${m.preprocessing.scale}`);
  const plane = 3 * width * height;
  const x = new Float32Array(images.length * plane);
  const norm = { mean: m.preprocessing.mean, std: m.preprocessing.std };
  for (let i = 0; i < images.length; i++) {
    const which = images.length === 1 ? 'the file' : `file ${i + 1}`;
    if (!sniffImage(images[i])) throw new AppError('UNSUPPORTED_MEDIA', `${which} is not a JPEG, PNG, WebP, GIF, TIFF or BMP image`);
    try {
      normalizeInto(await evalImage(images[i], width), norm, x, i * plane);
    } catch (e) {
      if (e instanceof ImageDecodeError) throw badInput(`${which} could not be decoded: ${e.message}`);
      throw e;
    }
  }
  return x;
}
