import { z } from 'zod';
import { WeightsIdSchema } from './weights.ts';
import type { DocType } from './common.ts';
import { BackboneIdSchema, DatasetIdSchema, DescriptionSchema, DisplayNameSchema, JobIdSchema, ProjectIdSchema, TimestampSchema, idOf } from './common.ts';
import { SplitNameSchema } from './dataset.ts';
import { JobStatusSchema } from './job.ts';
import { StoredTaskNameSchema, TaskNameSchema } from './task.ts';

/**
 * Experiments and runs: the create/patch bodies of the API (every field but the name, the dataset,
 * the split and the model's architecture or backbone has a default) and the stored files of a run.
 * Every number is bounded so a typo (`lr: 10`, `epochs: 1e6`) is refused with a message that names
 * the field and the allowed range, never carried into a run that fails an hour later.
 */

export const ExperimentIdSchema = idOf('exp');
export const RunIdSchema = idOf('run');
/** A catalog name (`small_cnn`, `resnet18`, …); whether it exists is the service's check. */
export const ArchitectureSchema = z.string().regex(/^[a-z0-9_]{1,64}$/, 'an architecture name from the catalog (lowercase letters, digits, _)');

/** In a request: a registered task (it must be the dataset's; the service checks). */
export const ExperimentTaskSchema = TaskNameSchema;

const int = (min: number, max: number) =>
  z.number({ error: `must be an integer between ${min} and ${max}` }).int(`must be an integer between ${min} and ${max}`).min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);
const num = (min: number, max: number) =>
  z.number({ error: `must be a number between ${min} and ${max}` }).min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);
/** A number in (0, max]: learning rates and the like, where 0 would silently train nothing. */
const positive = (max: number) =>
  z.number({ error: `must be a number in (0, ${max}]` }).positive(`must be greater than 0`).max(max, `must be at most ${max}`);
const probability = () => num(0, 1);
const flag = () => z.boolean({ error: 'must be true or false' });

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

export const INPUT_SIZE_MIN = 32;
export const INPUT_SIZE_MAX = 1024;

/** 'all', the classifier 'head' only, or the last K blocks of the model (the head counts as one). */
export const TrainableChoiceSchema = z.union([z.literal('all'), z.literal('head'), z.strictObject({ last_blocks: int(1, 1000) })], {
  error: 'must be "all", "head" or {"last_blocks": K}',
});
export type TrainableChoice = z.infer<typeof TrainableChoiceSchema>;

const modelFields = {
  architecture: ArchitectureSchema.optional(),
  backbone_id: BackboneIdSchema.optional(),
  /** Pretrained weights of the catalog architecture to start from (`wt-…`, plan/weights.md); random when absent. */
  weights_id: WeightsIdSchema.optional(),
  trainable: TrainableChoiceSchema.default('all'),
};

function exactlyOneSource(m: { architecture?: string; backbone_id?: string }, ctx: z.RefinementCtx): void {
  if ((m.architecture === undefined) === (m.backbone_id === undefined)) {
    ctx.addIssue({ code: 'custom', message: 'give exactly one of "architecture" (catalog) or "backbone_id" (imported model)', path: [] });
  }
}

/** In a request: `input_size` may be left out, the service fills the model's own (e.g. 224). */
export const ModelChoiceSchema = z
  .strictObject({ ...modelFields, input_size: int(INPUT_SIZE_MIN, INPUT_SIZE_MAX).optional() })
  .superRefine(exactlyOneSource);
export type ModelChoice = z.infer<typeof ModelChoiceSchema>;

/** Stored: `input_size` resolved. */
export const ResolvedModelChoiceSchema = z
  .strictObject({ ...modelFields, input_size: int(INPUT_SIZE_MIN, INPUT_SIZE_MAX) })
  .superRefine(exactlyOneSource);
export type ResolvedModelChoice = z.infer<typeof ResolvedModelChoiceSchema>;

// ---------------------------------------------------------------------------------------------
// Hyperparameters
// ---------------------------------------------------------------------------------------------

