import { AppError } from '../kernel/errors.ts';
import type { Model, TensorData } from '../onnx/ir.ts';
import { BestSchema, type Best, type Hyperparameters, type MetricsLine } from '../schemas/experiment.ts';
import type { CheckpointContent } from '../models/checkpoint.ts';
import type { Batch } from './data/loader.ts';
import type { LossSpec } from './losses.ts';
import { learningRate, type ScheduleConfig } from './schedule.ts';
import { Trainer, type TrainerState } from './trainer.ts';

/**
 * The epoch loop of a run: batches → Trainer.step → validation → one metrics line → checkpoints
 * `last` (every epoch) and `best` (when the chosen metric improved) → early stopping. Everything
 * random is a function of (seed, epoch) — data order and augmentation in the loader, the model's
 * initial weights in the factory — and the trainer state is restored bit for bit from a
 * checkpoint, so a resumed run ends with the same parameters as one that was never stopped.
 * I/O is the caller's (the training worker writes through src/storage).
 */

/** Batches of one epoch; `epoch` is 0-based. The loader's own order depends only on (seed, epoch). */
export type EpochBatches = (epoch: number, signal: AbortSignal) => AsyncIterable<Batch>;

export interface RunProgress {
  /** 1-based epoch being trained. */
  epoch: number;
  epochs: number;
  /** Steps done in this epoch, of `steps`. */
  step: number;
  steps: number;
  images_per_s: number;
  eta_s: number;
  /** 0..1 over the whole run. */
  fraction: number;
}

export interface RunSink {
  /** Writes a checkpoint (atomically) and records it; `at.epoch` is the number of epochs done. */
  checkpoint(name: 'best' | 'last', content: CheckpointContent, at: { epoch: number; step: number; best: Best | null }): Promise<void>;
  metrics(line: MetricsLine): Promise<void>;
  progress(p: RunProgress): void;
  log(message: string): void;
}

/** Where a resumed run picks up: the trainer state and loop state of its last checkpoint. */
export interface ResumePoint {
  state: TrainerState;
  /** Epochs completed. */
  epoch: number;
  best: Best | null;
  /** Epochs in a row without improvement (early stopping's counter). */
  badEpochs: number;
}

/** Scores an epoch's raw outputs against their targets (a task's `scorer`, src/tasks/types.ts). */
export interface LoopScorer {
  add(outputs: Float32Array, targets: readonly (readonly number[])[]): void;
  result(): { loss: number | null; metrics: Record<string, number | null>; diagnostics?: Record<string, number | null> };
}

/**
 * What the loop asks of the run's task (src/tasks/): the loss, each batch's targets and their
 * tensor, the epoch scorer, and how `best` is picked. Without one the loop trains classification
 * on the batches' class indices, as the loader hands them.
 */
export interface LoopTask {
  loss: LossSpec;
  /** Targets of a batch's images (by `b.indices` into the subset's items). */
  targets(b: Batch, subset: 'train' | 'val'): number[][];
  collate(targets: readonly (readonly number[])[]): TensorData;
  scorer(): LoopScorer;
  /** The metric `best` follows unless early stopping names one (`val_accuracy`, `val_map`, `val_mae`, …). */
  bestMetric: string;
  /** Whether a larger value of `metric` is better (`val_loss`: false). */
  higherIsBetter(metric: string): boolean;
}

export interface RunLoopOptions {
  model: Model;
  trainable: string[];
  hyperparameters: Hyperparameters;
  /** Per-class weights of the loss ('balanced'), or null. Classification without a `task` only. */
  classWeights: number[] | null;
  task?: LoopTask;
  train: EpochBatches;
  stepsPerEpoch: number;
  /** Validation batches (no augmentation, fixed order); null when the split has no val images. */
  val: EpochBatches | null;
  /**
   * Un-augmented training batches over which batch-norm statistics are recomputed before each
   * validation ("precise BN", Trainer.recalibrateBatchNorm); absent: the running averages stay.
   */
  recalibrate?: EpochBatches;
  threads: number;
  signal: AbortSignal;
  sink: RunSink;
  resume?: ResumePoint;
  /** Extra metadata stored in every checkpoint (run id, model name, …). */
  metadata?: Record<string, string>;
  /** Minimum interval between progress reports. */
  progressEveryMs?: number;
  /** Fine-tuning a pretrained model (absent: every trainable parameter trains alike from the start). */
  fineTune?: FineTune;
}

