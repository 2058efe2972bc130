import { GraphBuilder } from '../onnx/builder.ts';
import { constInts, constScalar } from '../onnx/ops.ts';
import { attr, f32, type TensorData } from '../onnx/ir.ts';
import { constantTensor, kaimingNormalFanOut, type LinearInit, Rng, torchDefaultLinear, xavierUniformTensor } from './init.ts';
import { IMAGENET_MEAN, IMAGENET_STD, type ModelSpec } from './spec.ts';

export type Activation = 'relu' | 'relu6' | 'hardswish' | 'silu' | 'sigmoid' | 'hardsigmoid' | 'gelu' | null;

export interface ConvOptions {
  cin: number;
  cout: number;
  k: number;
  stride?: number;
  dilation?: number;
  groups?: number;
  /** Defaults to torchvision's "same" padding for odd kernels: (k-1)/2 · dilation. */
  pad?: number;
  bias?: boolean;
}

export interface BnOptions {
  eps?: number;
  /** PyTorch's momentum (weight of the new batch statistic); ONNX stores 1 − this. */
  momentum?: number;
}

/**
 * Builds an image classifier graph layer by layer, naming initializers after PyTorch's state_dict
 * keys (`layer1.0.conv1.weight`, `bn1.running_mean`) so torchvision weights map by name, and
 * recording which params belong to which block.
 */
export class NetBuilder {
  readonly b = new GraphBuilder();
  readonly rng: Rng;
  private readonly params: string[] = [];
  private readonly bnStats: string[] = [];
  private readonly blocks: { name: string; params: string[] }[] = [];
  private current: string[] | null = null;

  constructor(seed: number, inputSize: number) {
    this.rng = new Rng(seed);
    this.b.input('input', 'float32', ['N', 3, inputSize, inputSize]);
  }

  /** Runs `fn` with every param it creates recorded as one block named `name`. */
  block<T>(name: string, fn: () => T): T {
    if (this.current) throw new Error(`block '${name}' nested in another block`);
    const params: string[] = [];
    this.current = params;
    try {
      return fn();
    } finally {
      this.current = null;
      this.blocks.push({ name, params });
    }
  }

  param(name: string, value: TensorData): string {
    if (!this.current) throw new Error(`param '${name}' created outside a block`);
    if (this.b.graph.initializers.has(name)) throw new Error(`param '${name}' defined twice`);
    this.b.initializer(name, value);
    this.params.push(name);
    this.current.push(name);
    return name;
  }

  conv(x: string, name: string, o: ConvOptions, init: (dims: number[]) => TensorData = (d) => kaimingNormalFanOut(this.rng, d)): string {
    const groups = o.groups ?? 1;
    const stride = o.stride ?? 1;
    const dilation = o.dilation ?? 1;
    const pad = o.pad ?? Math.floor((o.k - 1) / 2) * dilation;
    if (o.cin % groups !== 0 || o.cout % groups !== 0) throw new Error(`${name}: channels not divisible by groups`);
    const inputs = [x, this.param(`${name}.weight`, init([o.cout, o.cin / groups, o.k, o.k]))];
    // torchvision zeroes conv biases (SE layers are the only biased convs here).
    if (o.bias) inputs.push(this.param(`${name}.bias`, constantTensor([o.cout], 0)));
    return this.b.op('Conv', inputs, {
      kernel_shape: attr.ints([o.k, o.k]),
      strides: attr.ints([stride, stride]),
      pads: attr.ints([pad, pad, pad, pad]),
      dilations: attr.ints([dilation, dilation]),
      group: attr.int(groups),
    }, name);
  }

  /** BatchNormalization in inference form; weight 1, bias 0, running mean 0, var 1 as in PyTorch. */
  bn(x: string, name: string, c: number, o: BnOptions = {}): string {
    const scale = this.param(`${name}.weight`, constantTensor([c], 1));
    const bias = this.param(`${name}.bias`, constantTensor([c], 0));
    const mean = this.stat(`${name}.running_mean`, constantTensor([c], 0));
    const variance = this.stat(`${name}.running_var`, constantTensor([c], 1));
    return this.b.op('BatchNormalization', [x, scale, bias, mean, variance], {
      epsilon: attr.float(o.eps ?? 1e-5),
      momentum: attr.float(1 - (o.momentum ?? 0.1)),
    }, name);
  }

