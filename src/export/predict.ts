import { AppError, badInput } from '../core/errors.ts';
import { sniffImage } from '../datasets/image.ts';
import { ImageDecodeError } from '../training/data/decode.ts';
import { evalImage } from '../training/data/eval-transform.ts';
import { normalizeInto } from '../training/data/tensor.ts';
import type { Manifest } from './manifest.ts';
import type { PredictCache } from './predict-cache.ts';

/**
 * Predict with an exported model: the images through the eval transform the model was validated
 * with (the manifest's size, mean and std), one batch through the cached session of the variant's
 * file, the top classes of each image.
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
  /** Classes per image, best first. */
  topK: number;
}

export interface PredictOutput {
  /** One list per image, in input order. */
  tops: Prediction[][];
  /** Time of the model run alone (all images in one batch), milliseconds. */
  ms: number;
}

export async function predictImages(req: PredictRequest): Promise<PredictOutput> {
  const { manifest, images, variant } = req;
  const x = await preprocess(images, manifest);
  const n = images.length;
  const { width, height } = manifest.preprocessing.resize;
  const classes = manifest.labels.length;
  const scores = manifest.postprocessing.scores_output;
  const { probs, ms } = await req.cache.use(req.key, req.load, async (session) => {
    const t0 = performance.now();
    const out = await session.run({ input: { dtype: 'float32', dims: [n, 3, height, width], data: x } }, [scores]);
    const ms = performance.now() - t0;
    const data = out[scores].data;
    if (!(data instanceof Float32Array) || data.length !== n * classes) {
      throw new AppError('STORAGE_CORRUPT', `the ${variant} model gave ${data.length} scores for ${n} images × ${classes} classes`);
    }
    return { probs: data.slice(), ms };
  });
  const tops = Array.from({ length: n }, (_, i) => topK(probs.subarray(i * classes, (i + 1) * classes), manifest.labels, req.topK));
  return { tops, ms };
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

/** The `k` best classes, best first; ties to the lower class index. */
function topK(row: Float32Array, labels: readonly string[], k: number): Prediction[] {
  const order = Array.from({ length: labels.length }, (_, i) => i).sort((a, b) => row[b] - row[a] || a - b);
  return order.slice(0, Math.min(k, labels.length)).map((i) => ({ label: labels[i], score: Math.min(Math.max(row[i], 0), 1) }));
}
