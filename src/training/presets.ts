import type { HyperparametersInput, ResolvedAugmentationInput } from '../schemas/experiment.ts';

/**
 * Starting points a person picks on the experiment form; any field they set wins (`withPreset`).
 *  - quick:    a few epochs to see that the data and model work at all; light augmentation.
 *  - balanced: the default trade-off for fine-tuning or training a small model.
 *  - thorough: longer, stronger augmentation and early stopping, for the final model.
 */
export const PRESET_NAMES = ['quick', 'balanced', 'thorough'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export interface Preset {
  hyperparameters: HyperparametersInput;
  augmentation: Omit<ResolvedAugmentationInput, 'normalize'>;
}

export const PRESETS: Record<PresetName, Preset> = {
  quick: {
    hyperparameters: { epochs: 5, batch_size: 32, optimizer: 'adamw', lr: 1e-3, weight_decay: 0.01, scheduler: 'cosine', warmup_epochs: 0, label_smoothing: 0, early_stopping: null },
    augmentation: {
      random_resized_crop: { enabled: true, scale: [0.5, 1] },
      horizontal_flip: { enabled: true, p: 0.5 },
      rotation: { enabled: false },
      color_jitter: { enabled: false },
      grayscale: { enabled: false },
    },
  },
  balanced: {
    hyperparameters: { epochs: 20, batch_size: 32, optimizer: 'adamw', lr: 1e-3, weight_decay: 0.05, scheduler: 'cosine', warmup_epochs: 1, label_smoothing: 0.1, early_stopping: null },
    augmentation: {
      random_resized_crop: { enabled: true, scale: [0.25, 1] },
      horizontal_flip: { enabled: true, p: 0.5 },
      rotation: { enabled: false },
      color_jitter: { enabled: true, brightness: 0.2, contrast: 0.2, saturation: 0.2, hue: 0.02 },
      grayscale: { enabled: false },
    },
  },
  thorough: {
    hyperparameters: {
      epochs: 60,
      batch_size: 32,
      optimizer: 'adamw',
      lr: 1e-3,
      weight_decay: 0.05,
      scheduler: 'cosine',
      warmup_epochs: 3,
      label_smoothing: 0.1,
      early_stopping: { metric: 'val_loss', patience: 10 },
    },
    augmentation: {
      random_resized_crop: { enabled: true, scale: [0.08, 1] },
      horizontal_flip: { enabled: true, p: 0.5 },
      rotation: { enabled: true, degrees: 15 },
      color_jitter: { enabled: true, brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.05 },
      grayscale: { enabled: true, p: 0.1 },
    },
  },
};

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function overlay(base: unknown, top: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(top)) return top === undefined ? base : top;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(top)) out[k] = overlay(base[k], v);
  return out;
}

/**
 * A create body with the preset filled in under what the body already says. The result is still
 * unvalidated input: parse it with ExperimentCreateSchema.
 */
export function withPreset(name: PresetName, body: Record<string, unknown>): Record<string, unknown> {
  const p = PRESETS[name];
  return {
    ...body,
    hyperparameters: overlay(p.hyperparameters, body.hyperparameters),
    augmentation: overlay(p.augmentation, body.augmentation),
  };
}