  act(x: string, a: Activation): string {
    switch (a) {
      case null: return x;
      case 'relu': return this.b.op('Relu', [x]);
      // nn.ReLU6: Clip with constant bounds (Constant nodes: the initializers stay the weights).
      case 'relu6': return this.b.op('Clip', [x, constScalar(this.b, 0), constScalar(this.b, 6)]);
      // nn.GELU() (approximate='none'): x·½(1 + erf(x/√2)); opset 17 has no Gelu op.
      case 'gelu': return this.gelu(x);
      case 'sigmoid': return this.b.op('Sigmoid', [x]);
      case 'hardswish': return this.b.op('HardSwish', [x]);
      // PyTorch's hardsigmoid is relu6(x+3)/6; ONNX's default alpha is 0.2, so set both.
      case 'hardsigmoid': return this.b.op('HardSigmoid', [x], { alpha: attr.float(1 / 6), beta: attr.float(0.5) });
      // SiLU has no ONNX op at opset 17: x·σ(x).
      case 'silu': return this.b.op('Mul', [x, this.b.op('Sigmoid', [x])]);
    }
  }

  /** torchvision's Conv2dNormActivation: `${name}.0` conv (no bias), `${name}.1` BN, activation. */
  convBnAct(x: string, name: string, o: ConvOptions, act: Activation, bn: BnOptions = {}): string {
    const y = this.conv(x, `${name}.0`, { ...o, bias: false });
    return this.act(this.bn(y, `${name}.1`, o.cout, bn), act);
  }

  /** torchvision.ops.SqueezeExcitation: x · scaleAct(fc2(act(fc1(avgpool(x))))). */
  squeezeExcite(x: string, name: string, c: number, squeeze: number, act: Activation, scaleAct: Activation): string {
    const s = this.b.op('GlobalAveragePool', [x]);
    const h = this.act(this.conv(s, `${name}.fc1`, { cin: c, cout: squeeze, k: 1, bias: true }), act);
    const g = this.act(this.conv(h, `${name}.fc2`, { cin: squeeze, cout: c, k: 1, bias: true }), scaleAct);
    return this.b.op('Mul', [x, g]);
  }

  maxPool(x: string, k: number, stride: number, pad: number): string {
    return this.b.op('MaxPool', [x], {
      kernel_shape: attr.ints([k, k]), strides: attr.ints([stride, stride]), pads: attr.ints([pad, pad, pad, pad]),
    });
  }

  /** AdaptiveAvgPool2d(1) then flatten(1): [N,C,H,W] → [N,C]. */
  poolFlatten(x: string): string {
    return this.b.op('Flatten', [this.b.op('GlobalAveragePool', [x])], { axis: attr.int(1) });
  }

  /** nn.Linear as Gemm(x, W[out,in]ᵀ, b). */
  linear(x: string, name: string, fin: number, fout: number, init: LinearInit, output?: string): string {
    const t = init(fout, fin);
    const w = this.param(`${name}.weight`, t.weight);
    const bias = this.param(`${name}.bias`, t.bias);
    return this.b.opN('Gemm', [x, w, bias], { transB: attr.int(1) }, output ? [output] : 1, name)[0];
  }

  /**
   * nn.Dropout: the ratio is a constant initializer and training_mode is left out (inference);
   * the training step supplies training_mode where it wants dropout active.
   */
  dropout(x: string, name: string, p: number): string {
    const ratio = this.b.initializer(`${name}.ratio`, f32([], [p]));
    return this.b.op('Dropout', [x, ratio], {}, name);
  }

  /** nn.GELU() (exact, approximate='none'): x · ½(1 + erf(x/√2)), as PyTorch computes it. */
  gelu(x: string): string {
    const b = this.b;
    const e = b.op('Erf', [b.op('Mul', [x, constScalar(b, Math.SQRT1_2)])]);
    return b.op('Mul', [b.op('Mul', [x, constScalar(b, 0.5)]), b.op('Add', [e, constScalar(b, 1)])]);
  }

  /** nn.LayerNorm(c) over the last axis (weight 1, bias 0): ONNX LayerNormalization, axis −1. */
  layerNorm(x: string, name: string, c: number, eps = 1e-5): string {
    const scale = this.param(`${name}.weight`, constantTensor([c], 1));
    const bias = this.param(`${name}.bias`, constantTensor([c], 0));
    return this.b.op('LayerNormalization', [x, scale, bias], { axis: attr.int(-1), epsilon: attr.float(eps) }, name);
  }

  /** torchvision's LayerNorm2d on NCHW: permute to NHWC, LayerNorm over C, permute back. */
  layerNorm2d(x: string, name: string, c: number, eps = 1e-6): string {
    return this.transpose(this.layerNorm(this.transpose(x, [0, 2, 3, 1]), name, c, eps), [0, 3, 1, 2]);
  }

