import { describe, expect, it } from 'vitest';
import {
  ExperimentCreateSchema,
  ExperimentFileSchema,
  ExperimentPatchSchema,
  ExperimentSettingsSchema,
  IMAGENET_MEAN,
  IMAGENET_STD,
  MetricsLineSchema,
  RunConfigFileSchema,
  RunFileSchema,
  mergeExperimentPatch,
  type ExperimentSettings,
} from '../../src/schemas/experiment.ts';
import { PRESETS, PRESET_NAMES, withPreset } from '../../src/training/presets.ts';

const MINIMAL = { name: 'First try', dataset_id: 'ds-abcdefgh', split_name: 'default', model: { architecture: 'resnet18' } };
const NOW = '2026-01-01T00:00:00.000Z';

/** "path: message" for each issue, or [] when valid. */
function errorsOf(body: unknown): string[] {
  const r = ExperimentCreateSchema.safeParse(body);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}
const withHp = (hp: Record<string, unknown>) => ({ ...MINIMAL, hyperparameters: hp });
const withAug = (aug: Record<string, unknown>) => ({ ...MINIMAL, augmentation: aug });

describe('ExperimentCreateSchema', () => {
  it('fills every default from a minimal body', () => {
    const e = ExperimentCreateSchema.parse(MINIMAL);
    // the task is the dataset's: the service fills it (tests/api/tasks-train.test.ts)
    expect(e.task).toBeUndefined();
    expect(e.description).toBe('');
    expect(e.model).toEqual({ architecture: 'resnet18', trainable: 'all' });
    expect(e.hyperparameters).toEqual({
      epochs: 10,
      batch_size: 32,
      optimizer: 'adamw',
      lr: 1e-3,
      weight_decay: 0.01,
      momentum: 0.9,
      scheduler: 'cosine',
      step_size: 3,
      gamma: 0.1,
      warmup_epochs: 0,
      label_smoothing: 0,
      class_weights: 'none',
      huber_delta: 1,
      pos_weight: 'none',
      early_stopping: null,
      bn_recalibration: 'auto',
      seed: 0,
    });
    expect(e.augmentation).toEqual({
      random_resized_crop: { enabled: true, scale: [0.25, 1], ratio: [3 / 4, 4 / 3] },
      horizontal_flip: { enabled: true, p: 0.5 },
      rotation: { enabled: false, degrees: 15 },
      color_jitter: { enabled: false, brightness: 0.2, contrast: 0.2, saturation: 0.2, hue: 0.02 },
      grayscale: { enabled: false, p: 0.1 },
      normalize: null,
    });
  });

  it('takes optimizer-dependent defaults and fills nested defaults', () => {
    const e = ExperimentCreateSchema.parse({
      ...MINIMAL,
      model: { backbone_id: 'bb-12345678', input_size: 160, trainable: { last_blocks: 2 } },
      hyperparameters: { optimizer: 'sgd', epochs: 30, scheduler: 'step', early_stopping: { patience: 3 } },
      augmentation: { rotation: { enabled: true }, normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } },
    });
    expect(e.model).toEqual({ backbone_id: 'bb-12345678', input_size: 160, trainable: { last_blocks: 2 } });
    expect([e.hyperparameters.lr, e.hyperparameters.weight_decay, e.hyperparameters.step_size]).toEqual([0.01, 1e-4, 10]);
    expect(e.hyperparameters.early_stopping).toEqual({ metric: 'val_loss', patience: 3 });
    expect(e.augmentation.rotation).toEqual({ enabled: true, degrees: 15 });
  });

  const invalid: [string, unknown, RegExp][] = [
    ['no name', { ...MINIMAL, name: undefined }, /^name: /],
    ['empty name', { ...MINIMAL, name: '  ' }, /^name: must not be empty/],
    ['bad dataset id', { ...MINIMAL, dataset_id: 'x' }, /^dataset_id: /],
    ['bad split name', { ...MINIMAL, split_name: '../x' }, /^split_name: letters, digits/],
    ['unknown task', { ...MINIMAL, task: 'detection' }, /^task: /],
    ['unknown top-level key', { ...MINIMAL, colour: 1 }, /Unrecognized key.*colour/],
    ['no model source', { ...MINIMAL, model: {} }, /^model: give exactly one of "architecture"/],
    ['both model sources', { ...MINIMAL, model: { architecture: 'resnet18', backbone_id: 'bb-12345678' } }, /^model: give exactly one/],
    ['bad architecture name', { ...MINIMAL, model: { architecture: 'ResNet 18' } }, /^model.architecture: an architecture name/],
    ['input size too small', { ...MINIMAL, model: { architecture: 'resnet18', input_size: 16 } }, /^model.input_size: must be at least 32/],
    ['input size too large', { ...MINIMAL, model: { architecture: 'resnet18', input_size: 2048 } }, /^model.input_size: must be at most 1024/],
    ['input size fractional', { ...MINIMAL, model: { architecture: 'resnet18', input_size: 100.5 } }, /^model.input_size: must be an integer/],
    ['bad trainable', { ...MINIMAL, model: { architecture: 'resnet18', trainable: 'some' } }, /^model.trainable: must be "all", "head" or \{"last_blocks": K\}/],
    ['last_blocks 0', { ...MINIMAL, model: { architecture: 'resnet18', trainable: { last_blocks: 0 } } }, /^model.trainable/],
    ['epochs 0', withHp({ epochs: 0 }), /^hyperparameters.epochs: must be at least 1/],
    ['epochs huge', withHp({ epochs: 1e6 }), /^hyperparameters.epochs: must be at most 1000/],
    ['epochs as string', withHp({ epochs: '10' }), /^hyperparameters.epochs: must be an integer between 1 and 1000/],
    ['batch 0', withHp({ batch_size: 0 }), /^hyperparameters.batch_size: must be at least 1/],
    ['batch 4096', withHp({ batch_size: 4096 }), /^hyperparameters.batch_size: must be at most 1024/],
    ['optimizer adam', withHp({ optimizer: 'adam' }), /^hyperparameters.optimizer: must be "sgd" or "adamw"/],
    ['lr 0', withHp({ lr: 0 }), /^hyperparameters.lr: must be greater than 0/],
    ['lr 100', withHp({ lr: 100 }), /^hyperparameters.lr: must be at most 10/],
    ['lr NaN', withHp({ lr: Number.NaN }), /^hyperparameters.lr: /],
    ['weight decay negative', withHp({ weight_decay: -1 }), /^hyperparameters.weight_decay: must be at least 0/],
    ['momentum 1', withHp({ momentum: 1 }), /^hyperparameters.momentum: must be at most 0.999/],
    ['scheduler unknown', withHp({ scheduler: 'poly' }), /^hyperparameters.scheduler: must be one of/],
    ['step size 0', withHp({ step_size: 0 }), /^hyperparameters.step_size: must be at least 1/],
    ['gamma 0', withHp({ gamma: 0 }), /^hyperparameters.gamma: must be greater than 0/],
    ['gamma 2', withHp({ gamma: 2 }), /^hyperparameters.gamma: must be at most 1/],
    ['warm-up negative', withHp({ warmup_epochs: -1 }), /^hyperparameters.warmup_epochs: must be at least 0/],
    ['warm-up as long as training', withHp({ epochs: 5, warmup_epochs: 5 }), /^hyperparameters.warmup_epochs: must be less than epochs \(5\)/],
    ['label smoothing 1', withHp({ label_smoothing: 1 }), /^hyperparameters.label_smoothing: must be at most 0.99/],
    ['class weights', withHp({ class_weights: 'inverse' }), /^hyperparameters.class_weights: must be "none" or "balanced"/],
    ['early stopping metric', withHp({ early_stopping: { metric: 'loss' } }), /^hyperparameters.early_stopping.metric: must be "val_loss" or a validation metric of the task/],
    ['early stopping patience', withHp({ early_stopping: { patience: 0 } }), /^hyperparameters.early_stopping.patience: must be at least 1/],
    ['seed negative', withHp({ seed: -1 }), /^hyperparameters.seed: must be at least 0/],
    ['unknown hyperparameter', withHp({ lr_decay: 1 }), /^hyperparameters: Unrecognized key.*lr_decay/],
    ['crop scale reversed', withAug({ random_resized_crop: { scale: [0.9, 0.2] } }), /^augmentation.random_resized_crop.scale: scale: min must not exceed max/],
    ['crop scale > 1', withAug({ random_resized_crop: { scale: [0.5, 1.5] } }), /^augmentation.random_resized_crop.scale.1: must be at most 1/],
    ['crop scale one number', withAug({ random_resized_crop: { scale: [0.5] } }), /^augmentation.random_resized_crop.scale/],
    ['flip p > 1', withAug({ horizontal_flip: { p: 1.5 } }), /^augmentation.horizontal_flip.p: must be at most 1/],
    ['flip enabled not boolean', withAug({ horizontal_flip: { enabled: 'yes' } }), /^augmentation.horizontal_flip.enabled: must be true or false/],
    ['rotation 270', withAug({ rotation: { degrees: 270 } }), /^augmentation.rotation.degrees: must be at most 180/],
    ['brightness 2', withAug({ color_jitter: { brightness: 2 } }), /^augmentation.color_jitter.brightness: must be at most 1/],
    ['hue 0.6', withAug({ color_jitter: { hue: 0.6 } }), /^augmentation.color_jitter.hue: must be at most 0.5/],
    ['grayscale p', withAug({ grayscale: { p: -0.1 } }), /^augmentation.grayscale.p: must be at least 0/],
    ['std 0', withAug({ normalize: { mean: [0.5, 0.5, 0.5], std: [0.2, 0, 0.2] } }), /^augmentation.normalize.std.1: must be greater than 0/],
    ['mean of 2', withAug({ normalize: { mean: [0.5, 0.5], std: [0.2, 0.2, 0.2] } }), /^augmentation.normalize.mean/],
    ['mean in 0–255', withAug({ normalize: { mean: [124, 116, 104], std: [0.2, 0.2, 0.2] } }), /^augmentation.normalize.mean.0: must be at most 1/],
    ['unknown augmentation', withAug({ cutout: { enabled: true } }), /^augmentation: Unrecognized key.*cutout/],
  ];
  it.each(invalid)('rejects %s with a message naming the field', (_, body, message) => {
    const errors = errorsOf(body);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.some((e) => message.test(e)), `got: ${errors.join(' | ')}`).toBe(true);
  });
});

