import { GraphBuilder } from '../../src/onnx/builder.ts';
import { attr, type Model } from '../../src/onnx/ir.ts';
import { batchNorm, conv, flatten, globalAveragePool, maxPool } from '../../src/onnx/ops.ts';
import { type FixtureTensor, toF32 } from './helpers.ts';

export const TINY_RESNET_PARAMS = [
  'c1.weight', 'b1.weight', 'b1.bias', 'c2.weight', 'b2.weight', 'b2.bias', 'dw.weight', 'b3.weight', 'b3.bias', 'fc.weight', 'fc.bias',
];
export const TINY_RESNET_BN_STATS = ['b1', 'b2', 'b3'].flatMap((bn) => [`${bn}.running_mean`, `${bn}.running_var`]);

/**
 * The fixtures' tiny residual network, in the catalog's form (input 'input', output 'logits',
 * batch-norm in inference form with running statistics as initializers):
 *   a = ReLU(BN(conv3×3 s2 p1, 3→8));  b = HardSwish(BN(dw3×3(ReLU(BN(conv3×3 p1, 8→8)))))
 *   logits = Linear(GAP(MaxPool2(a + b)))
 * BN momentum 0.1 in PyTorch's convention is ONNX momentum 0.9.
 */
export function tinyResnet(params: Record<string, FixtureTensor>, batch: number | string = 'N'): Model {
  const b = new GraphBuilder();
  for (const name of [...TINY_RESNET_PARAMS, ...TINY_RESNET_BN_STATS]) b.initializer(name, toF32(params[name]));
  b.input('input', 'float32', [batch, 3, 16, 16]);
  const bn = (x: string, n: string) => batchNorm(b, x, `${n}.weight`, `${n}.bias`, `${n}.running_mean`, `${n}.running_var`, { epsilon: 1e-5, momentum: 0.9 });
  const a = b.op('Relu', [bn(conv(b, 'input', 'c1.weight', undefined, { kernelShape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }), 'b1')]);
  const h = b.op('Relu', [bn(conv(b, a, 'c2.weight', undefined, { kernelShape: [3, 3], pads: [1, 1, 1, 1] }), 'b2')]);
  const d = b.op('HardSwish', [bn(conv(b, h, 'dw.weight', undefined, { kernelShape: [3, 3], pads: [1, 1, 1, 1], group: 8 }), 'b3')]);
  const pooled = globalAveragePool(b, maxPool(b, b.op('Add', [a, d]), { kernelShape: [2, 2], strides: [2, 2] }));
  b.opN('Gemm', [flatten(b, pooled), 'fc.weight', 'fc.bias'], { transB: attr.int(1) }, ['logits']);
  b.output('logits', 'float32', [batch, 4]);
  return b.toModel();
}