export const OptimizerNameSchema = z.enum(['sgd', 'adamw'], { error: 'must be "sgd" or "adamw"' });
export const SchedulerNameSchema = z.enum(['constant', 'step', 'cosine', 'one_cycle'], {
  error: 'must be one of "constant", "step", "cosine", "one_cycle"',
});
/** `val_loss` or one of the task's epoch metrics (`val_accuracy`, `val_map`, `val_mae`, …); the service checks which. */
export const EarlyStoppingMetricSchema = z.string({ error: 'must be "val_loss" or a validation metric of the task' }).regex(/^val_[a-z0-9_]{1,40}$/, 'must be "val_loss" or a validation metric of the task (val_…)');

export const EarlyStoppingSchema = z.strictObject({
  metric: EarlyStoppingMetricSchema.default('val_loss'),
  patience: int(1, 1000).default(5),
});

/** 'auto' recalibrates batch norm for training subsets up to this many images (and a pass reads at most this many). */
export const BN_RECALIBRATION_AUTO_MAX = 5000;

/** Defaults that depend on the optimizer: SGD wants a larger step and a smaller decay than AdamW. */
export const OPTIMIZER_DEFAULTS = {
  sgd: { lr: 0.01, weight_decay: 1e-4 },
  adamw: { lr: 1e-3, weight_decay: 0.01 },
} as const;

export const HyperparametersSchema = z
  .strictObject({
    epochs: int(1, 1000).default(10),
    batch_size: int(1, 1024).default(32),
    optimizer: OptimizerNameSchema.default('adamw'),
    lr: positive(10).optional(),
    weight_decay: num(0, 1).optional(),
    /** SGD's momentum; AdamW ignores it. */
    momentum: num(0, 0.999).default(0.9),
    scheduler: SchedulerNameSchema.default('cosine'),
    /** 'step': multiply lr by `gamma` every `step_size` epochs (default: a third of the epochs). */
    step_size: int(1, 1000).optional(),
    gamma: z.number({ error: 'must be a number in (0, 1]' }).positive('must be greater than 0').max(1, 'must be at most 1').default(0.1),
    /** Linear warm-up from 0 in front of any schedule; fractional epochs allowed. */
    warmup_epochs: num(0, 100).default(0),
    label_smoothing: num(0, 0.99).default(0),
    class_weights: z.enum(['none', 'balanced'], { error: 'must be "none" or "balanced"' }).default('none'),
    /** The task's loss (GET /api/tasks lists each task's); absent: the task's first. */
    loss: z.string({ error: 'must be a loss name' }).regex(/^[a-z0-9_]{1,40}$/, 'must be a loss name').optional(),
    /** Huber loss's delta, on the standardised targets (regression). */
    huber_delta: positive(100).default(1),
    /** Multi-label: weight each class's positives by negatives/positives of the training subset ('balanced'). */
    pos_weight: z.enum(['none', 'balanced'], { error: 'must be "none" or "balanced"' }).default('none'),
    early_stopping: EarlyStoppingSchema.nullable().default(null),
    /**
     * "Precise BN": before each validation, batch-norm running statistics recomputed over a pass of
     * un-augmented training images. 'auto': when the model has batch norm and the training subset
     * is small (≤ BN_RECALIBRATION_AUTO_MAX images), where an exponential average over few steps
     * can leave statistics that no longer describe the weights.
     */
    bn_recalibration: z.enum(['auto', 'on', 'off'], { error: 'must be "auto", "on" or "off"' }).default('auto'),
    /**
     * Fine-tuning: for the first K epochs only the head trains — the backbone frozen, its batch
     * norms in eval mode — then everything. Absent in a request: a third of the epochs for a
     * pretrained model (imported backbone or loaded weights), else 0; always set once stored.
     */
    freeze_backbone_epochs: int(0, 1000).optional(),
    /** Fine-tuning: the backbone's learning rate as a multiple of `lr`. Absent in a request: 0.1 for a pretrained model, else 1. */
    backbone_lr_multiplier: positive(1).optional(),
    seed: int(0, 2 ** 31 - 1).default(0),
  })
  .superRefine((h, ctx) => {
    if (h.freeze_backbone_epochs !== undefined && h.freeze_backbone_epochs > 0 && h.freeze_backbone_epochs >= h.epochs) {
      ctx.addIssue({ code: 'custom', message: `must be less than epochs (${h.epochs}): the backbone would never train`, path: ['freeze_backbone_epochs'] });
    }
    if (h.warmup_epochs >= h.epochs && h.warmup_epochs > 0) {
      ctx.addIssue({ code: 'custom', message: `must be less than epochs (${h.epochs})`, path: ['warmup_epochs'] });
    }
  })
  .transform((h) => ({
    ...h,
    lr: h.lr ?? OPTIMIZER_DEFAULTS[h.optimizer].lr,
    weight_decay: h.weight_decay ?? OPTIMIZER_DEFAULTS[h.optimizer].weight_decay,
    step_size: h.step_size ?? Math.max(1, Math.round(h.epochs / 3)),
  }));
