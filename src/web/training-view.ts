import type { RunDetail, RunSummary, QueueEntry } from '../core/runs.ts';
import type { Experiment } from '../core/experiments.ts';
import type { JobEvent } from '../jobs/events.ts';
import type { MetricsLine } from '../schemas/experiment.ts';
import type { EpochMetricInfo } from '../tasks/index.ts';

/** How the training page names and shapes things; no I/O here. */

export function trainingUrl(projectId: string, experimentId?: string, runId?: string): string {
  const q = new URLSearchParams();
  if (experimentId) q.set('experiment', experimentId);
  if (runId) q.set('run', runId);
  const s = q.toString();
  return `/projects/${projectId}/training${s ? `?${s}` : ''}`;
}

export const ACTIVE = new Set(['queued', 'running']);
export const RESUMABLE = new Set(['cancelled', 'interrupted', 'failed']);

/** "1 h 04 min", "3 min 20 s", "12 s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

export const pct = (v: number | null | undefined): string => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(1)}%`);
export const fixed = (v: number | null | undefined, d = 4): string => (v === null || v === undefined ? '—' : v.toFixed(d));

/** The run's live numbers from a `progress` event (or the job record's last persisted one). */
export interface Progress {
  fraction: number;
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  images_per_s: number | null;
  eta_s: number | null;
}

export function progressOf(run: RunSummary, detail: Record<string, unknown> | undefined): Progress {
  const n = (k: string): number | null => (typeof detail?.[k] === 'number' && Number.isFinite(detail[k]) ? (detail[k] as number) : null);
  const epochsDone = run.epochs_done;
  const active = ACTIVE.has(run.status);
  // A finished run is where its last completed epoch left it, not where its last step was.
  const done = run.epochs > 0 ? epochsDone / run.epochs : 0;
  const fraction = active ? (n('progress') ?? n('fraction') ?? done) : done;
  return {
    fraction: Math.min(1, Math.max(0, fraction)),
    epoch: active ? (n('epoch') ?? epochsDone) : epochsDone,
    epochs: n('epochs') ?? run.epochs,
    step: n('step') ?? 0,
    steps: n('steps') ?? 0,
    images_per_s: n('images_per_s') ?? run.last_metrics?.images_per_s ?? null,
    eta_s: ACTIVE.has(run.status) ? n('eta_s') : null,
  };
}

