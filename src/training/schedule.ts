/**
 * Learning rate per optimizer step. Schedules are functions of the fractional epoch so they are
 * continuous across steps (the way PyTorch users call `scheduler.step()` per batch for one-cycle
 * and per epoch for step/cosine):
 *   - constant: lr
 *   - step:     lr · gamma^floor(epoch / step_size)                   (StepLR, stepped per epoch)
 *   - cosine:   lr · (1 + cos(π · t / T)) / 2, t, T in steps           (CosineAnnealingLR, eta_min 0, per step)
 *   - one_cycle: PyTorch's OneCycleLR, anneal_strategy 'cos', three_phase False, per step
 * A linear warm-up of W = round(warmupEpochs · stepsPerEpoch) steps comes in front of any of them:
 * step g < W gets (g+1)/(W+1) of the schedule's first value. Cosine and one-cycle then run over
 * the steps after the warm-up (so cosine still ends at 0 and one-cycle keeps its shape); step
 * decays at the run's own epoch boundaries, as StepLR does.
 */

export type SchedulerName = 'constant' | 'step' | 'cosine' | 'one_cycle';

export interface ScheduleConfig {
  scheduler: SchedulerName;
  /** The base lr (one-cycle's max_lr). */
  lr: number;
  epochs: number;
  stepsPerEpoch: number;
  warmupEpochs?: number;
  /** 'step' only. */
  stepSize?: number;
  gamma?: number;
  /** 'one_cycle' only; PyTorch's defaults. */
  pctStart?: number;
  divFactor?: number;
  finalDivFactor?: number;
}

export interface StepPosition {
  /** 0-based epoch. */
  epoch: number;
  /** 0-based step within the epoch. */
  step: number;
}

const cosAnneal = (start: number, end: number, pct: number) => end + ((start - end) / 2) * (1 + Math.cos(Math.PI * pct));

function checkConfig(c: ScheduleConfig): void {
  if (!(c.lr > 0) || !Number.isFinite(c.lr)) throw new RangeError(`lr must be positive, got ${c.lr}`);
  if (!Number.isInteger(c.epochs) || c.epochs < 1) throw new RangeError(`epochs must be a positive integer, got ${c.epochs}`);
  if (!Number.isInteger(c.stepsPerEpoch) || c.stepsPerEpoch < 1) throw new RangeError(`stepsPerEpoch must be a positive integer, got ${c.stepsPerEpoch}`);
  const w = c.warmupEpochs ?? 0;
  if (w < 0 || (w > 0 && w >= c.epochs)) throw new RangeError(`warmupEpochs must be in [0, epochs), got ${w}`);
}

/** OneCycleLR at step `i` of `total` (torch/optim/lr_scheduler.py, two phases, cos annealing). */
function oneCycle(c: ScheduleConfig, i: number, total: number): number {
  const pctStart = c.pctStart ?? 0.3;
  const initial = c.lr / (c.divFactor ?? 25);
  const min = initial / (c.finalDivFactor ?? 1e4);
  // torch: phase ends at float(pct_start * total_steps) - 1 and total_steps - 1.
  const end1 = pctStart * total - 1;
  const end2 = total - 1;
  if (i <= end1) return cosAnneal(initial, c.lr, end1 <= 0 ? 1 : i / end1);
  return cosAnneal(c.lr, min, end2 - end1 <= 0 ? 1 : (i - end1) / (end2 - end1));
}

/** The lr for the step at `pos`. */
export function learningRate(c: ScheduleConfig, pos: StepPosition): number {
  checkConfig(c);
  const spe = c.stepsPerEpoch;
  const global = pos.epoch * spe + pos.step;
  const warmupSteps = Math.round((c.warmupEpochs ?? 0) * spe);
  if (global < warmupSteps) return (scheduled(c, 0, 0) * (global + 1)) / (warmupSteps + 1);
  return scheduled(c, pos.epoch, global - warmupSteps);
}

/** The schedule proper at post-warm-up step `i` (epoch `epoch` of the run). */
function scheduled(c: ScheduleConfig, epoch: number, i: number): number {
  const total = c.epochs * c.stepsPerEpoch - Math.round((c.warmupEpochs ?? 0) * c.stepsPerEpoch);
  switch (c.scheduler) {
    case 'constant':
      return c.lr;
    case 'step': {
      const stepSize = c.stepSize ?? 1;
      if (!Number.isInteger(stepSize) || stepSize < 1) throw new RangeError(`stepSize must be a positive integer, got ${stepSize}`);
      return c.lr * (c.gamma ?? 0.1) ** Math.floor(epoch / stepSize);
    }
    case 'cosine':
      return cosAnneal(c.lr, 0, Math.min(i, total) / total);
    case 'one_cycle':
      return oneCycle(c, Math.min(i, total - 1), total);
  }
}

/** The lr of every step of the run, for the page's lr curve (epochs × stepsPerEpoch values). */
export function learningRateCurve(c: ScheduleConfig): number[] {
  const out: number[] = [];
  for (let e = 0; e < c.epochs; e++) for (let s = 0; s < c.stepsPerEpoch; s++) out.push(learningRate(c, { epoch: e, step: s }));
  return out;
}