export type Hyperparameters = z.output<typeof HyperparametersSchema>;
export type HyperparametersInput = z.input<typeof HyperparametersSchema>;

// ---------------------------------------------------------------------------------------------
// Augmentation
// ---------------------------------------------------------------------------------------------

export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];

const orderedPair = (min: number, max: number, what: string) =>
  z
    .tuple([num(min, max), num(min, max)], { error: `must be [min, max] with ${min} ≤ min ≤ max ≤ ${max}` })
    .refine(([a, b]) => a <= b, `${what}: min must not exceed max`);

export const NormalizeSchema = z.strictObject({
  mean: z.tuple([num(0, 1), num(0, 1), num(0, 1)], { error: 'must be 3 numbers in [0, 1] (R, G, B)' }),
  std: z.tuple([positive(1), positive(1), positive(1)], { error: 'must be 3 numbers in (0, 1] (R, G, B)' }),
});
export type Normalize = z.infer<typeof NormalizeSchema>;

const augmentationFields = {
  /** torchvision's RandomResizedCrop: area fraction `scale`, aspect ratio `ratio` (log-uniform). */
  random_resized_crop: z
    .strictObject({
      enabled: flag().default(true),
      // torchvision's 0.08 suits ImageNet-length training; small datasets learn better with less.
      scale: orderedPair(0.01, 1, 'scale').default([0.25, 1]),
      ratio: orderedPair(0.1, 10, 'ratio').default([3 / 4, 4 / 3]),
    })
    .prefault({}),
  horizontal_flip: z.strictObject({ enabled: flag().default(true), p: probability().default(0.5) }).prefault({}),
  /** Uniform angle in [-degrees, degrees], corners filled black, size kept (torchvision, expand=False). */
  rotation: z.strictObject({ enabled: flag().default(false), degrees: num(0, 180).default(15) }).prefault({}),
  /** torchvision's ColorJitter factors: brightness/contrast/saturation in [1-x, 1+x], hue shift in [-h, h] turns. */
  color_jitter: z
    .strictObject({
      enabled: flag().default(false),
      brightness: num(0, 1).default(0.2),
      contrast: num(0, 1).default(0.2),
      saturation: num(0, 1).default(0.2),
      hue: num(0, 0.5).default(0.02),
    })
    .prefault({}),
  grayscale: z.strictObject({ enabled: flag().default(false), p: probability().default(0.1) }).prefault({}),
};

/** In a request: `normalize: null` (the default) means the model's own (ImageNet's for the catalog). */
export const AugmentationSchema = z.strictObject({ ...augmentationFields, normalize: NormalizeSchema.nullable().default(null) });
export type Augmentation = z.infer<typeof AugmentationSchema>;

/** Stored and handed to the data pipeline: normalisation resolved. */
export const ResolvedAugmentationSchema = z.strictObject({ ...augmentationFields, normalize: NormalizeSchema });
export type ResolvedAugmentation = z.infer<typeof ResolvedAugmentationSchema>;
export type ResolvedAugmentationInput = z.input<typeof ResolvedAugmentationSchema>;

// ---------------------------------------------------------------------------------------------
// Experiment: request bodies and the stored file
// ---------------------------------------------------------------------------------------------

const settingsFields = {
  hyperparameters: HyperparametersSchema.prefault({}),
};

