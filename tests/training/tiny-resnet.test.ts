import { describe, expect, it } from 'vitest';
import { i64 } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';
import type { OptimizerSpec } from '../../src/training/optimizers.ts';
import { buildTrainingStep } from '../../src/training/step-graph.ts';
import { Trainer } from '../../src/training/trainer.ts';
import { expectClose, loadModelCase, toF32, values } from './helpers.ts';
import { TINY_RESNET_BN_STATS, TINY_RESNET_PARAMS, tinyResnet } from './tiny-resnet.ts';

/** PyTorch reference: the fixture's network, two optimizer steps on one batch. */
const CASES: { file: string; optimizer: (a: Record<string, number | boolean>) => OptimizerSpec }[] = [
  {
    file: 'tiny_resnet_sgd_momentum.json',
    optimizer: (a) => ({ kind: 'sgd', momentum: Number(a.momentum), nesterov: Boolean(a.nesterov), weightDecay: Number(a.weight_decay) }),
  },
  {
    file: 'tiny_resnet_adamw.json',
    optimizer: (a) => ({ kind: 'adamw', beta1: Number(a.beta1), beta2: Number(a.beta2), eps: Number(a.eps), weightDecay: Number(a.weight_decay) }),
  },
];

for (const c of CASES) {
  describe(c.file, () => {
    const fx = loadModelCase(c.file);
    const optimizer = c.optimizer(fx.optimizer_args);
    const lr = Number(fx.optimizer_args.lr);
    const batch = toF32(fx.inputs.X);
    const target = i64([fx.target.length], fx.target);

    it('loss, logits and every parameter gradient match PyTorch', async () => {
      const step = buildTrainingStep(tinyResnet(fx.params_before), {
        loss: { kind: 'cross_entropy' }, trainable: TINY_RESNET_PARAMS, optimizer, exposeGradients: true,
      });
      const session = await createSession(step.model, { threads: 1 });
      const feeds = {
        [step.inputs.batch]: batch,
        [step.inputs.target]: target,
        [step.inputs.lr]: toF32({ shape: [], data: [lr] }),
        ...(step.inputs.step ? { [step.inputs.step]: toF32({ shape: [], data: [1] }) } : {}),
        ...Object.fromEntries([...TINY_RESNET_PARAMS, ...TINY_RESNET_BN_STATS].map((p) => [p, toF32(fx.params_before[p])])),
        ...Object.fromEntries(Object.entries(step.stateDims).map(([s, dims]) => [s, toF32({ shape: dims, data: new Array(dims.reduce((a, d) => a * d, 1)).fill(0) })])),
      };
      const out = await session.run(feeds);
      await session.release();
      expectClose(values(out[step.outputs.loss]), [fx.loss], 1e-5, 'loss');
      expectClose(values(out[step.outputs.logits]), fx.logits.data, 1e-4, 'logits');
      // b2.weight's true gradient is 0 (ReLU, the depthwise conv and BN3 make the branch invariant
      // to its scale): PyTorch's values are float32 rounding noise, so every gradient is judged
      // against the scale of the network's gradients, not of its own tensor.
      const gradScale = Math.max(...Object.values(fx.grads).flatMap((g) => g.data.map(Math.abs)));
      for (const p of TINY_RESNET_PARAMS) expectClose(values(out[step.outputs.grads?.[p] ?? '']), fx.grads[p].data, 1e-4, `grad ${p}`, gradScale);
    });

    it('two Trainer steps reach PyTorch’s parameters and batch-norm statistics', async () => {
      const trainer = await Trainer.create(tinyResnet(fx.params_before), {
        loss: { kind: 'cross_entropy' }, trainable: TINY_RESNET_PARAMS, optimizer, threads: 1,
      });
      const first = await trainer.step(batch, target, lr);
      expectClose([first.loss], [fx.loss], 1e-5, 'loss at step 1');
      const second = await trainer.step(batch, target, lr);
      expectClose([second.loss], [fx.loss_after_step1], 1e-5, 'loss at step 2');
      const s = trainer.getState();
      expect(s.step).toBe(Number(fx.params_after_two_steps['b1.num_batches_tracked'].data[0]));
      for (const p of TINY_RESNET_PARAMS) expectClose(values(s.params[p]), fx.params_after_two_steps[p].data, 1e-4, `param ${p}`);
      for (const p of TINY_RESNET_BN_STATS) expectClose(values(s.bnStats[p]), fx.params_after_two_steps[p].data, 1e-4, `bn ${p}`);
      await trainer.release();
    });
  });
}
