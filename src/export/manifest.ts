import { z } from 'zod';
import { validation } from '../kernel/errors.ts';
import { StoredTaskNameSchema, TaskNameSchema } from '../schemas/task.ts';
import type { EvalPreprocessing } from '../training/data/eval-transform.ts';
import { FORMAT_NAMES } from './formats/index.ts';

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

/** Classification: which output holds the scores and how they were made from the logits. */
export const SoftmaxPostprocessingSchema = z.object({
  type: z.literal('softmax'),
  scores_output: z.string().min(1),
  activation: z.literal('softmax'),
  axis: z.number().int(),
  /** Index i of the class axis is labels[i]. */
  labels: z.literal('labels'),
});
/** Multi-label: a sigmoid per label, and the threshold per label a deployment should use. */
export const MultilabelPostprocessingSchema = z.object({
  type: z.literal('multilabel'),
  scores_output: z.string().min(1),
  activation: z.literal('sigmoid'),
  thresholds: z.record(z.string(), z.number().min(0).max(1)),
});
/** Regression: the output holding the values in the targets' own units, and the targets in output order. */
export const RegressionPostprocessingSchema = z.object({
  type: z.literal('regression'),
  values_output: z.string().min(1),
  targets: z.array(z.object({ name: z.string(), unit: z.string().optional() })).min(1),
});
const KNOWN_POSTPROCESSING = { softmax: SoftmaxPostprocessingSchema, multilabel: MultilabelPostprocessingSchema, regression: RegressionPostprocessingSchema } as const;

/**
 * What a task says about its outputs (TaskDefinition.manifestPostprocessing). The known types are
 * checked field by field; a task registered later may write its own `type`, kept as written. A
 * manifest from before `type` existed was classification's softmax.
 */
export const PostprocessingSchema = z.preprocess(
  (v) => (v && typeof v === 'object' && !('type' in v) && (v as { activation?: unknown }).activation === 'softmax' ? { type: 'softmax', ...v } : v),
  z.looseObject({ type: z.string().min(1) }).superRefine((v, ctx) => {
    const known = (KNOWN_POSTPROCESSING as Record<string, z.ZodType>)[v.type];
    if (!known) return;
    const r = known.safeParse(v);
    if (!r.success) for (const issue of r.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
  }),
);
export type Postprocessing = z.infer<typeof PostprocessingSchema>;

export const ManifestFileSchema = z.object({
  name: z.string().min(1).regex(/^[A-Za-z0-9._-]+$/, 'a plain file name'),
  role: z.enum(['model', 'labels', 'readme']),
  /** For model files: the variant it holds. */
  variant: z.enum(FORMAT_NAMES).optional(),
  size_bytes: z.number().int().nonnegative(),
  sha256: Sha256,
});
export type ManifestFile = z.infer<typeof ManifestFileSchema>;

export const ManifestSchema = z.object({
  schema_version: z.literal(MANIFEST_SCHEMA_VERSION),
  name: z.string().min(1),
  /** The run's task (a registered task when built; read by form, so a newer task's package still reads). */
  task: StoredTaskNameSchema,
  execution_format: z.literal('onnx'),
  opset: z.number().int().min(7),
  inputs: z.array(TensorSpec).min(1),
  outputs: z.array(TensorSpec).min(1),
  preprocessing: PreprocessingSchema,
  postprocessing: PostprocessingSchema,
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

/** Classification's, the default of ManifestInput. */
export const SOFTMAX_POSTPROCESSING = { type: 'softmax', scores_output: 'probabilities', activation: 'softmax', axis: 1, labels: 'labels' } as const;
const SOFTMAX_OUTPUTS = [{ name: 'probabilities', description: 'softmax of the logits over the class axis; index i is labels[i]' }];

export interface ManifestInput {
  name: string;
  /** The run's task (default classification). */
  task?: string;
  /** The task's graph outputs after `logits`, primary first (default classification's `probabilities`). */
  outputs?: { name: string; description: string }[];
  /** The task's manifest postprocessing (default classification's softmax). */
  postprocessing?: Record<string, unknown>;
  opset: number;
  /** Outputs per image (classes, or regression targets): the length of `labels`. */
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
    task: taskName(m.task ?? 'classification'),
    execution_format: 'onnx',
    opset: m.opset,
    inputs: [{
      name: 'input', dtype: 'float32', shape: ['batch', 3, height, width],
      description: 'images after `preprocessing`: RGB, planar (NCHW), normalized float32',
    }],
    outputs: [
      { name: 'logits', dtype: 'float32', shape: ['batch', m.numClasses], description: (m.postprocessing?.type ?? 'softmax') === 'softmax' ? 'raw class scores' : 'raw outputs of the model, before post-processing' },
      ...(m.outputs ?? SOFTMAX_OUTPUTS).map((o) => ({ name: o.name, dtype: 'float32', shape: ['batch', m.numClasses], description: o.description })),
    ],
    preprocessing: m.preprocessing,
    postprocessing: m.postprocessing ?? SOFTMAX_POSTPROCESSING,
    labels: m.labels,
    metrics: m.metrics,
    source: m.source,
    created_at: (m.createdAt ?? new Date()).toISOString(),
    files: m.files,
  };
  return parseManifest(manifest);
}

/** A registered task's name (the manifest's task enum is the registry's). */
function taskName(name: string): string {
  const r = TaskNameSchema.safeParse(name);
  if (!r.success) throw validation(`task: ${r.error.issues[0]?.message ?? 'not a registered task'}`);
  return r.data;
}

/** Reads a manifest (e.g. from a package); refuses a schema_version this build does not know. */
export function parseManifest(raw: unknown): Manifest {
  const version = (raw as { schema_version?: unknown } | null)?.schema_version;
  if (version !== MANIFEST_SCHEMA_VERSION) throw validation(`manifest schema_version ${String(version)} is not supported (this build reads ${MANIFEST_SCHEMA_VERSION})`);
  const r = ManifestSchema.safeParse(raw);
  if (!r.success) throw validation('invalid manifest', r.error.issues);
  return r.data;
}