/**
 * A dataset of the project whose usable images replace the split's `val` (or `test`) subset;
 * null: the split's own subset. The service checks it (same task, ready, images of the run's outputs).
 */
export const OtherDatasetIdSchema = DatasetIdSchema.nullable();
const otherDatasetFields = {
  val_dataset_id: OtherDatasetIdSchema.default(null),
  test_dataset_id: OtherDatasetIdSchema.default(null),
};

/**
 * A client's token for an idempotent create (the body's `client_token` or the `Idempotency-Key`
 * header): a repeat with the same token in the same project answers the experiment the first made.
 */
export const ClientTokenSchema = z
  .string({ error: 'must be 1–128 characters of A–Z, a–z, 0–9, _ and -' })
  .regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be 1–128 characters of A–Z, a–z, 0–9, _ and -');

export const ExperimentCreateSchema = z.strictObject({
  name: DisplayNameSchema,
  description: DescriptionSchema.default(''),
  dataset_id: DatasetIdSchema,
  split_name: SplitNameSchema,
  model: ModelChoiceSchema,
  ...otherDatasetFields,
  /** The dataset's task when left out; naming another is a VALIDATION_ERROR. */
  task: ExperimentTaskSchema.optional(),
  ...settingsFields,
  augmentation: AugmentationSchema.prefault({}),
  /** Makes the create idempotent (see ClientTokenSchema); not a setting. */
  client_token: ClientTokenSchema.optional(),
});
/** The API's create body: the experiment's, and whether to start its first run at once. */
export const ExperimentCreateRequestSchema = ExperimentCreateSchema.extend({ start_run: flag().default(false) });
export type ExperimentCreate = z.input<typeof ExperimentCreateSchema>;
export type ExperimentCreateParsed = z.output<typeof ExperimentCreateSchema>;

/**
 * PATCH body: any top-level field; nested objects are partial and merged into the stored ones
 * (`mergeExperimentPatch`), then the result is validated in full by `ExperimentSettingsSchema`, so
 * every error carries its complete path.
 */
const partialObject = z.record(z.string(), z.unknown(), { error: 'must be an object' });
export const ExperimentPatchSchema = z.strictObject({
  name: DisplayNameSchema.optional(),
  description: DescriptionSchema.optional(),
  dataset_id: DatasetIdSchema.optional(),
  split_name: SplitNameSchema.optional(),
  val_dataset_id: OtherDatasetIdSchema.optional(),
  test_dataset_id: OtherDatasetIdSchema.optional(),
  task: ExperimentTaskSchema.optional(),
  model: partialObject.optional(),
  hyperparameters: partialObject.optional(),
  augmentation: partialObject.optional(),
});
export type ExperimentPatch = z.infer<typeof ExperimentPatchSchema>;

/** What a PATCH may change, resolved: parse `mergeExperimentPatch`'s result with this. */
export const ExperimentSettingsSchema = z.strictObject({
  name: DisplayNameSchema,
  description: DescriptionSchema,
  dataset_id: DatasetIdSchema,
  split_name: SplitNameSchema,
  ...otherDatasetFields,
  model: ResolvedModelChoiceSchema,
  /** Settings written before tasks were classification's. */
  task: StoredTaskNameSchema.default('classification'),
  ...settingsFields,
  augmentation: ResolvedAugmentationSchema.prefault({ normalize: { mean: IMAGENET_MEAN, std: IMAGENET_STD } }),
});
export type ExperimentSettings = z.infer<typeof ExperimentSettingsSchema>;

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge: objects merge key by key; arrays, null and scalars replace. */
function deepMerge(base: unknown, patch: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(patch)) return patch;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) if (v !== undefined) out[k] = deepMerge(base[k], v);
  return out;
}

/**
 * The stored settings with a PATCH applied. Choosing `architecture` drops a stored `backbone_id`
 * (and vice versa) so switching models takes one field, not two.
 */
export function mergeExperimentPatch(current: ExperimentSettings, patch: ExperimentPatch): unknown {
  const base: Record<string, unknown> = { ...current, model: { ...current.model } };
  const model = base.model as Record<string, unknown>;
  if (patch.model && 'architecture' in patch.model) delete model.backbone_id;
  if (patch.model && 'backbone_id' in patch.model) delete model.architecture;
  // Weights belong to one architecture: another model drops them unless the patch names its own.
  if (patch.model && ('architecture' in patch.model || 'backbone_id' in patch.model) && !('weights_id' in patch.model)) delete model.weights_id;
  return deepMerge(base, patch);
}

