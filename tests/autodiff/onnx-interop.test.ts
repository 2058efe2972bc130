import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { backward, decomposeBatchNormForTraining } from '../../src/autodiff/index.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { decodeModel } from '../../src/onnx/codec.ts';
import { type TensorData, attr, f32 } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';
import { mulberry32 } from './gradcheck.ts';

/**
 * Models exported by torch.onnx.export, differentiated as imported: gradients of a few weights
 * against finite differences of loss = Σ logits·R (float32, so a loose tolerance).
 */

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures/onnx-interop');

async function checkModel(file: string, batch: number, params: string[], perParam: number) {
  const model = decodeModel(fs.readFileSync(path.join(dir, file)));
  const b = new GraphBuilder(model.graph);
  const input = model.graph.inputs.find((v) => !model.graph.initializers.has(v.name));
  if (!input?.shape) throw new Error('model input without shape');
  const dims = input.shape.map((d, i) => (i === 0 ? batch : (d as number)));
  // The checked weights become graph inputs, so finite differences need no new session.
  const weights = new Map(params.map((p) => [p, model.graph.initializers.get(p) as TensorData]));
  for (const [p, w] of weights) {
    model.graph.initializers.delete(p);
    b.input(p, 'float32', w.dims);
  }
  const stats = decomposeBatchNormForTraining(b);
  const logits = model.graph.outputs[0].name;
  const rng = mulberry32(5);
  const classes = model.graph.outputs[0].shape?.[1];
  if (typeof classes !== 'number') throw new Error('logits without a class dim');
  const rows = Array.from({ length: batch * classes }, () => rng() * 2 - 1);
  const r = b.initializer('R', f32([batch, classes], rows));
  const loss = b.op('ReduceSum', [b.op('Mul', [logits, r])], { keepdims: attr.int(0) });
  const grads = backward(b, { loss, wrt: params });
  model.graph.outputs.splice(0, model.graph.outputs.length);
  b.output(loss, 'float32');
  for (const p of params) b.output(grads.get(p) as string, 'float32');
  const session = await createSession(b.toModel(), { threads: 1 });
  const x = f32(dims, Array.from({ length: dims.reduce((a, c) => a * c, 1) }, () => rng() * 2 - 1));
  const feeds: Record<string, TensorData> = { [input.name]: x, ...Object.fromEntries(weights) };
  const analytic = await session.run(feeds);
  const lossWith = async (p: string, values: Float32Array) =>
    Number((await session.run({ ...feeds, [p]: { ...(weights.get(p) as TensorData), data: values } }, [loss]))[loss].data[0]);
  let worst = 0;
  for (const p of params) {
    const w = weights.get(p) as TensorData;
    const g = analytic[grads.get(p) as string].data as Float32Array;
    const scale = Math.max(...Array.from(g, Math.abs));
    for (let k = 0; k < perParam; k++) {
      const i = Math.floor(rng() * w.data.length);
      // small: ReLU kinks and batch statistics make larger steps visibly nonlinear
      const eps = 1e-3;
      const plus = (w.data as Float32Array).slice();
      const minus = (w.data as Float32Array).slice();
      plus[i] += eps;
      minus[i] -= eps;
      const num = ((await lossWith(p, plus)) - (await lossWith(p, minus))) / (plus[i] - minus[i]);
      worst = Math.max(worst, Math.abs(num - g[i]) / (Math.abs(num) + scale));
    }
  }
  await session.release();
  return { worst, stats };
}

describe('gradients of torch.onnx-exported models', () => {
  it('tiny CNN exported in train mode (opset 13 batch norm)', async () => {
    const { worst, stats } = await checkModel('tiny_cnn_train_opset13.onnx', 2, ['features.0.weight', 'features.7.weight', 'classifier.weight'], 4);
    expect(stats).toHaveLength(3);
    expect(worst).toBeLessThan(2e-2);
  });

  it('MobileNetV3-Small (symbolic batch, depthwise 5×5, squeeze-excite, hard-swish as HardSigmoid·Mul)', async () => {
    const { worst } = await checkModel('mobilenet_v3_small_eval_opset13.onnx', 1, ['onnx::Conv_514', 'features.1.block.1.fc1.weight', 'onnx::Conv_520'], 3);
    expect(worst).toBeLessThan(2e-2);
  });
});
