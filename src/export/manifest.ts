import { z } from 'zod';
import { validation } from '../core/errors.ts';
import type { EvalPreprocessing } from '../training/data/eval-transform.ts';

/**
 * `manifest.json`, the contract a deployer reads. Format-agnostic: it names tensors, dtypes and
 * the exact input transform, never a studio type, so any runtime can feed the model from it alone.
 */

export const MANIFEST_SCHEMA_VERSION = 1;

const Triple = z.tuple([z.number().finite(), z.number().finite(), z.number().finite()]);

/**
 * The evaluation transform (src/training/data/eval-transform.ts), step by step in this order:
 * 1. decode; apply the EXIF orientation; flatten alpha onto black; convert to 8-bit sRGB, 3 channels;
 * 2. resize (`stretch`: straight to width×height, aspect ratio not kept) with a bilinear (triangle)
 *    filter, antialiased when shrinking — PIL's Image.BILINEAR, sharp's `kernel: 'linear'`;
 * 3. v·scale (1/255: 0–255 → 0–1), then (v − mean[c]) / std[c];
 * 4. planar RGB (NCHW), float32.
 */
export const PreprocessingSchema = z.object({
  resize: z.object({
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    mode: z.enum(['stretch']),
    interpolation: z.enum(['bilinear']),
    antialias: z.boolean(),
  }),
  exif_orientation: z.boolean(),
  alpha: z.enum(['flatten_on_black']),
  color_space: z.literal('sRGB'),
  color: z.literal('RGB'),
  layout: z.literal('NCHW'),
  dtype: z.literal('float32'),
  scale: z.number().positive(),
  mean: Triple,
  std: Triple.refine((s) => s.every((v) => v > 0), 'std must be positive'),
});
export type Preprocessing = z.infer<typeof PreprocessingSchema>;

/** The manifest's form of the training engine's own description of its eval transform. */
export function preprocessingFromEval(p: EvalPreprocessing): Preprocessing {
  return PreprocessingSchema.parse({
    resize: { ...p.resize },
    exif_orientation: p.exif_orientation,
    alpha: p.alpha,
    color_space: p.color_space,
    color: p.color_order,
    layout: p.layout,
    dtype: p.dtype,
    scale: p.scale,
    mean: [...p.mean],
    std: [...p.std],
  });
}

const Dim = z.union([z.number().int().nonnegative(), z.string().min(1)]);
const TensorSpec = z.object({
  name: z.string().min(1),
  dtype: z.enum(['float32', 'float16', 'int64', 'int32', 'int8', 'uint8']),
  /** Named strings are dynamic axes (`batch`). */
  shape: z.array(Dim),
  description: z.string(),
});
export type TensorSpec = z.infer<typeof TensorSpec>;

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);

export const ManifestFileSchema = z.object({
  name: z.string().min(1).regex(/^[A-Za-z0-9._-]+$/, 'a plain file name'),
  role: z.enum(['model', 'labels', 'readme']),
  /** For model files: the variant it holds. */
  variant: z.enum(['fp32', 'fp16', 'int8']).optional(),
  size_bytes: z.number().int().nonnegative(),
  sha256: Sha256,
});
export type ManifestFile = z.infer<typeof ManifestFileSchema>;

export const ManifestSchema = z.object({
  schema_version: z.literal(MANIFEST_SCHEMA_VERSION),
  name: z.string().min(1),
  task: z.enum(['classification']),
  execution_format: z.literal('onnx'),
  opset: z.number().int().min(7),
  inputs: z.array(TensorSpec).min(1),
  outputs: z.array(TensorSpec).min(1),
  preprocessing: PreprocessingSchema,
  postprocessing: z.object({
    /** Which output holds the scores and how they were made from the logits. */
    scores_output: z.string().min(1),
    activation: z.literal('softmax'),
    axis: z.number().int(),
    /** Index i of the class axis is labels[i]. */
    labels: z.literal('labels'),
  }),
  labels: z.array(z.string()).min(1),
  metrics: z.record(z.string(), z.union([z.number(), z.record(z.string(), z.number())])),
  source: z.object({
    experiment_id: z.string(),
    run_id: z.string(),
    checkpoint: z.string(),
    model: z.string(),
    dataset_id: z.string(),
    dataset_hash: z.string(),
    split_id: z.string(),
    split_hash: z.string(),
  }),
  created_at: z.string().datetime(),
  files: z.array(ManifestFileSchema),
});
export type Manifest = z.infer<typeof ManifestSchema>;

export interface ManifestInput {
  name: string;
  opset: number;
  numClasses: number;
  inputSize: { width: number; height: number };
  preprocessing: Preprocessing;
  labels: string[];
  metrics: Manifest['metrics'];
  source: Manifest['source'];
  files: ManifestFile[];
  createdAt?: Date;
}

/** Builds and checks the manifest; every file the package holds must be listed in `files`. */
export function buildManifest(m: ManifestInput): Manifest {
  if (m.labels.length !== m.numClasses) throw validation(`${m.labels.length} labels for ${m.numClasses} classes`);
  const { width, height } = m.inputSize;
  if (m.preprocessing.resize.width !== width || m.preprocessing.resize.height !== height) {
    throw validation(`preprocessing resizes to ${m.preprocessing.resize.width}×${m.preprocessing.resize.height}, the model takes ${width}×${height}`);
  }
  const manifest = {
    schema_version: MANIFEST_SCHEMA_VERSION,
    name: m.name,
    task: 'classification',
    execution_format: 'onnx',
    opset: m.opset,
    inputs: [{
      name: 'input', dtype: 'float32', shape: ['batch', 3, height, width],
      description: 'images after `preprocessing`: RGB, planar (NCHW), normalized float32',
    }],
    outputs: [
      { name: 'logits', dtype: 'float32', shape: ['batch', m.numClasses], description: 'raw class scores' },
      { name: 'probabilities', dtype: 'float32', shape: ['batch', m.numClasses], description: 'softmax of the logits over the class axis; index i is labels[i]' },
    ],
    preprocessing: m.preprocessing,
    postprocessing: { scores_output: 'probabilities', activation: 'softmax', axis: 1, labels: 'labels' },
    labels: m.labels,
    metrics: m.metrics,
    source: m.source,
    created_at: (m.createdAt ?? new Date()).toISOString(),
    files: m.files,
  };
  return parseManifest(manifest);
}

/** Reads a manifest (e.g. from a package); refuses a schema_version this build does not know. */
export function parseManifest(raw: unknown): Manifest {
  const version = (raw as { schema_version?: unknown } | null)?.schema_version;
  if (version !== MANIFEST_SCHEMA_VERSION) throw validation(`manifest schema_version ${String(version)} is not supported (this build reads ${MANIFEST_SCHEMA_VERSION})`);
  const r = ManifestSchema.safeParse(raw);
  if (!r.success) throw validation('invalid manifest', r.error.issues);
  return r.data;
}