/** `experiments/<exp-id>/experiment.json`. */
export const ExperimentFileSchema = z.object({
  schema_version: z.literal(1),
  id: ExperimentIdSchema,
  project_id: ProjectIdSchema,
  name: DisplayNameSchema,
  description: DescriptionSchema,
  dataset_id: DatasetIdSchema,
  split_name: SplitNameSchema,
  /** Absent in files written before a second dataset could validate or test: the split's subsets. */
  ...otherDatasetFields,
  task: StoredTaskNameSchema,
  model: ResolvedModelChoiceSchema,
  hyperparameters: HyperparametersSchema,
  augmentation: ResolvedAugmentationSchema,
  /** The client token the experiment was created with (an idempotent create), if any. */
  client_token: ClientTokenSchema.optional(),
  /** sha256 of the create body as normalized (defaults filled, the token left out): a repeat must match it. */
  request_hash: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  created_at: TimestampSchema,
  updated_at: TimestampSchema,
});
export type ExperimentFile = z.infer<typeof ExperimentFileSchema>;
export const ExperimentDoc: DocType<ExperimentFile> = { name: 'experiment.json', version: 1, schema: ExperimentFileSchema };

// ---------------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------------

export const RunStatusSchema = JobStatusSchema;
export type RunStatus = z.infer<typeof RunStatusSchema>;

export const CheckpointNameSchema = z.enum(['best', 'last']);
export const CheckpointInfoSchema = z.object({
  name: CheckpointNameSchema,
  /** Epochs completed when it was written (1-based). */
  epoch: z.number().int().min(0),
  step: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().min(0),
  created_at: TimestampSchema,
});
export type CheckpointInfo = z.infer<typeof CheckpointInfoSchema>;

export const BestSchema = z.object({
  epoch: z.number().int().min(1),
  metric: EarlyStoppingMetricSchema,
  value: z.number(),
  /** The epoch's val loss: what breaks a tie of `value` (lower wins, then the later epoch). */
  val_loss: z.number().nullable().optional(),
});
export type Best = z.infer<typeof BestSchema>;

/** `runs/<run-id>/run.json`: the run's status and timings; the resolved config sits beside it. */
export const RunFileSchema = z.object({
  schema_version: z.literal(1),
  id: RunIdSchema,
  experiment_id: ExperimentIdSchema,
  project_id: ProjectIdSchema,
  status: RunStatusSchema,
  job_id: JobIdSchema.nullable(),
  /** The jobs of the run before its current one (each resume starts a new job): its whole log and time. */
  previous_job_ids: z.array(JobIdSchema).default([]),
  epochs: z.number().int().min(1),
  epochs_done: z.number().int().min(0),
  best: BestSchema.nullable(),
  checkpoints: z.array(CheckpointInfoSchema),
  /** Why it stopped early, when it did: 'early_stopping', 'cancelled', …. */
  stop_reason: z.string().max(200).nullable().default(null),
  /** How many times it was resumed from a checkpoint. */
  resumes: z.number().int().min(0).default(0),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  created_at: TimestampSchema,
  started_at: TimestampSchema.nullable(),
  finished_at: TimestampSchema.nullable(),
  updated_at: TimestampSchema,
});
export type RunFile = z.infer<typeof RunFileSchema>;
export const RunDoc: DocType<RunFile> = { name: 'run.json', version: 1, schema: RunFileSchema };

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

/** A second dataset a run validates or tests on, as the run found it. */
export const OtherDatasetUseSchema = z.object({
  id: DatasetIdSchema,
  name: z.string(),
  /** Hash of its images and labels as the run read them. */
  hash: sha256,
  /** Its images with a target of the run's outputs: the ones used. */
  images: z.number().int().min(0),
  /** Images with a label (or targets) the run does not know: left out. */
  skipped: z.number().int().min(0),
});
export type OtherDatasetUse = z.infer<typeof OtherDatasetUseSchema>;