/**
 * How a pretrained model is fine-tuned: for the first `freezeEpochs` epochs only the head trains
 * (the backbone frozen, its batch norms in eval mode: running statistics used, not updated), then
 * everything in `trainable`; the backbone's parameters (trainable ones not in `head`) learn at
 * `backboneLrMultiplier` × the schedule's rate, the head at the rate itself.
 */
export interface FineTune {
  head: string[];
  freezeEpochs: number;
  backboneLrMultiplier: number;
}

export type StopReason = 'completed' | 'early_stopping' | 'cancelled';

export interface RunLoopResult {
  epochsDone: number;
  stopReason: StopReason;
  best: Best | null;
}

export interface EvalResult {
  loss: number;
  accuracy: number;
  count: number;
}

/** The metric that picks `best`: early stopping's when set, else the task's (validation accuracy for classification). */
export function bestMetric(h: Hyperparameters, task?: LoopTask): Best['metric'] {
  return h.early_stopping?.metric ?? task?.bestMetric ?? 'val_accuracy';
}

/**
 * Whether an epoch's `value` (and val loss) beats `best`. A tie of the metric goes to the lower val
 * loss, then to the later epoch: a run whose metric never moves (every epoch at the same accuracy)
 * keeps its last, most trained epoch, never "epoch 1".
 */
export function improves(higher: boolean, value: number, valLoss: number | null, best: Best | null): boolean {
  if (best === null) return true;
  if (value !== best.value) return higher ? value > best.value : value < best.value;
  const bestLoss = best.val_loss ?? null;
  if (valLoss !== null && bestLoss !== null && valLoss !== bestLoss) return valLoss < bestLoss;
  return true;
}

/** Classification on the loader's class indices: the loop's task when none is given. */
function classIndexTask(h: Hyperparameters, classWeights: number[] | null): LoopTask {
  return {
    loss: { kind: 'cross_entropy', labelSmoothing: h.label_smoothing, ...(classWeights ? { classWeights } : {}) },
    targets: (b) => Array.from(b.target, (t) => [Number(t)]),
    collate: (targets) => ({ dtype: 'int64', dims: [targets.length], data: BigInt64Array.from(targets, (t) => BigInt(t[0])) }),
    scorer: () => classIndexScorer(),
    bestMetric: 'val_accuracy',
    higherIsBetter: (m) => m !== 'val_loss',
  };
}

/**
 * Plain cross-entropy and accuracy of logits [n, C] against class indices; its diagnostics are how
 * many classes the predictions used and the accuracy of always answering the most frequent class.
 */
export function classIndexScorer(): LoopScorer {
  let lossSum = 0;
  let correct = 0;
  let count = 0;
  const predicted = new Map<number, number>();
  const truth = new Map<number, number>();
  return {
    add(outputs, targets) {
      const n = targets.length;
      if (n === 0) return;
      const c = outputs.length / n;
      const s = scoreLogits({ dtype: 'float32', dims: [n, c], data: outputs }, BigInt64Array.from(targets, (t) => BigInt(t[0])));
      lossSum += s.lossSum;
      correct += s.correct;
      count += n;
      for (let i = 0; i < n; i++) {
        let arg = 0;
        for (let j = 1; j < c; j++) if (outputs[i * c + j] > outputs[i * c + arg]) arg = j;
        predicted.set(arg, (predicted.get(arg) ?? 0) + 1);
        truth.set(targets[i][0], (truth.get(targets[i][0]) ?? 0) + 1);
      }
    },
    result: () => {
      const diagnostics: Record<string, number | null> = count ? { distinct_predictions: predicted.size, majority_baseline: Math.max(...truth.values()) / count } : {};
      return { loss: count ? lossSum / count : null, metrics: { accuracy: count ? correct / count : null }, diagnostics };
    },
  };
}

/** Mean cross-entropy (no smoothing, no weights: the plain validation loss) and hits of logits [n, C]. */
export function scoreLogits(logits: TensorData, target: BigInt64Array): { lossSum: number; correct: number } {
  const [n, c] = logits.dims;
  const d = logits.data as Float32Array;
  let lossSum = 0;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const row = i * c;
    let max = -Infinity;
    let arg = 0;
    for (let j = 0; j < c; j++) {
      if (d[row + j] > max) {
        max = d[row + j];
        arg = j;
      }
    }
    let sum = 0;
    for (let j = 0; j < c; j++) sum += Math.exp(d[row + j] - max);
    const y = Number(target[i]);
    lossSum += Math.log(sum) + max - d[row + y];
    if (arg === y) correct += 1;
  }
  return { lossSum, correct };
}