  transpose(x: string, perm: number[]): string {
    return this.b.op('Transpose', [x], { perm: attr.ints(perm) });
  }

  /** Reshape to constant dims (0 copies the input's dim, −1 is inferred). */
  reshape(x: string, dims: number[]): string {
    return this.b.op('Reshape', [x, constInts(this.b, dims)]);
  }

  private batchDim: string | null = null;

  /**
   * Reshape to [N, …dims] with N read from the graph input's shape: rows [N·L, C] go back to
   * images or sequences with the batch dim symbolic again for shape inference (a −1 there would
   * leave it unknown).
   */
  reshapeBatch(x: string, dims: number[]): string {
    this.batchDim ??= this.b.op('Gather', [this.b.op('Shape', ['input']), constInts(this.b, [0])]);
    return this.b.op('Reshape', [x, this.b.op('Concat', [this.batchDim, constInts(this.b, dims)], { axis: attr.int(0) })]);
  }

  /**
   * nn.MultiheadAttention(dim, heads, batch_first=True) as self-attention on tokens held as
   * [N·seq, dim] rows: one Gemm with the packed `in_proj_weight` ([3·dim, dim], q, k, v stacked),
   * heads as [N, heads, seq, dim/heads], softmax(q·kᵀ/√d)·v, then `out_proj`. PyTorch's init:
   * xavier-uniform in_proj, zero biases, out_proj as nn.Linear.
   */
  selfAttention(x: string, name: string, dim: number, heads: number, seq: number): string {
    if (dim % heads !== 0) throw new Error(`${name}: ${dim} not divisible by ${heads} heads`);
    const d = dim / heads;
    const w = this.param(`${name}.in_proj_weight`, xavierUniformTensor(this.rng, [3 * dim, dim]));
    const bias = this.param(`${name}.in_proj_bias`, constantTensor([3 * dim], 0));
    const qkv = this.b.op('Gemm', [x, w, bias], { transB: attr.int(1) });
    // [N·seq, 3·dim] → [N, seq, 3, heads, d] → [3, N, heads, seq, d]: one Transpose for all three
    const split = this.transpose(this.reshape(qkv, [-1, seq, 3, heads, d]), [2, 0, 3, 1, 4]);
    const [q, k, v] = this.b.opN('Split', [split], { axis: attr.int(0) }, 3).map((t) => this.b.op('Squeeze', [t, constInts(this.b, [0])]));
    // PyTorch scales q before the product (q / √d), as here
    const scores = this.b.op('MatMul', [this.b.op('Mul', [q, constScalar(this.b, 1 / Math.sqrt(d))]), this.transpose(k, [0, 1, 3, 2])]);
    const attn = this.b.op('Softmax', [scores], { axis: attr.int(-1) });
    const out = this.reshape(this.transpose(this.b.op('MatMul', [attn, v]), [0, 2, 1, 3]), [-1, dim]);
    const init = torchDefaultLinear(this.rng);
    const ow = this.param(`${name}.out_proj.weight`, init(dim, dim).weight);
    const ob = this.param(`${name}.out_proj.bias`, constantTensor([dim], 0));
    return this.b.op('Gemm', [out, ow, ob], { transB: attr.int(1) }, `${name}.out_proj`);
  }

  stat(name: string, value: TensorData): string {
    this.b.initializer(name, value);
    this.bnStats.push(name);
    return name;
  }

  /** Closes the graph: `logits` must already be the output of the head's last node. */
  finish(o: { name: string; numClasses: number; inputSize: number; mean?: [number, number, number]; std?: [number, number, number] }): ModelSpec {
    if (this.blocks.length === 0) throw new Error('a model needs at least a head block');
    this.b.output('logits', 'float32', ['N', o.numClasses]);
    const mean = o.mean ?? IMAGENET_MEAN;
    const std = o.std ?? IMAGENET_STD;
    const model = this.b.toModel({
      'studio.architecture': o.name,
      'studio.input_size': String(o.inputSize),
      'studio.mean': JSON.stringify(mean),
      'studio.std': JSON.stringify(std),
    });
    return {
      name: o.name,
      model,
      params: [...this.params],
      bnStats: [...this.bnStats],
      blocks: this.blocks.map((b) => [...b.params]),
      blockNames: this.blocks.map((b) => b.name),
      head: [...this.blocks[this.blocks.length - 1].params],
      inputSize: o.inputSize,
      mean,
      std,
      numClasses: o.numClasses,
    };
  }
}
