import { describe, expect, it } from 'vitest';
import { learningRate, learningRateCurve, type ScheduleConfig } from '../../src/training/schedule.ts';

const at = (c: ScheduleConfig, epoch: number, step: number) => learningRate(c, { epoch, step });

/** torch.optim.lr_scheduler.OneCycleLR.get_lr (1.13), transcribed: two phases, cos annealing. */
function torchOneCycle(maxLr: number, totalSteps: number, stepNum: number, pctStart = 0.3, divFactor = 25, finalDivFactor = 1e4): number {
  const initialLr = maxLr / divFactor;
  const minLr = initialLr / finalDivFactor;
  const phases = [
    { end_step: pctStart * totalSteps - 1, start_lr: initialLr, end_lr: maxLr },
    { end_step: totalSteps - 1, start_lr: maxLr, end_lr: minLr },
  ];
  const annealingCos = (start: number, end: number, pct: number) => end + ((start - end) / 2.0) * (Math.cos(Math.PI * pct) + 1);
  let startStep = 0;
  for (let i = 0; i < phases.length; i++) {
    const endStep = phases[i].end_step;
    if (stepNum <= endStep || i === phases.length - 1) {
      return annealingCos(phases[i].start_lr, phases[i].end_lr, (stepNum - startStep) / (endStep - startStep));
    }
    startStep = endStep;
  }
  throw new Error('unreachable');
}

describe('learningRate', () => {
  it('constant', () => {
    const c: ScheduleConfig = { scheduler: 'constant', lr: 0.1, epochs: 3, stepsPerEpoch: 4 };
    expect(learningRateCurve(c)).toEqual(Array(12).fill(0.1));
  });

  it('step: lr·gamma^floor(epoch/step_size)', () => {
    const c: ScheduleConfig = { scheduler: 'step', lr: 1, epochs: 7, stepsPerEpoch: 2, stepSize: 3, gamma: 0.5 };
    expect([0, 1, 2, 3, 4, 5, 6].map((e) => at(c, e, 1))).toEqual([1, 1, 1, 0.5, 0.5, 0.5, 0.25]);
  });

  it('cosine: lr·(1+cos(πt/T))/2 over the steps', () => {
    const c: ScheduleConfig = { scheduler: 'cosine', lr: 2, epochs: 2, stepsPerEpoch: 2 };
    // T = 4 steps: t = 0, 1, 2, 3 → 2, 1+cos(π/4), 1, 1+cos(3π/4)
    const curve = learningRateCurve(c);
    expect(curve[0]).toBeCloseTo(2, 12);
    expect(curve[1]).toBeCloseTo(1 + Math.SQRT1_2, 12);
    expect(curve[2]).toBeCloseTo(1, 12);
    expect(curve[3]).toBeCloseTo(1 - Math.SQRT1_2, 12);
  });

  it('one-cycle: hand-computed values (lr 1, 10 steps, pct_start 0.3)', () => {
    const c: ScheduleConfig = { scheduler: 'one_cycle', lr: 1, epochs: 2, stepsPerEpoch: 5 };
    const curve = learningRateCurve(c);
    expect(curve[0]).toBeCloseTo(0.04, 12); // max_lr / div_factor
    expect(curve[1]).toBeCloseTo(0.52, 12); // halfway up: 0.04 + 0.96/2
    expect(curve[2]).toBeCloseTo(1, 12); // peak at pct_start·10 − 1 = 2
    expect(curve[3]).toBeCloseTo(4e-6 + ((1 - 4e-6) / 2) * (1 + Math.cos(Math.PI / 7)), 12);
    expect(curve[9]).toBeCloseTo(4e-6, 12); // initial / final_div_factor
  });

  it("one-cycle matches PyTorch's OneCycleLR formula at every step", () => {
    for (const [epochs, spe, pct] of [[3, 7, 0.3], [10, 13, 0.25], [1, 50, 0.4]] as const) {
      const c: ScheduleConfig = { scheduler: 'one_cycle', lr: 0.05, epochs, stepsPerEpoch: spe, pctStart: pct };
      const curve = learningRateCurve(c);
      curve.forEach((v, i) => expect(v).toBeCloseTo(torchOneCycle(0.05, epochs * spe, i, pct), 12));
    }
  });

  it('warm-up ramps linearly into the schedule, which then runs over the remaining steps', () => {
    const c: ScheduleConfig = { scheduler: 'cosine', lr: 1, epochs: 3, stepsPerEpoch: 2, warmupEpochs: 1 };
    const curve = learningRateCurve(c);
    // W = 2 warm-up steps: 1/3, 2/3; then cosine over T = 4 steps: 1, (1+cos(π/4))/2, 0.5, …
    expect(curve[0]).toBeCloseTo(1 / 3, 12);
    expect(curve[1]).toBeCloseTo(2 / 3, 12);
    expect(curve[2]).toBeCloseTo(1, 12);
    expect(curve[3]).toBeCloseTo((1 + Math.SQRT1_2) / 2, 12);
    expect(curve[4]).toBeCloseTo(0.5, 12);
    const oc = learningRateCurve({ scheduler: 'one_cycle', lr: 1, epochs: 3, stepsPerEpoch: 4, warmupEpochs: 0.5 });
    expect(oc[0]).toBeCloseTo(0.04 / 3, 12); // towards one-cycle's own first value
    oc.slice(2).forEach((v, i) => expect(v).toBeCloseTo(torchOneCycle(1, 10, i), 12));
  });

  it('refuses impossible configurations', () => {
    expect(() => at({ scheduler: 'constant', lr: 0, epochs: 1, stepsPerEpoch: 1 }, 0, 0)).toThrow(RangeError);
    expect(() => at({ scheduler: 'cosine', lr: 1, epochs: 2, stepsPerEpoch: 0 }, 0, 0)).toThrow(RangeError);
    expect(() => at({ scheduler: 'cosine', lr: 1, epochs: 2, stepsPerEpoch: 3, warmupEpochs: 2 }, 0, 0)).toThrow(RangeError);
    expect(() => at({ scheduler: 'step', lr: 1, epochs: 2, stepsPerEpoch: 3, stepSize: 0 }, 0, 0)).toThrow(RangeError);
  });
});