/** Metrics from metrics.jsonl with the `metric` events the page has seen merged in, one per epoch. */
export function mergeMetrics(stored: MetricsLine[], events: JobEvent[]): MetricsLine[] {
  const byEpoch = new Map<number, MetricsLine>();
  for (const m of stored) byEpoch.set(m.epoch, m);
  for (const e of events) {
    if ((e.type as string) !== 'metric') continue;
    const m = e.data as MetricsLine | null;
    if (m && typeof m.epoch === 'number') byEpoch.set(m.epoch, m);
  }
  return [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
}

/** The task's headline per-epoch metric as the page shows it: `key` is bare (`accuracy`, `map`, `mae`). */
export interface PageMetric {
  key: string;
  /** Short name for titles: "Accuracy", "mAP", "MAE". */
  title: string;
  format: 'percent' | 'number';
  higher_is_better: boolean;
}

export function pageMetric(m: EpochMetricInfo): PageMetric {
  const title = m.label.replace(/^(validation|val)\s+/i, '');
  // "accuracy" → "Accuracy"; a name with capitals of its own ("mAP", "MAE", "R²") stays as written
  const shown = title === title.toLowerCase() ? title.charAt(0).toUpperCase() + title.slice(1) : title;
  return { key: m.key.replace(/^val_/, ''), title: shown, format: m.format, higher_is_better: m.higher_is_better };
}

/** A metric's value in a line: the task's `metrics` map, else the line's own field (lines written before tasks). */
export function metricOf(m: MetricsLine, key: string): number | null {
  const v = m.metrics?.[key] ?? (m as unknown as Record<string, unknown>)[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Formats a value of `metric` (or of a loss) for the page. */
export function formatMetric(v: number | null | undefined, format: 'percent' | 'number'): string {
  return format === 'percent' ? pct(v) : fixed(v);
}

/** What the charts draw: one point per epoch, nulls where a value was not measured; `metric` is the task's headline one. */
export function chartSeries(metrics: MetricsLine[], metric = 'accuracy') {
  return metrics.map((m) => ({
    epoch: m.epoch,
    train_loss: m.train_loss,
    val_loss: m.val_loss,
    train_metric: metricOf(m, `train_${metric}`),
    val_metric: metricOf(m, `val_${metric}`),
    lr: m.lr,
  }));
}

export interface RunRow {
  id: string;
  status: string;
  label: string;
  epochs_done: number;
  epochs: number;
  /** The run's best (or last) value of the task's headline metric, formatted. */
  metric_label: string;
  queue_position: number | null;
  href: string;
  selected: boolean;
}

/** Position 1 is the run training now; waiting runs follow in order. */
export function queuePositions(queue: QueueEntry[]): Map<string, number> {
  return new Map(queue.map((q, i) => [q.run_id, i + 1]));
}

export function runRow(
  projectId: string,
  exp: Experiment,
  run: RunSummary,
  index: number,
  total: number,
  positions: Map<string, number>,
  selectedRun: string | null,
  metric: PageMetric = { key: 'accuracy', title: 'Accuracy', format: 'percent', higher_is_better: true },
): RunRow {
  const key = `val_${metric.key}`;
  return {
    id: run.id,
    status: run.status,
    label: `Run ${total - index}`,
    epochs_done: run.epochs_done,
    epochs: run.epochs,
    metric_label: formatMetric(run.best?.metric === key ? run.best.value : run.last_metrics ? metricOf(run.last_metrics, key) : null, metric.format),
    queue_position: run.status === 'queued' ? (positions.get(run.id) ?? null) : null,
    href: trainingUrl(projectId, exp.id, run.id),
    selected: run.id === selectedRun,
  };
}

/**
 * Where an experiment's (or a run's) validation and test images come from: the split's subset, or
 * another dataset of the project (`names` gives a dataset's name by id).
 */
export function dataSources(exp: Experiment, names: ReadonlyMap<string, string>, config?: RunDetail['config']): { val: string; test: string } {
  const one = (which: 'val' | 'test'): string => {
    const used = config ? (which === 'val' ? config.val_dataset : config.test_dataset) : undefined;
    if (used) return `dataset ${used.name} · ${used.images} images${used.skipped > 0 ? ` (${used.skipped} skipped: labels not in training)` : ''}`;
    const id = config ? null : which === 'val' ? exp.val_dataset_id : exp.test_dataset_id;
    if (id) return `dataset ${names.get(id) ?? id}`;
    const split = config ? config.split.name : exp.split_name;
    return which === 'val' && config ? `split ${split}'s val subset · ${config.split.val_count} images` : `split ${split}'s ${which} subset`;
  };
  return { val: one('val'), test: one('test') };
}

/**
 * The config as label/value rows for the run panel; `weights` is the Model group's line saying what
 * the run started from (pretrained weights by file and sha256, random initialisation, an import's own).
 */
export function configRows(run: RunDetail, exp: Experiment, names: ReadonlyMap<string, string> = new Map(), weights?: string): { group: string; rows: [string, string][] }[] {
  const c = run.config;
  const sources = dataSources(exp, names, c);
  const h = c?.hyperparameters ?? exp.hyperparameters;
  const a = c?.augmentation ?? exp.augmentation;
  const m = c?.model;
  const trainable = (t: typeof exp.model.trainable) => (typeof t === 'string' ? t : `last ${t.last_blocks} blocks`);
  const onOff = (on: boolean, detail: string) => (on ? detail : 'off');
  return [
    {
      group: 'Data',
      rows: [
        ['Dataset', c ? `${c.dataset.name} (${c.dataset.classes.length} classes)` : exp.dataset_id],
        ['Split', c ? `${c.split.name}: ${c.split.train_count} train / ${c.split.val_count} val${c.val_dataset ? ' (not used for validation)' : ''}` : exp.split_name],
        ['Validation', sources.val],
        ['Test', sources.test],
        ...(c ? ([['Dataset hash', c.dataset.hash.slice(0, 12)], ['Split hash', c.split.hash.slice(0, 12)]] as [string, string][]) : []),
      ],
    },
    {
      group: 'Model',
      rows: [
        ['Model', m?.name ?? exp.model.architecture ?? exp.model.backbone_id ?? '—'],
        ...(weights === undefined ? [] : ([['Weights', weights]] as [string, string][])),
        ['Input size', `${(m ?? exp.model).input_size}×${(m ?? exp.model).input_size}`],
        ['Trains', trainable((m ?? exp.model).trainable)],
        ...(m ? ([['Parameters', `${m.param_count.toLocaleString('en-US')} (${m.trainable_param_count.toLocaleString('en-US')} trainable)`]] as [string, string][]) : []),
      ],
    },
    {
      group: 'Optimisation',
      rows: [
        ['Epochs × batch', `${h.epochs} × ${h.batch_size}${c ? ` (${c.steps_per_epoch} steps/epoch)` : ''}`],
        ['Optimizer', h.optimizer === 'sgd' ? `SGD, momentum ${h.momentum}` : 'AdamW'],
        ['Learning rate', `${h.lr} · ${h.scheduler}${h.scheduler === 'step' ? ` (×${h.gamma} every ${h.step_size})` : ''}${h.warmup_epochs > 0 ? ` · warm-up ${h.warmup_epochs}` : ''}`],
        ['Weight decay', String(h.weight_decay)],
        ['Loss', h.loss ?? 'the task\'s default'],
        ['Label smoothing', String(h.label_smoothing)],
        ['Class weights', h.class_weights],
        ['Early stopping', h.early_stopping ? `${h.early_stopping.metric}, patience ${h.early_stopping.patience}` : 'off'],
        [
          'Batch-norm statistics',
          c?.bn_recalibration
            ? c.bn_recalibration.enabled
              ? `recomputed before each validation (${c.bn_recalibration.images.toLocaleString('en-US')} images)`
              : 'running averages'
            : h.bn_recalibration,
        ],
        ['Seed', String(h.seed)],
      ],
    },
    {
      group: 'Augmentation',
      rows: [
        ['Random resized crop', onOff(a.random_resized_crop.enabled, `scale ${a.random_resized_crop.scale.join('–')}`)],
        ['Horizontal flip', onOff(a.horizontal_flip.enabled, `p ${a.horizontal_flip.p}`)],
        ['Rotation', onOff(a.rotation.enabled, `±${a.rotation.degrees}°`)],
        [
          'Colour jitter',
          onOff(a.color_jitter.enabled, `b ${a.color_jitter.brightness}, c ${a.color_jitter.contrast}, s ${a.color_jitter.saturation}, h ${a.color_jitter.hue}`),
        ],
        ['Grayscale', onOff(a.grayscale.enabled, `p ${a.grayscale.p}`)],
        ['Normalise', `mean ${a.normalize.mean.join(', ')} · std ${a.normalize.std.join(', ')}`],
      ],
    },
  ];
}

/**
 * A checkpoint's metric as the selects show it: "val accuracy 91.3%", "val mAP 92.1%",
 * "val MAE 0.2897", "val loss 0.1234" — named and formatted as the task's epoch metric.
 */
export function checkpointMetricLabel(task: { epochMetrics: readonly EpochMetricInfo[] } | null, metric: string, value: number): string {
  const info = task?.epochMetrics.find((m) => m.key === metric);
  const name = info ? info.label.replace(/^(validation|val)\s+/i, 'val ') : metric.replace(/_/g, ' ');
  const percent = info ? info.format === 'percent' : metric.endsWith('accuracy');
  return `${name} ${percent ? pct(value) : fixed(value)}`;
}