/** `runs/<run-id>/config.json`: everything the run saw, resolved, so it can be reproduced or audited. */
export const RunConfigFileSchema = z.object({
  schema_version: z.literal(1),
  run_id: RunIdSchema,
  experiment_id: ExperimentIdSchema,
  project_id: ProjectIdSchema,
  task: StoredTaskNameSchema,
  dataset: z.object({
    id: DatasetIdSchema,
    name: z.string(),
    /** Hash of the dataset's images and labels as the run read them. */
    hash: sha256,
    /** The model's output names: class names, or regression's target names. */
    classes: z.array(z.string()).min(1),
  }),
  split: z.object({
    name: SplitNameSchema,
    /** Hash of the split's assignment (image id → subset). */
    hash: sha256,
    train_count: z.number().int().min(0),
    /** The split's labelled `val` images; not used for validation when `val_dataset` is set. */
    val_count: z.number().int().min(0),
  }),
  /**
   * The dataset whose usable images are the run's validation set instead of the split's `val`
   * subset (null or absent: the split's); `test_dataset` the same for `test` (evaluation's "test").
   */
  val_dataset: OtherDatasetUseSchema.nullable().optional(),
  test_dataset: OtherDatasetUseSchema.nullable().optional(),
  model: z
    .strictObject({
      ...modelFields,
      input_size: int(INPUT_SIZE_MIN, INPUT_SIZE_MAX),
      /** The catalog name or the imported backbone's name. */
      name: z.string(),
      num_classes: z.number().int().min(1),
      param_count: z.number().int().min(0),
      trainable_param_count: z.number().int().min(0),
    })
    .superRefine(exactlyOneSource),
  hyperparameters: HyperparametersSchema,
  augmentation: ResolvedAugmentationSchema,
  /** `balanced` class weights as used (one per class), else null. */
  class_weights: z.array(z.number().nonnegative()).nullable(),
  /** What the task fitted on the training targets (its own schema: src/tasks/<task>/). */
  task_state: z.unknown().optional(),
  /** Whether batch-norm statistics are recalibrated before each validation, and over how many training images. */
  bn_recalibration: z.object({ enabled: z.boolean(), images: z.number().int().min(0) }).optional(),
  steps_per_epoch: z.number().int().min(1),
  created_at: TimestampSchema,
});
export type RunConfigFile = z.infer<typeof RunConfigFileSchema>;
export const RunConfigDoc: DocType<RunConfigFile> = { name: 'config.json', version: 1, schema: RunConfigFileSchema };

/** One line of `runs/<run-id>/metrics.jsonl`, written at the end of every epoch. */
export const MetricsLineSchema = z.object({
  schema_version: z.literal(1),
  epoch: z.number().int().min(1),
  /** Optimizer steps taken so far (all epochs). */
  step: z.number().int().min(0),
  train_loss: z.number(),
  /** Classification's accuracy; null for the other tasks. */
  train_accuracy: z.number().min(0).max(1).nullable(),
  /** null when the split has no validation images. */
  val_loss: z.number().nullable(),
  val_accuracy: z.number().min(0).max(1).nullable(),
  /** The task's metrics, `train_<m>` and `val_<m>` (null where undefined, e.g. R² of a constant target). */
  metrics: z.record(z.string(), z.number().nullable()).default({}),
  /**
   * What the validation predictions looked like, for the run's warnings (a model that answers one
   * class, a metric no better than a trivial baseline): classification's `distinct_predictions` and
   * `majority_baseline`. Absent without validation images and in lines written before it.
   */
  diagnostics: z.record(z.string(), z.number().nullable()).optional(),
  /** The learning rate at the epoch's last step. */
  lr: z.number().min(0),
  images_per_s: z.number().min(0),
  seconds: z.number().min(0),
  time: TimestampSchema,
});
export type MetricsLine = z.infer<typeof MetricsLineSchema>;

/** A result that is not what it seems (constant predictions, no better than a baseline), with what to try. */
export const WarningSchema = z.object({ code: z.string(), message: z.string() });
export type Warning = z.infer<typeof WarningSchema>;
