import { type Attr, attr } from '../../src/onnx/ir.ts';
import { type Gen, type InputSpec, type OpCase, avoiding, distinct, positive } from './gradcheck.ts';

/** Gradient-check cases, several attribute combinations per op; every rule needs at least one. */

const X = (shape: number[], gen?: Gen): InputSpec => ({ shape, gen });
const I = (values: number[], shape = [values.length]): InputSpec => ({ shape, ints: values });
const F = (values: number[], shape: number[] = []): InputSpec => ({ shape, floats: values });
const NONE: InputSpec = { shape: [], omitted: true };
const ints = attr.ints;
const int = attr.int;

const one = (label: string, op: string, inputs: InputSpec[], attrs: Record<string, Attr> = {}, extra: Partial<OpCase> = {}): OpCase =>
  ({ label, op, inputs, attrs, ...extra });

/** numpy broadcasting pairs shared by every binary op */
export const BROADCAST_SHAPES: [number[], number[]][] = [
  [[3, 4], [3, 4]],
  [[2, 3, 4], [4]],
  [[2, 3, 4], [3, 1]],
  [[2, 1, 4], [1, 3, 1]],
  [[3, 4], []],
  [[1, 4], [3, 1]],
];

const binary = (op: string, genA?: Gen, genB?: Gen): OpCase[] =>
  BROADCAST_SHAPES.map(([a, b]) => one(`${op} [${a}]·[${b}]`, op, [X(a, genA), X(b, genB)]));

const unary = (op: string, gen?: Gen, attrs: Record<string, Attr> = {}, label = op): OpCase => one(label, op, [X([3, 5], gen)], attrs);

const image = (n: number, c: number, h: number, w: number, gen?: Gen) => X([n, c, h, w], gen);