describe('PATCH', () => {
  const stored: ExperimentSettings = ExperimentSettingsSchema.parse({
    ...ExperimentCreateSchema.parse(MINIMAL),
    model: { architecture: 'resnet18', input_size: 224 },
    augmentation: { normalize: { mean: IMAGENET_MEAN, std: IMAGENET_STD } },
  });

  it('merges nested fields and keeps the rest', () => {
    const patch = ExperimentPatchSchema.parse({ hyperparameters: { epochs: 3 }, augmentation: { rotation: { enabled: true } } });
    const next = ExperimentSettingsSchema.parse(mergeExperimentPatch(stored, patch));
    expect(next.hyperparameters.epochs).toBe(3);
    expect(next.hyperparameters.batch_size).toBe(32);
    expect(next.augmentation.rotation).toEqual({ enabled: true, degrees: 15 });
    expect(next.augmentation.horizontal_flip).toEqual(stored.augmentation.horizontal_flip);
  });

  it('switches between catalog and imported model with one field', () => {
    const next = ExperimentSettingsSchema.parse(mergeExperimentPatch(stored, { model: { backbone_id: 'bb-12345678' } }));
    expect(next.model).toEqual({ backbone_id: 'bb-12345678', input_size: 224, trainable: 'all' });
  });

  it('reports an invalid patched value with its full path', () => {
    const r = ExperimentSettingsSchema.safeParse(mergeExperimentPatch(stored, { hyperparameters: { lr: -1 } }));
    expect(r.success).toBe(false);
    expect(r.error?.issues[0].path).toEqual(['hyperparameters', 'lr']);
    expect(ExperimentPatchSchema.safeParse({ hyperparameters: 3 }).success).toBe(false);
    expect(ExperimentPatchSchema.safeParse({ id: 'exp-12345678' }).success).toBe(false);
  });
});