/** Validation: the eval graph's outputs over `batches`, scored by the task's scorer. */
export async function evaluate(
  trainer: Trainer,
  batches: AsyncIterable<Batch>,
  size: number,
  task?: LoopTask,
): Promise<EvalResult & { metrics: Record<string, number | null>; diagnostics?: Record<string, number | null> }> {
  const t = task ?? classIndexTask({ label_smoothing: 0 } as Hyperparameters, null);
  const scorer = t.scorer();
  let count = 0;
  for await (const b of batches) {
    const targets = t.targets(b, 'val');
    const n = targets.length;
    if (n === 0) continue;
    const logits = await trainer.evaluate({ dtype: 'float32', dims: [n, 3, size, size], data: b.input });
    scorer.add(logits.data as Float32Array, targets);
    count += n;
  }
  const r = scorer.result();
  const accuracy = r.metrics.accuracy;
  return { loss: r.loss ?? NaN, accuracy: typeof accuracy === 'number' ? accuracy : 0, count, metrics: r.metrics, ...(r.diagnostics ? { diagnostics: r.diagnostics } : {}) };
}

export async function runTrainingLoop(o: RunLoopOptions, inputSize: number): Promise<RunLoopResult> {
  const h = o.hyperparameters;
  const task = o.task ?? classIndexTask(h, o.classWeights);
  const ft = o.fineTune;
  const head = new Set(ft?.head ?? []);
  const lrScale: Record<string, number> = {};
  if (ft && ft.backboneLrMultiplier !== 1) for (const p of o.trainable) if (!head.has(p)) lrScale[p] = ft.backboneLrMultiplier;
  const frozenUntil = ft && ft.freezeEpochs > 0 && o.trainable.some((p) => !head.has(p)) ? ft.freezeEpochs : 0;
  const make = (frozen: boolean) => {
    const trainable = frozen ? o.trainable.filter((p) => head.has(p)) : o.trainable;
    if (trainable.length === 0) throw new AppError('VALIDATION_ERROR', 'freezing the backbone leaves nothing to train: the head is not among the trainable parameters');
    return Trainer.create(o.model, {
      loss: task.loss,
      trainable,
      optimizer: h.optimizer === 'sgd' ? { kind: 'sgd', momentum: h.momentum, weightDecay: h.weight_decay } : { kind: 'adamw', weightDecay: h.weight_decay },
      threads: o.threads,
      seed: h.seed,
      ...(Object.keys(lrScale).length ? { lrScale } : {}),
      ...(frozen ? { frozenBatchNorm: true } : {}),
    });
  };
  const phase = { trainer: await make((o.resume?.epoch ?? 0) < frozenUntil), frozenUntil, make };
  try {
    return await loop(phase, o, inputSize, task);
  } finally {
    await phase.trainer.release();
  }
}

/** The loop's trainer, swapped once when the backbone is unfrozen. */
interface Phase {
  trainer: Trainer;
  /** The first epoch (0-based) that trains everything; 0 when nothing is frozen. */
  frozenUntil: number;
  make(frozen: boolean): Promise<Trainer>;
}

