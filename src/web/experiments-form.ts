import { z } from 'zod';
import { validation } from '../kernel/errors.ts';

/**
 * The new-experiment form. Its inputs are named by the path of the value in the API's create body
 * (`hyperparameters.lr`, `augmentation.rotation.degrees`, `augmentation.random_resized_crop.scale.0`),
 * so a form becomes a body by one generic unflattening, and a validation issue's path names the
 * input it belongs to — that is how errors land beside their field. The service validates the
 * body; here values are only typed (a number field that is not a number stays a string, so the
 * schema names it) and the few choices a form spells differently are mapped.
 */

/** Every form value is a string; keys are dotted paths, bounded so a hostile post stays small. */
export const ExperimentFormSchema = z.record(
  z.string().regex(/^[a-z_][a-z0-9_.]{0,99}$/, 'unknown field'),
  z.string().max(10_000),
);
export type ExperimentForm = z.infer<typeof ExperimentFormSchema>;

/** Checkboxes: an unticked box is not posted at all, so its absence means false. */
export const TOGGLES = [
  'augmentation.random_resized_crop.enabled',
  'augmentation.horizontal_flip.enabled',
  'augmentation.rotation.enabled',
  'augmentation.color_jitter.enabled',
  'augmentation.grayscale.enabled',
] as const;

/** Text fields of the body (the rest of the named fields are numbers). */
const TEXT = new Set([
  'name',
  'description',
  'dataset_id',
  'split_name',
  'val_dataset_id',
  'test_dataset_id',
  'client_token',
  'hyperparameters.optimizer',
  'hyperparameters.scheduler',
  'hyperparameters.class_weights',
  'hyperparameters.pos_weight',
  'hyperparameters.loss',
  'hyperparameters.bn_recalibration',
  'hyperparameters.early_stopping.metric',
]);

/** Choices whose empty option means null ("the split's own subset"). */
const NULLABLE = new Set(['val_dataset_id', 'test_dataset_id']);

/** Fields the form uses to choose, that are not in the body themselves. */
const CONTROL = new Set([
  'model.choice',
  'model.weights_id',
  'model.trainable',
  'model.last_blocks',
  'hyperparameters.early_stopping.enabled',
  'augmentation.normalize.mode',
  'start',
  'preview_seed',
]);

const toValue = (key: string, raw: string): unknown => {
  if (TEXT.has(key)) return raw;
  const n = Number(raw.trim());
  return raw.trim() !== '' && Number.isFinite(n) ? n : raw;
};

function setPath(target: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let node: Record<string, unknown> | unknown[] = target;
  for (let i = 0; i < parts.length - 1; i++) {
    const k = parts[i];
    const nextIsIndex = /^\d+$/.test(parts[i + 1]);
    const holder = node as Record<string, unknown>;
    if (typeof holder[k] !== 'object' || holder[k] === null) holder[k] = nextIsIndex ? [] : {};
    node = holder[k] as Record<string, unknown> | unknown[];
  }
  (node as Record<string, unknown>)[parts[parts.length - 1]] = value;
}

/** The create body a submitted form stands for (unvalidated: the experiments service checks it). */
export function formToBody(form: ExperimentForm): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(form)) {
    if (CONTROL.has(key) || (TOGGLES as readonly string[]).includes(key)) continue;
    if (key.startsWith('augmentation.normalize.') && form['augmentation.normalize.mode'] !== 'custom') continue;
    // An empty number field means "the default" (lr and weight decay follow the optimizer).
    if (raw.trim() === '' && !TEXT.has(key)) continue;
    if (NULLABLE.has(key) && raw === '') {
      setPath(body, key, null);
      continue;
    }
    setPath(body, key, toValue(key, raw));
  }
  for (const key of TOGGLES) setPath(body, key, form[key] === 'on');

  const choice = form['model.choice'] ?? '';
  const m = /^(arch|bb):(.+)$/.exec(choice);
  if (!m) throw validation('model: choose an architecture or an imported model', [{ path: ['model', 'choice'], message: 'choose a model' }]);
  setPath(body, m[1] === 'arch' ? 'model.architecture' : 'model.backbone_id', m[2]);
  // Pretrained weights go with a catalog architecture; empty is random initialisation.
  const weightsId = (form['model.weights_id'] ?? '').trim();
  if (m[1] === 'arch' && weightsId !== '') setPath(body, 'model.weights_id', weightsId);

  const trainable = form['model.trainable'] ?? 'all';
  if (trainable === 'last') setPath(body, 'model.trainable', { last_blocks: toValue('model.last_blocks', form['model.last_blocks'] ?? '') });
  else setPath(body, 'model.trainable', trainable);

  if (form['hyperparameters.early_stopping.enabled'] !== 'on') setPath(body, 'hyperparameters.early_stopping', null);
  else {
    const es = (body.hyperparameters as Record<string, unknown> | undefined)?.early_stopping;
    if (es === undefined) setPath(body, 'hyperparameters.early_stopping', {});
  }
  if (form['augmentation.normalize.mode'] !== 'custom') setPath(body, 'augmentation.normalize', null);
  return body;
}