export const CASES: OpCase[] = [
  // ---- elementwise
  ...binary('Add'),
  ...binary('Sub'),
  ...binary('Mul'),
  ...binary('Div', undefined, positive),
  ...binary('Pow', positive),
  ...binary('Max'),
  ...binary('Min'),
  one('Sum of 3, broadcast', 'Sum', [X([2, 3, 4]), X([3, 1]), X([4])]),
  one('Max of 3', 'Max', [X([2, 3]), X([2, 3]), X([3])]),
  one('Where broadcast', 'Where', [{ shape: [3, 1], bools: [true, false, true] }, X([3, 4]), X([4])]),
  unary('Neg'),
  unary('Abs'),
  unary('Exp'),
  unary('Log', positive),
  unary('Sqrt', positive),
  unary('Reciprocal', positive),
  unary('Identity'),
  one('Cast to double', 'Cast', [X([3, 4])], { to: int(11) }, { outDtype: 'float64' }),
  one('CastLike double', 'CastLike', [X([3, 4]), F([0])], {}, { outDtype: undefined }),
  // ---- activations
  unary('Relu'),
  unary('LeakyRelu', undefined, { alpha: attr.float(0.1) }),
  one('Clip relu6', 'Clip', [X([4, 6], avoiding(-2, 8, [0, 6])), F([0]), F([6])]),
  one('Clip min only', 'Clip', [X([4, 6]), F([-0.2])]),
  unary('Sigmoid'),
  unary('Tanh'),
  unary('HardSigmoid', avoiding(-5, 5, [-3, 3]), { alpha: attr.float(1 / 6), beta: attr.float(0.5) }),
  unary('HardSigmoid', avoiding(-5, 5, [-2.5, 2.5]), {}, 'HardSigmoid default'),
  unary('HardSwish', avoiding(-5, 5, [-3, 3])),
  unary('Softplus'),
  unary('Elu', undefined, { alpha: attr.float(0.7) }),
  unary('Erf'),
  one('PRelu per-channel slope', 'PRelu', [X([2, 3, 2, 2]), X([3, 1, 1])]),
  unary('Softmax'),
  one('Softmax axis 1 of 3-D', 'Softmax', [X([2, 3, 4])], { axis: int(1) }),
  unary('LogSoftmax'),
  one('LogSoftmax axis 0', 'LogSoftmax', [X([3, 4])], { axis: int(0) }),
  one('Softmax last axis of 4-D (attention scores)', 'Softmax', [X([1, 2, 3, 4])], { axis: int(-1) }),
  // ---- reductions
  one('ReduceSum axis 1', 'ReduceSum', [X([2, 3, 4]), I([1])], { keepdims: int(0) }),
  one('ReduceSum axes -1,0 keep', 'ReduceSum', [X([2, 3, 4]), I([-1, 0])]),
  one('ReduceSum all', 'ReduceSum', [X([2, 3])], { keepdims: int(0) }),
  one('ReduceMean axes 0,2', 'ReduceMean', [X([2, 3, 4])], { axes: ints([0, 2]), keepdims: int(0) }),
  one('ReduceMean all keep', 'ReduceMean', [X([2, 3, 4])]),
  one('ReduceSumSquare', 'ReduceSumSquare', [X([2, 3, 4])], { axes: ints([1]) }),
  one('ReduceLogSumExp', 'ReduceLogSumExp', [X([2, 3, 4])], { axes: ints([2]), keepdims: int(0) }),
  one('ReduceMax', 'ReduceMax', [X([2, 3, 4], distinct)], { axes: ints([1]), keepdims: int(0) }),
  one('ReduceMin all', 'ReduceMin', [X([2, 3, 4], distinct)], { keepdims: int(0) }),
  // ---- shape
  one('Reshape', 'Reshape', [X([2, 3, 4]), I([4, -1])]),
  one('Flatten', 'Flatten', [X([2, 3, 2, 2])], { axis: int(1) }),
  one('Flatten axis 2', 'Flatten', [X([2, 3, 2, 2])], { axis: int(2) }),
  one('Squeeze', 'Squeeze', [X([2, 1, 3]), I([1])]),
  one('Unsqueeze', 'Unsqueeze', [X([2, 3]), I([0, -1])]),
  one('Expand', 'Expand', [X([3, 1]), I([2, 3, 4])]),
  one('Transpose', 'Transpose', [X([2, 3, 4])], { perm: ints([1, 2, 0]) }),
  one('Transpose default', 'Transpose', [X([2, 3, 4])]),
  one('Transpose 5-D (packed q, k, v to heads)', 'Transpose', [X([2, 3, 3, 2, 2])], { perm: ints([2, 0, 3, 1, 4]) }),
  one('Concat axis 1', 'Concat', [X([2, 1, 3]), X([2, 2, 3]), X([2, 3, 3])], { axis: int(1) }),
  one('Concat axis -1', 'Concat', [X([2, 3]), X([2, 2])], { axis: int(-1) }),
  one('Split 2 ways', 'Split', [X([2, 5]), I([2, 3])], { axis: int(1) }, { outputs: 2 }),
  one('Split 3 equal ways, no split input (q, k, v)', 'Split', [X([3, 2, 2])], { axis: int(0) }, { outputs: 3 }),
  one('Split, one output unused', 'Split', [X([6, 2]), I([1, 5])], { axis: int(0) }, { outputs: 2, lossOutputs: [1] }),
  one('Slice', 'Slice', [X([4, 5]), I([1, -3]), I([3, 100]), I([0, 1])]),
  one('Slice step 2', 'Slice', [X([5, 6]), I([0, 1]), I([5, 6]), I([0, 1]), I([2, 2])]),
  one('Slice negative step', 'Slice', [X([5, 4]), I([-1]), I([-100]), I([0]), I([-2])]),
  one('Pad constant', 'Pad', [X([2, 3]), I([1, 0, 2, 1])]),
  one('Pad negative', 'Pad', [X([3, 4]), I([0, -1, 1, 0])]),
  one('Pad reflect', 'Pad', [X([1, 2, 4, 4]), I([0, 0, 1, 2, 0, 0, 2, 1])], { mode: attr.string('reflect') }),
  one('Pad edge', 'Pad', [X([2, 3]), I([0, 2, 1, 1])], { mode: attr.string('edge') }),
  one('Gather axis 1, repeats', 'Gather', [X([3, 4]), I([0, 2, 2, 3, 0], [5])], { axis: int(1) }),
  one('Gather 2-D indices', 'Gather', [X([4, 3]), I([1, 1, 3, 0], [2, 2])]),
  one('GatherElements', 'GatherElements', [X([3, 4]), I([0, 1, 1, 2, 2, 0], [3, 2])], { axis: int(1) }),
  one('Dropout inference', 'Dropout', [X([3, 4])]),
  one('Dropout training ratio 0', 'Dropout', [X([3, 4]), F([0]), { shape: [], bools: [true] }]),
  // ---- matrix products
  ...[0, 1].flatMap((ta) => [0, 1].map((tb) => one(`Gemm transA=${ta} transB=${tb}`, 'Gemm',
    [X(ta ? [4, 3] : [3, 4]), X(tb ? [5, 4] : [4, 5]), X([5])],
    { transA: int(ta), transB: int(tb), alpha: attr.float(0.7), beta: attr.float(1.3) }))),
  one('Gemm C [3,5], no flags', 'Gemm', [X([3, 4]), X([4, 5]), X([3, 5])]),
  one('Gemm C [3,1]', 'Gemm', [X([3, 4]), X([4, 5]), X([3, 1])]),
  one('Gemm no C', 'Gemm', [X([3, 4]), X([5, 4])], { transB: int(1) }),
  one('MatMul', 'MatMul', [X([3, 4]), X([4, 5])]),
  one('MatMul batch·2-D', 'MatMul', [X([2, 3, 4]), X([4, 5])]),
  one('MatMul broadcast batch', 'MatMul', [X([2, 1, 3, 4]), X([3, 4, 2])]),
  one('MatMul 4-D batch (attention: q·kᵀ)', 'MatMul', [X([2, 2, 3, 4]), X([2, 2, 4, 3])]),
  // ---- convolution
  one('Conv 3x3 p1', 'Conv', [image(2, 3, 5, 5), X([4, 3, 3, 3])], { pads: ints([1, 1, 1, 1]) }),
  one('Conv 3x3 s2 p1 bias, odd size', 'Conv', [image(2, 3, 7, 6), X([4, 3, 3, 3]), X([4])], { strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) }),
  one('Conv 3x3 valid', 'Conv', [image(2, 3, 6, 5), X([2, 3, 3, 3])]),
  one('Conv 7x7 depthwise p3 bias (ConvNeXt)', 'Conv', [image(2, 4, 8, 9), X([4, 1, 7, 7]), X([4])], { group: int(4), pads: ints([3, 3, 3, 3]) }),
  one('Conv 4x4/4 RGB patchify bias (ConvNeXt, ViT stems)', 'Conv', [image(2, 3, 8, 12), X([5, 3, 4, 4]), X([5])], { strides: ints([4, 4]) }),
  one('Conv 2x2/2 8ch patchify bias (ConvNeXt downsampling)', 'Conv', [image(2, 8, 4, 6), X([6, 8, 2, 2]), X([6])], { strides: ints([2, 2]) }),
  one('Conv 1x1', 'Conv', [image(2, 3, 4, 3), X([2, 3, 1, 1]), X([2])]),
  one('Conv 1x1 s2', 'Conv', [image(2, 3, 6, 5), X([2, 3, 1, 1])], { strides: ints([2, 2]) }),
  one('Conv 2x3 s(2,1) asymmetric pads dil(1,2)', 'Conv', [image(1, 2, 7, 8), X([3, 2, 2, 3])], { strides: ints([2, 1]), pads: ints([0, 1, 1, 2]), dilations: ints([1, 2]) }),
  // 8+ input channels take the per-tap weight-gradient forms (conv.ts); fewer, the convolution form
  one('Conv 8ch 3x3 s2 p1 dil 1 (batched MatMul dW)', 'Conv', [image(1, 8, 6, 5), X([8, 8, 3, 3]), X([8])], { strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) }),
  one('Conv 8ch 3x3 s2 dil 2 (per-tap GEMM dW)', 'Conv', [image(2, 8, 5, 5), X([9, 8, 3, 3])], { strides: ints([2, 2]), pads: ints([2, 1, 2, 1]), dilations: ints([2, 2]) }),
  one('Conv 8ch 3x3 s2 dil 2 p2 (batched MatMul dW on stride phases)', 'Conv', [image(1, 8, 9, 9), X([8, 8, 3, 3])], { strides: ints([2, 2]), pads: ints([2, 2, 2, 2]), dilations: ints([2, 2]) }),
  one('Conv 3x3 s3 p2, 3 channels (im2col dW on stride phases)', 'Conv', [image(2, 3, 8, 7), X([4, 3, 3, 3])], { strides: ints([3, 3]), pads: ints([2, 2, 1, 0]) }),
  one('Conv 8ch 1x1 8→10 (whole-X MatMul dW)', 'Conv', [image(1, 8, 3, 4), X([10, 8, 1, 1])]),
  one('Conv groups 2 dil 2', 'Conv', [image(2, 4, 7, 7), X([6, 2, 3, 3]), X([6])], { group: int(2), dilations: ints([2, 2]), pads: ints([2, 2, 2, 2]) }),
  one('Conv depthwise s2 k5 p2', 'Conv', [image(2, 4, 9, 9), X([4, 1, 5, 5])], { group: int(4), strides: ints([2, 2]), pads: ints([2, 2, 2, 2]) }),
  one('Conv depthwise s1 p1, non-square (diagonal dW)', 'Conv', [image(2, 4, 6, 5), X([4, 1, 3, 3])], { group: int(4), pads: ints([1, 1, 1, 1]) }),
  one('Conv depthwise s1 k3 dil 2, asymmetric pads (diagonal dW)', 'Conv', [image(1, 3, 9, 8), X([3, 1, 3, 3])], { group: int(3), dilations: ints([2, 2]), pads: ints([2, 1, 1, 2]) }),
  one('Conv depthwise s1 k5 p2, bias (diagonal dW)', 'Conv', [image(2, 2, 7, 7), X([2, 1, 5, 5]), X([2])], { group: int(2), pads: ints([2, 2, 2, 2]) }),
  one('Conv depthwise s2 k3 p1, even non-square', 'Conv', [image(2, 4, 8, 6), X([4, 1, 3, 3])], { group: int(4), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) }),
  one('Conv depthwise s2 k5 p2 bias', 'Conv', [image(1, 3, 8, 8), X([3, 1, 5, 5]), X([3])], { group: int(3), strides: ints([2, 2]), pads: ints([2, 2, 2, 2]) }),
  one('Conv depthwise s2 k3 asymmetric pads', 'Conv', [image(1, 2, 8, 8), X([2, 1, 3, 3])], { group: int(2), strides: ints([2, 2]), pads: ints([1, 0, 0, 1]) }),
  one('Conv depthwise s3 k3', 'Conv', [image(1, 2, 9, 9), X([2, 1, 3, 3])], { group: int(2), strides: ints([3, 3]) }),
  one('Conv depthwise multiplier 2, s3', 'Conv', [image(1, 2, 8, 8), X([4, 1, 3, 3])], { group: int(2), strides: ints([3, 3]) }),
  one('Conv groups 2, 4→6 channels, s1 asymmetric pads', 'Conv', [image(1, 4, 6, 5), X([6, 2, 3, 3])], { group: int(2), pads: ints([1, 0, 2, 1]) }),
  one('Conv depthwise multiplier 2, s1 p1', 'Conv', [image(2, 2, 5, 5), X([4, 1, 3, 3])], { group: int(2), pads: ints([1, 1, 1, 1]) }),
  one('Conv 1-D s1', 'Conv', [X([2, 3, 7]), X([4, 3, 3])], { pads: ints([2, 1]) }),
  one('Conv SAME_UPPER s2', 'Conv', [image(1, 2, 6, 7), X([2, 2, 3, 3])], { strides: ints([2, 2]), auto_pad: attr.string('SAME_UPPER') }),
  one('Conv 1-D', 'Conv', [X([2, 3, 9]), X([2, 3, 3]), X([2])], { strides: ints([2]), pads: ints([1, 0]) }),
  one('Conv frozen weights', 'Conv', [image(1, 2, 5, 5), { shape: [3, 2, 3, 3], frozen: true }]),
  one('ConvTranspose s2 p1 op1 bias', 'ConvTranspose', [image(2, 4, 3, 3), X([4, 3, 3, 3]), X([3])], { strides: ints([2, 2]), pads: ints([1, 1, 1, 1]), output_padding: ints([1, 1]) }),
  one('ConvTranspose groups 2 dil 2', 'ConvTranspose', [image(1, 4, 4, 4), X([4, 1, 3, 3])], { group: int(2), dilations: ints([2, 2]) }),
  one('ConvTranspose 8 out channels k3 s2', 'ConvTranspose', [image(1, 3, 3, 3), X([3, 8, 3, 3])], { strides: ints([2, 2]) }),
  one('ConvTranspose k2 s2', 'ConvTranspose', [image(2, 3, 3, 4), X([3, 2, 2, 2])], { strides: ints([2, 2]) }),
  // ---- pooling
  one('MaxPool k3 s2 p1', 'MaxPool', [image(2, 3, 7, 7, distinct)], { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) }),
  one('MaxPool k2 s2', 'MaxPool', [image(1, 2, 6, 6, distinct)], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) }),
  one('MaxPool k3 s2 ceil', 'MaxPool', [image(1, 2, 6, 6, distinct)], { kernel_shape: ints([3, 3]), strides: ints([2, 2]), ceil_mode: int(1) }),
  one('AveragePool k2 s2', 'AveragePool', [image(2, 3, 6, 6)], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) }),
  one('AveragePool k3 s2 p1', 'AveragePool', [image(1, 2, 7, 6)], { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) }),
  one('AveragePool k3 s2 p1 count pad', 'AveragePool', [image(1, 2, 7, 6)], { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]), count_include_pad: int(1) }),
  one('AveragePool k3 s2 ceil', 'AveragePool', [image(1, 2, 6, 6)], { kernel_shape: ints([3, 3]), strides: ints([2, 2]), ceil_mode: int(1) }),
  one('GlobalAveragePool', 'GlobalAveragePool', [image(2, 3, 4, 5)]),
  one('GlobalMaxPool', 'GlobalMaxPool', [image(2, 3, 4, 5, distinct)]),
  // ---- normalization
  one('BatchNormalization inference', 'BatchNormalization', [image(2, 3, 4, 4), X([3]), X([3]), X([3]), X([3], positive)], { epsilon: attr.float(1e-3) }),
  one('BatchNormalization training (decomposed)', 'BatchNormalization',
    [image(3, 2, 4, 4), X([2]), X([2]), F([0.1, -0.2], [2]), F([1.5, 0.7], [2])],
    { training_mode: int(1), momentum: attr.float(0.9) }, { outputs: 3, lossOutputs: [0], decomposeBatchNorm: true }),
  // ---- losses
  one('SoftmaxCrossEntropyLoss mean', 'SoftmaxCrossEntropyLoss', [X([4, 5]), I([0, 3, 1, 4])]),
  one('SoftmaxCrossEntropyLoss sum, class weights', 'SoftmaxCrossEntropyLoss', [X([4, 5]), I([0, 3, 3, 4]), F([1, 0.5, 2, 0.7, 1.5], [5])], { reduction: attr.string('sum') }),
  one('SoftmaxCrossEntropyLoss mean, weights, ignore_index', 'SoftmaxCrossEntropyLoss', [X([4, 5]), I([2, -1, 3, 2]), F([1, 0.5, 2, 0.7, 1.5], [5])], { ignore_index: int(-1) }),
  one('SoftmaxCrossEntropyLoss none, 3-D, ignore_index', 'SoftmaxCrossEntropyLoss', [X([2, 3, 4]), I([0, 2, 1, 7, 7, 1, 0, 2], [2, 4])], { reduction: attr.string('none'), ignore_index: int(7) }),
  one('SoftmaxCrossEntropyLoss with log_prob used', 'SoftmaxCrossEntropyLoss', [X([3, 4]), I([1, 0, 3])], {}, { outputs: 2 }),
  // ---- layer norm
  one('LayerNormalization last axis', 'LayerNormalization', [X([2, 3, 4]), X([4]), X([4])], { epsilon: attr.float(1e-3) }),
  one('LayerNormalization rows, eps 1e-6 (ConvNeXt, ViT)', 'LayerNormalization', [X([6, 5]), X([5]), X([5])], { epsilon: attr.float(1e-6) }),
  one('LayerNormalization axis 1, no bias', 'LayerNormalization', [X([2, 3, 4]), X([3, 4])], { axis: int(1) }),
  // ---- resize
  one('Resize linear half_pixel x2', 'Resize', [image(1, 2, 3, 4), NONE, F([1, 1, 2, 2], [4])], { mode: attr.string('linear') }),
  one('Resize linear align_corners sizes', 'Resize', [image(1, 2, 3, 4), NONE, NONE, I([1, 2, 5, 7])], { mode: attr.string('linear'), coordinate_transformation_mode: attr.string('align_corners') }),
  one('Resize linear down 0.5', 'Resize', [image(1, 1, 6, 8), NONE, F([1, 1, 0.5, 0.5], [4])], { mode: attr.string('linear'), coordinate_transformation_mode: attr.string('pytorch_half_pixel') }),
  one('Resize nearest asymmetric floor x2', 'Resize', [image(1, 2, 3, 3), NONE, F([1, 1, 2, 2], [4])], { mode: attr.string('nearest'), coordinate_transformation_mode: attr.string('asymmetric'), nearest_mode: attr.string('floor') }),
  one('Resize nearest half_pixel x3 width', 'Resize', [image(1, 2, 3, 3), NONE, F([1, 1, 1, 3], [4])], { mode: attr.string('nearest') }),
];