async function loop(phase: Phase, o: RunLoopOptions, size: number, task: LoopTask): Promise<RunLoopResult> {
  const h = o.hyperparameters;
  let trainer = phase.trainer;
  const spe = o.stepsPerEpoch;
  const schedule: ScheduleConfig = {
    scheduler: h.scheduler,
    lr: h.lr,
    epochs: h.epochs,
    stepsPerEpoch: spe,
    warmupEpochs: h.warmup_epochs,
    stepSize: h.step_size,
    gamma: h.gamma,
  };
  const metric = bestMetric(h, task);
  const higher = task.higherIsBetter(metric);
  let best = o.resume?.best ?? null;
  let badEpochs = o.resume?.badEpochs ?? 0;
  const first = o.resume?.epoch ?? 0;
  // A checkpoint of the frozen phase holds the head only: the rest is as the model began.
  if (o.resume) trainer.setState(trainer.completeState(o.resume.state));
  if (phase.frozenUntil > first) o.sink.log(`the backbone is frozen for ${phase.frozenUntil} epoch${phase.frozenUntil === 1 ? '' : 's'}: only the head trains, the backbone's batch norms use their running statistics`);
  const everyMs = o.progressEveryMs ?? 250;
  const runStart = performance.now();
  let stepsThisProcess = 0;

  for (let epoch = first; epoch < h.epochs; epoch++) {
    if (epoch === phase.frozenUntil && epoch > first) {
      const state = trainer.getState();
      await trainer.release();
      trainer = phase.trainer = await phase.make(false);
      trainer.setState(trainer.completeState(state));
      const m = o.fineTune?.backboneLrMultiplier ?? 1;
      o.sink.log(`epoch ${epoch + 1}: the backbone is unfrozen${m !== 1 ? ` and learns at ${m} × the learning rate` : ''}`);
    }
    const t0 = performance.now();
    let lossSum = 0;
    const trainScorer = task.scorer();
    let seen = 0;
    let step = 0;
    let lastReport = 0;
    let lr = learningRate(schedule, { epoch, step: 0 });
    try {
      for await (const b of o.train(epoch, o.signal)) {
        if (o.signal.aborted) break;
        const targets = task.targets(b, 'train');
        const n = targets.length;
        lr = learningRate(schedule, { epoch, step: Math.min(step, spe - 1) });
        const r = await trainer.step({ dtype: 'float32', dims: [n, 3, size, size], data: b.input }, task.collate(targets), lr);
        if (!Number.isFinite(r.loss)) {
          throw new AppError('BAD_INPUT', `the loss became ${r.loss} at epoch ${epoch + 1}, step ${step + 1}: lower the learning rate`);
        }
        trainScorer.add(r.logits.data as Float32Array, targets);
        lossSum += r.loss * n;
        seen += n;
        step += 1;
        stepsThisProcess += 1;
        const now = performance.now();
        if (now - lastReport >= everyMs || step === spe) {
          lastReport = now;
          const perStep = (now - runStart) / 1000 / stepsThisProcess;
          const done = epoch * spe + step;
          o.sink.progress({
            epoch: epoch + 1,
            epochs: h.epochs,
            step,
            steps: spe,
            images_per_s: seen / ((now - t0) / 1000),
            eta_s: Math.max(0, (h.epochs * spe - done) * perStep),
            fraction: done / (h.epochs * spe),
          });
        }
      }
    } catch (e) {
      // The loader rejects with the abort reason when cancelled mid-batch.
      if (!o.signal.aborted) throw e;
    }
    if (o.signal.aborted) {
      o.sink.log(`cancelled during epoch ${epoch + 1}; the last checkpoint (epoch ${epoch}) is kept`);
      return { epochsDone: epoch, stopReason: 'cancelled', best };
    }
    if (seen === 0) throw new AppError('BAD_INPUT', `epoch ${epoch + 1} had no readable training images`);
    const trainSeconds = (performance.now() - t0) / 1000;

    if (o.recalibrate) {
      try {
        const used = await trainer.recalibrateBatchNorm(asTensors(o.recalibrate(epoch, o.signal), size));
        if (used > 0 && epoch === first) o.sink.log(`batch-norm statistics are recomputed over the training images before each validation (${used} batches)`);
      } catch (e) {
        if (!o.signal.aborted) throw e;
      }
      if (o.signal.aborted) {
        o.sink.log(`cancelled during epoch ${epoch + 1}; the last checkpoint (epoch ${epoch}) is kept`);
        return { epochsDone: epoch, stopReason: 'cancelled', best };
      }
    }
    const val = o.val ? await evaluate(trainer, o.val(epoch, o.signal), size, task) : null;
    if (o.signal.aborted) {
      o.sink.log(`cancelled during validation of epoch ${epoch + 1}; the last checkpoint (epoch ${epoch}) is kept`);
      return { epochsDone: epoch, stopReason: 'cancelled', best };
    }
    const trainMetrics = trainScorer.result().metrics;
    const metrics: Record<string, number | null> = {};
    for (const [k, v] of Object.entries(trainMetrics)) metrics[`train_${k}`] = finiteOrNull(v);
    if (val && val.count > 0) for (const [k, v] of Object.entries(val.metrics)) metrics[`val_${k}`] = finiteOrNull(v);
    const hasAccuracy = 'accuracy' in trainMetrics;
    const line: MetricsLine = {
      schema_version: 1,
      epoch: epoch + 1,
      step: trainer.stepCount,
      train_loss: lossSum / seen,
      train_accuracy: hasAccuracy ? (metrics.train_accuracy ?? null) : null,
      val_loss: val && val.count > 0 ? val.loss : null,
      val_accuracy: hasAccuracy && val && val.count > 0 ? (metrics.val_accuracy ?? null) : null,
      metrics,
      ...(val && val.count > 0 && val.diagnostics && Object.keys(val.diagnostics).length ? { diagnostics: val.diagnostics } : {}),
      lr,
      images_per_s: seen / trainSeconds,
      seconds: (performance.now() - t0) / 1000,
      time: new Date().toISOString(),
    };
    await o.sink.metrics(line);

    const value = metric === 'val_loss' ? line.val_loss : (line.metrics[metric] ?? null);
    let improved = false;
    const finite = value !== null && Number.isFinite(value);
    // Early stopping's patience counts epochs without a strict gain; a tie may still move `best` (improves).
    const gained = finite && (best === null || (higher ? value > best.value : value < best.value));
    if (finite && improves(higher, value, line.val_loss, best)) {
      best = { epoch: epoch + 1, metric, value, val_loss: line.val_loss };
      improved = true;
    }
    if (gained) badEpochs = 0;
    else if (value !== null) badEpochs += 1;
    const content = (): CheckpointContent => {
      const st = trainer.getState();
      return {
        ...st,
        rng: [h.seed >>> 0, epoch + 1],
        metadata: {
          ...o.metadata,
          epoch: String(epoch + 1),
          best: best ? JSON.stringify(best) : '',
          bad_epochs: String(badEpochs),
        },
      };
    };
    const at = { epoch: epoch + 1, step: trainer.stepCount, best };
    const state = content();
    await o.sink.checkpoint('last', state, at);
    if (improved) await o.sink.checkpoint('best', state, at);
    o.sink.log(`epoch ${epoch + 1}/${h.epochs}: ${epochSummary(line)} (${line.images_per_s.toFixed(1)} img/s)`);
    const es = h.early_stopping;
    if (es && badEpochs >= es.patience && epoch + 1 < h.epochs) {
      o.sink.log(`early stopping: ${metric} did not improve for ${badEpochs} epochs (best ${best?.value.toFixed(4)} at epoch ${best?.epoch})`);
      return { epochsDone: epoch + 1, stopReason: 'early_stopping', best };
    }
  }
  return { epochsDone: h.epochs, stopReason: 'completed', best };
}