export interface FieldError {
  /** The input's name in the form ('' when the error is about the whole form). */
  field: string;
  label: string;
  message: string;
}

/** What the error list calls a field; the path itself for the rest. */
const LABELS: Record<string, string> = {
  name: 'Name',
  dataset_id: 'Dataset',
  split_name: 'Split',
  val_dataset_id: 'Validation images',
  test_dataset_id: 'Test images',
  'model.choice': 'Model',
  'model.architecture': 'Model',
  'model.backbone_id': 'Model',
  'model.weights_id': 'Weights',
  'model.input_size': 'Input size',
  'model.trainable': 'What to train',
  'model.trainable.last_blocks': 'Last K blocks',
  'hyperparameters.epochs': 'Epochs',
  'hyperparameters.batch_size': 'Batch size',
  'hyperparameters.optimizer': 'Optimizer',
  'hyperparameters.lr': 'Learning rate',
  'hyperparameters.weight_decay': 'Weight decay',
  'hyperparameters.momentum': 'Momentum',
  'hyperparameters.scheduler': 'Schedule',
  'hyperparameters.step_size': 'Step size',
  'hyperparameters.gamma': 'Gamma',
  'hyperparameters.warmup_epochs': 'Warm-up epochs',
  'hyperparameters.label_smoothing': 'Label smoothing',
  'hyperparameters.class_weights': 'Class weights',
  'hyperparameters.pos_weight': 'Positive weights',
  'hyperparameters.loss': 'Loss',
  'hyperparameters.huber_delta': 'Huber delta',
  'hyperparameters.bn_recalibration': 'Batch-norm statistics',
  'hyperparameters.freeze_backbone_epochs': 'Freeze the backbone',
  'hyperparameters.backbone_lr_multiplier': 'Backbone learning rate ×',
  'hyperparameters.early_stopping.metric': 'Early-stopping metric',
  'hyperparameters.early_stopping.patience': 'Patience',
  'hyperparameters.seed': 'Seed',
};

/** The form input a body path belongs to (the body spells a few choices differently from the form). */
function fieldOf(path: string): string {
  if (path === 'model' || path === 'model.architecture' || path === 'model.backbone_id') return 'model.choice';
  if (path === 'model.trainable.last_blocks') return 'model.last_blocks';
  return path;
}

const IssueSchema = z.object({ path: z.array(z.union([z.string(), z.number()])), message: z.string() });

/**
 * A validation error as a list of field errors: from the zod issues the service attaches, else from
 * the `path: message` parts of its message (the checks a schema cannot make are worded that way).
 */
export function fieldErrors(message: string, details: unknown): FieldError[] {
  const issues = z.array(IssueSchema).safeParse(details);
  const pairs: { path: string; message: string }[] = issues.success
    ? issues.data.map((i) => ({ path: i.path.join('.'), message: i.message }))
    : message
        .replace(/^invalid [a-z ]+: /, '')
        .split('; ')
        .map((part) => {
          const m = /^([a-z_][a-z0-9_.]*): (.+)$/s.exec(part);
          return m ? { path: m[1], message: m[2] } : { path: '', message: part };
        });
  return pairs.map((p) => {
    const field = fieldOf(p.path);
    const message = field === 'model.weights_id' ? weightsMessage(p.message) : withoutPattern(p.message);
    return { field, label: LABELS[field] ?? LABELS[p.path] ?? (p.path || 'Experiment'), message };
  });
}

/** A schema's pattern is no message for a person: "must match pattern /^…$/" says only that the value is not valid. */
function withoutPattern(message: string): string {
  return /pattern \//.test(message) ? 'not a valid value' : message;
}

/** The service's refusals of `model.weights_id` (src/core/weights.ts requireReady) in the form's words. */
export function weightsMessage(message: string): string {
  let m: RegExpExecArray | null;
  if (/pattern \//.test(message) || /^no weights /.test(message)) return 'These weights are not in this workspace (any more): choose others, or load them on the Models page.';
  if ((m = /are for (\S+), not (\S+)$/.exec(message))) return `These weights are for ${m[1]}, not ${m[2]}: choose weights of ${m[2]}.`;
  if (/ are loading/.test(message)) return 'These weights are still loading: choose them once the Models page shows them ready.';
  if (/ are failed/.test(message)) return 'These weights failed to load: choose others, or load them again on the Models page.';
  return message.replace(/'wt-[0-9a-z]+'/g, '').replace(/\s{2,}/g, ' ');
}
