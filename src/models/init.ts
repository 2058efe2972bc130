import { f32, type TensorData } from '../onnx/ir.ts';

/**
 * A small seeded PRNG (sfc32) so that a model made with the same seed has the same weights on any
 * machine; Math.random cannot be seeded.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | null = null;

  constructor(seed: number) {
    // splitmix32 spreads a small integer seed over the four words of state.
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.uint32();
  }

  uint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.uint32() / 4294967296;
  }

  /** Standard normal by Marsaglia's polar method (Box–Muller without the trigonometry), in pairs. */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u: number;
    let v: number;
    let s: number;
    do {
      u = this.uniform() * 2 - 1;
      v = this.uniform() * 2 - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const f = Math.sqrt((-2 * Math.log(s)) / s);
    this.spare = v * f;
    return u * f;
  }
}

const size = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

export function normalTensor(rng: Rng, dims: number[], std: number): TensorData {
  const data = new Float32Array(size(dims));
  for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
  return f32(dims, data);
}

export function uniformTensor(rng: Rng, dims: number[], bound: number): TensorData {
  const data = new Float32Array(size(dims));
  for (let i = 0; i < data.length; i++) data[i] = (rng.uniform() * 2 - 1) * bound;
  return f32(dims, data);
}

export function constantTensor(dims: number[], value: number): TensorData {
  return f32(dims, new Float32Array(size(dims)).fill(value));
}

/**
 * torchvision's conv init: kaiming_normal_(mode='fan_out', nonlinearity='relu'),
 * std = sqrt(2 / fan_out) with fan_out = out_channels · kh · kw (groups do not enter).
 */
export function kaimingNormalFanOut(rng: Rng, dims: number[]): TensorData {
  const fanOut = dims[0] * size(dims.slice(2));
  return normalTensor(rng, dims, Math.sqrt(2 / fanOut));
}

/** Weight [out,in] and bias [out] of a linear layer, made in that order (PyTorch's order). */
export type LinearInit = (fout: number, fin: number) => { weight: TensorData; bias: TensorData };

/**
 * PyTorch's default nn.Linear init: kaiming_uniform_(a=√5) gives the bound gain·√(3/fan_in) with
 * gain = √(2/(1+5)), i.e. 1/√fan_in; the bias uses the same bound. (ResNet's fc.)
 */
export const torchDefaultLinear = (rng: Rng): LinearInit => (fout, fin) => ({
  weight: uniformTensor(rng, [fout, fin], 1 / Math.sqrt(fin)),
  bias: uniformTensor(rng, [fout], 1 / Math.sqrt(fin)),
});

/** MobileNetV3's Linear init: normal(0, 0.01), zero bias. */
export const normalLinear = (rng: Rng, std: number): LinearInit => (fout, fin) => ({
  weight: normalTensor(rng, [fout, fin], std),
  bias: constantTensor([fout], 0),
});

/** EfficientNet's Linear init: uniform in ±1/√out_features, zero bias. */
export const uniformFanOutLinear = (rng: Rng): LinearInit => (fout, fin) => ({
  weight: uniformTensor(rng, [fout, fin], 1 / Math.sqrt(fout)),
  bias: constantTensor([fout], 0),
});

/**
 * nn.init.trunc_normal_(std, a, b): normal(0, std) redrawn until inside [a, b] (absolute bounds,
 * PyTorch's defaults ±2, so ±100 std at ConvNeXt's 0.02: a draw is practically never redrawn).
 */
export function truncNormalTensor(rng: Rng, dims: number[], std: number, a = -2, b = 2): TensorData {
  const data = new Float32Array(size(dims));
  for (let i = 0; i < data.length; i++) {
    let v: number;
    do v = rng.normal() * std; while (v < a || v > b);
    data[i] = v;
  }
  return f32(dims, data);
}

/** nn.init.xavier_uniform_ of a [out, in, …] weight: uniform in ±√(6 / (fan_in + fan_out)). */
export function xavierUniformTensor(rng: Rng, dims: number[]): TensorData {
  const rest = size(dims.slice(2));
  return uniformTensor(rng, dims, Math.sqrt(6 / (dims[1] * rest + dims[0] * rest)));
}

/** ConvNeXt's Linear init: trunc_normal_(std 0.02), zero bias. */
export const truncNormalLinear = (rng: Rng, std = 0.02): LinearInit => (fout, fin) => ({
  weight: truncNormalTensor(rng, [fout, fin], std),
  bias: constantTensor([fout], 0),
});

/** ViT's MLP init (torchvision MLPBlock): xavier_uniform_ weight, normal(0, 1e-6) bias. */
export const xavierLinear = (rng: Rng): LinearInit => (fout, fin) => ({
  weight: xavierUniformTensor(rng, [fout, fin]),
  bias: normalTensor(rng, [fout], 1e-6),
});

/** A zero weight and bias (ViT's heads.head, as torchvision initialises it). */
export const zeroLinear: LinearInit = (fout, fin) => ({ weight: constantTensor([fout, fin], 0), bias: constantTensor([fout], 0) });
