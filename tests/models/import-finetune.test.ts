import { describe, expect, it } from 'vitest';
import { importOnnxBytes, type ModelSpec } from '../../src/models/index.ts';
import { i64 } from '../../src/onnx/ir.ts';
import { Trainer } from '../../src/training/trainer.ts';
import { batchOf, interop } from './helpers.ts';

async function fineTune(spec: ModelSpec, steps: number, lr: number): Promise<number[]> {
  const trainer = await Trainer.create(spec.model, { loss: { kind: 'cross_entropy' }, trainable: spec.params, optimizer: { kind: 'adam' }, threads: 1 });
  const x = batchOf(4, spec.inputSize);
  const y = i64([4], [0, 1, 2, 0]);
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) losses.push((await trainer.step(x, y, lr)).loss);
  await trainer.release();
  return losses;
}

describe('fine-tuning an imported backbone', () => {
  it('a training export (BN kept): loss falls', async () => {
    const losses = await fineTune(importOnnxBytes(interop('tiny_cnn_train_opset13').bytes, { numClasses: 3 }), 15, 0.01);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses.at(-1)!).toBeLessThan(losses[0] * 0.7);
  });

  it('torchvision MobileNetV3-Small (inference export): loss falls', async () => {
    const losses = await fineTune(importOnnxBytes(interop('mobilenet_v3_small_eval_opset13').bytes, { numClasses: 3 }), 4, 1e-3);
    expect(losses.every(Number.isFinite)).toBe(true);
    for (let i = 1; i < losses.length; i++) expect(losses[i]).toBeLessThan(losses[i - 1]);
  });
});