describe('stored files', () => {
  const settings = ExperimentSettingsSchema.parse({ ...MINIMAL, description: '', model: { architecture: 'small_cnn', input_size: 64 } });

  it('experiment.json round-trips and refuses another schema_version', () => {
    const file = { schema_version: 1, id: 'exp-abcdefgh', project_id: 'proj-abcdefgh', ...settings, created_at: NOW, updated_at: NOW };
    expect(ExperimentFileSchema.parse(JSON.parse(JSON.stringify(file)))).toEqual(file);
    expect(ExperimentFileSchema.safeParse({ ...file, schema_version: 2 }).success).toBe(false);
  });

  it('run.json, config.json and metrics lines validate', () => {
    const run = {
      schema_version: 1,
      id: 'run-abcdefgh',
      experiment_id: 'exp-abcdefgh',
      project_id: 'proj-abcdefgh',
      status: 'running',
      job_id: 'job-abcdefgh',
      epochs: 10,
      epochs_done: 2,
      best: { epoch: 2, metric: 'val_loss', value: 0.4 },
      checkpoints: [{ name: 'last', epoch: 2, step: 40, sha256: 'a'.repeat(64), bytes: 1000, created_at: NOW }],
      error: null,
      created_at: NOW,
      started_at: NOW,
      finished_at: null,
      updated_at: NOW,
    };
    expect(RunFileSchema.parse(run)).toMatchObject({ stop_reason: null, resumes: 0 });
    expect(RunFileSchema.safeParse({ ...run, status: 'paused' }).success).toBe(false);
    const config = {
      schema_version: 1,
      run_id: 'run-abcdefgh',
      experiment_id: 'exp-abcdefgh',
      project_id: 'proj-abcdefgh',
      task: 'classification',
      dataset: { id: 'ds-abcdefgh', name: 'shapes', hash: 'b'.repeat(64), classes: ['circle', 'square'] },
      split: { name: 'default', hash: 'c'.repeat(64), train_count: 80, val_count: 20 },
      model: { ...settings.model, name: 'small_cnn', num_classes: 2, param_count: 1000, trainable_param_count: 1000 },
      hyperparameters: settings.hyperparameters,
      augmentation: settings.augmentation,
      class_weights: null,
      steps_per_epoch: 3,
      created_at: NOW,
    };
    expect(RunConfigFileSchema.parse(config)).toEqual(config);
    expect(RunConfigFileSchema.safeParse({ ...config, model: { ...config.model, architecture: undefined } }).success).toBe(false);
    const line = { schema_version: 1, epoch: 1, step: 3, train_loss: 1.2, train_accuracy: 0.5, val_loss: 1.1, val_accuracy: 0.55, lr: 0.001, images_per_s: 120, seconds: 2.5, time: NOW };
    // a line written before tasks reads with an empty map of task metrics
    expect(MetricsLineSchema.parse(line)).toEqual({ ...line, metrics: {} });
    expect(MetricsLineSchema.safeParse({ ...line, val_accuracy: 1.5 }).success).toBe(false);
  });
});

describe('presets', () => {
  it.each(PRESET_NAMES)('%s is valid, and the body wins over it', (name) => {
    const body = withPreset(name, { ...MINIMAL, hyperparameters: { epochs: 8 } });
    const e = ExperimentCreateSchema.parse(body);
    expect(e.hyperparameters.epochs).toBe(8);
    expect(e.hyperparameters.optimizer).toBe(PRESETS[name].hyperparameters.optimizer);
    expect(e.augmentation.random_resized_crop.scale).toEqual(PRESETS[name].augmentation.random_resized_crop?.scale);
    const untouched = ExperimentCreateSchema.parse(withPreset(name, MINIMAL));
    expect(untouched.hyperparameters.epochs).toBe(PRESETS[name].hyperparameters.epochs);
  });

  it('grow in length and strength from quick to thorough', () => {
    const epochs = PRESET_NAMES.map((n) => PRESETS[n].hyperparameters.epochs ?? 0);
    expect(epochs).toEqual([...epochs].sort((a, b) => a - b));
    expect(PRESETS.thorough.hyperparameters.early_stopping).not.toBeNull();
  });
});