async function* asTensors(batches: AsyncIterable<Batch>, size: number): AsyncIterable<TensorData> {
  for await (const b of batches) {
    const n = b.ids.length || b.target.length;
    if (n > 0) yield { dtype: 'float32', dims: [n, 3, size, size], data: b.input };
  }
}

function finiteOrNull(v: number | null): number | null {
  return v !== null && Number.isFinite(v) ? v : null;
}

/** `train loss 0.4123, accuracy 84.0%; val loss …` with whatever metrics the task reported. */
function epochSummary(line: MetricsLine): string {
  const part = (prefix: 'train' | 'val', loss: number | null): string => {
    const ms = Object.entries(line.metrics)
      .filter(([k]) => k.startsWith(`${prefix}_`))
      .map(([k, v]) => `${k.slice(prefix.length + 1)} ${v === null ? '—' : k.endsWith('accuracy') ? `${(v * 100).toFixed(1)}%` : v.toFixed(4)}`);
    return [`${prefix} loss ${loss === null ? '—' : loss.toFixed(4)}`, ...ms].join(', ');
  };
  return line.val_loss !== null ? `${part('train', line.train_loss)}; ${part('val', line.val_loss)}` : part('train', line.train_loss);
}

/** The loop state a checkpoint carries in its metadata (see `content` above). */
export function resumePointOf(c: CheckpointContent): ResumePoint {
  const epoch = Number(c.metadata.epoch);
  if (!Number.isInteger(epoch) || epoch < 0) throw new AppError('STORAGE_CORRUPT', 'checkpoint has no epoch');
  let best: Best | null = null;
  if (c.metadata.best) best = BestSchema.parse(JSON.parse(c.metadata.best));
  return {
    state: { params: c.params, optimizerState: c.optimizerState, bnStats: c.bnStats, step: c.step },
    epoch,
    best,
    badEpochs: Number(c.metadata.bad_epochs ?? 0) || 0,
  };
}
