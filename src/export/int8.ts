import { badInput } from '../kernel/errors.ts';
import { consumers, eliminateDeadNodes, topoSort, valueNames } from '../onnx/graph-utils.ts';
import { attr, getInt, type Graph, type Model, type Node, type TensorData } from '../onnx/ir.ts';
import type { ActivationRanges } from './calibrate.ts';

/**
 * The int8 variant, in QDQ form (QuantizeLinear/DequantizeLinear pairs that onnxruntime fuses
 * into integer kernels where it can). Weights: int8, symmetric, one scale per output channel
 * (zero point 0, scale = max|w_c| / 127), read through DequantizeLinear(axis = output channel).
 *
 * Two modes:
 * - `static` (use it when calibration images exist): every activation is also quantized, uint8
 *   asymmetric per tensor from its calibrated min/max (calibrate.ts), and Conv/Gemm biases become
 *   int32 at scale s_x·s_w[c] — the pattern onnxruntime rewrites into QLinearConv/QGemm/QLinearAdd
 *   (tests/export check QLinearConv runs). A Relu whose input only it reads is dropped: quantizing
 *   with the Relu output's range (zero point 0) clamps negatives to 0 exactly as the Relu did.
 * - `weights`: weights only, activations stay float32, no calibration. Same ~4× smaller file, but
 *   onnxruntime keeps the DequantizeLinear (it does not constant-fold QDQ) and dequantizes every
 *   run, so it is slower than fp32.
 * Measured on onnxruntime-node 1.30 CPU (bench/export.ts, 2 cores, 224 px, noisy shared machine):
 * resnet18 static int8 ran b32 at ~2× fp32's images/s and b1 several times faster, weight-only at
 * ~0.4×; on mobilenet_v3_small static int8 was slower than fp32 (the Q/DQ pairs around HardSwish,
 * HardSigmoid and the SE Mul that have no integer kernel cost more than the small convs save).
 * Dynamic quantization (ConvInteger/MatMulInteger) is not implemented and was not measured.
 */

export type Int8Options = { mode: 'weights' } | { mode: 'static'; ranges: ActivationRanges };

export interface QuantizedWeight {
  q: TensorData;
  scale: TensorData;
  zeroPoint: TensorData;
  axis: number;
}

/** Symmetric per-channel int8 of `w` along `axis`. */
export function quantizePerChannel(w: TensorData, axis: number): QuantizedWeight {
  if (w.dtype !== 'float32') throw badInput(`int8: weight is ${w.dtype}, expected float32`);
  const channels = w.dims[axis];
  const inner = w.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const data = w.data as Float32Array;
  const maxAbs = new Float32Array(channels);
  for (let i = 0; i < data.length; i++) {
    const c = Math.floor(i / inner) % channels;
    const a = Math.abs(data[i]);
    if (a > maxAbs[c]) maxAbs[c] = a;
  }
  // an all-zero channel still needs a positive scale
  const scale = Float32Array.from(maxAbs, (m) => (m > 0 ? m / 127 : 1));
  const q = new Int8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const c = Math.floor(i / inner) % channels;
    q[i] = Math.max(-127, Math.min(127, Math.round(data[i] / scale[c])));
  }
  return {
    q: { dtype: 'int8', dims: [...w.dims], data: q },
    scale: { dtype: 'float32', dims: [channels], data: scale },
    zeroPoint: { dtype: 'int8', dims: [channels], data: new Int8Array(channels) },
    axis,
  };
}

/** uint8 asymmetric scale and zero point covering [min, max] and 0 (so that 0 is exact). */
export function activationParams(r: { min: number; max: number }): { scale: number; zeroPoint: number } {
  const lo = Math.min(r.min, 0);
  const hi = Math.max(r.max, 0);
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  return { scale, zeroPoint: Math.max(0, Math.min(255, Math.round(-lo / scale))) };
}

/** The output-channel axis of a node's weight (input 1), or null for nodes that are not quantized. */
function weightAxis(n: Node, g: Graph): number | null {
  if ((n.domain ?? '') !== '') return null;
  const w = g.initializers.get(n.inputs[1] ?? '');
  if (!w || w.dtype !== 'float32' || w.dims.length < 2) return null;
  if (n.opType === 'Conv') return 0;
  if (n.opType === 'Gemm') return getInt(n, 'transB', 0) ? 0 : 1;
  if (n.opType === 'MatMul' && w.dims.length === 2) return 1;
  return null;
}

class Namer {
  private readonly taken: Set<string>;
  constructor(g: Graph) {
    this.taken = valueNames(g);
    for (const n of g.nodes) this.taken.add(n.name);
  }
  name(base: string): string {
    let s = base;
    for (let i = 1; this.taken.has(s); i++) s = `${base}_${i}`;
    this.taken.add(s);
    return s;
  }
}

const scalar = (dtype: 'float32' | 'uint8', v: number): TensorData =>
  dtype === 'float32' ? { dtype, dims: [], data: Float32Array.of(v) } : { dtype, dims: [], data: Uint8Array.of(v) };

/** Drops each Relu whose input only it reads: the quantizer's clamp at zero point 0 does its work. */
function absorbRelus(g: Graph): Graph {
  const readers = consumers(g);
  const outputs = new Set(g.outputs.map((o) => o.name));
  const rename = new Map<string, string>();
  const nodes = g.nodes.filter((n) => {
    const x = n.inputs[0];
    const absorbable = n.opType === 'Relu' && (n.domain ?? '') === '' && !outputs.has(x) && !outputs.has(n.outputs[0])
      && readers.get(x)?.length === 1 && !g.initializers.has(x) && !g.inputs.some((v) => v.name === x);
    if (absorbable) rename.set(x, n.outputs[0]);
    return !absorbable;
  });
  return { ...g, nodes: nodes.map((n) => ({ ...n, outputs: n.outputs.map((o) => rename.get(o) ?? o) })) };
}

export function buildInt8Export(fp32: Model, opts: Int8Options = { mode: 'weights' }): Model {
  const ranges = opts.mode === 'static' ? opts.ranges : undefined;
  const src = ranges ? absorbRelus(fp32.graph) : fp32.graph;
  const namer = new Namer(src);
  const initializers = new Map(src.initializers);
  const nodes: Node[] = [];
  const outputs = new Set(src.outputs.map((o) => o.name));

  // activation → its dequantized twin (what consumers read) and its scale
  const actQ = new Map<string, { dq: string; scale: number }>();
  const quantizeActivation = (v: string) => {
    const r = ranges?.get(v);
    if (!r || outputs.has(v) || actQ.has(v)) return;
    const p = activationParams(r);
    const s = namer.name(`${v}.scale`);
    const zp = namer.name(`${v}.zero_point`);
    initializers.set(s, scalar('float32', p.scale));
    initializers.set(zp, scalar('uint8', p.zeroPoint));
    const q = namer.name(`${v}.quantized`);
    const dq = namer.name(`${v}.dequantized`);
    nodes.push(
      { name: namer.name(`QuantizeLinear_${v}`), opType: 'QuantizeLinear', inputs: [v, s, zp], outputs: [q], attrs: {} },
      { name: namer.name(`DequantizeLinear_${v}`), opType: 'DequantizeLinear', inputs: [q, s, zp], outputs: [dq], attrs: {} },
    );
    actQ.set(v, { dq, scale: p.scale });
  };

  const weightQ = new Map<string, { out: string; scale: Float32Array }>();
  const dequantizedWeight = (w: string, axis: number) => {
    let e = weightQ.get(w);
    if (!e) {
      const qw = quantizePerChannel(src.initializers.get(w)!, axis);
      const [q, s, zp, out] = ['int8', 'scale', 'zero_point', 'dequantized'].map((x) => namer.name(`${w}.${x}`));
      initializers.set(q, qw.q).set(s, qw.scale).set(zp, qw.zeroPoint);
      nodes.push({ name: namer.name(`DequantizeLinear_${w}`), opType: 'DequantizeLinear', inputs: [q, s, zp], outputs: [out], attrs: { axis: attr.int(qw.axis) } });
      e = { out, scale: qw.scale.data as Float32Array };
      weightQ.set(w, e);
    }
    return e;
  };

  // bias b at scale s_x·s_w[c] as int32, as QLinearConv/QGemm take it
  const dequantizedBias = (b: string, inputScale: number, weightScale: Float32Array) => {
    const t = src.initializers.get(b)!;
    if (t.dims.length !== 1 || t.dims[0] !== weightScale.length) return b;
    const scale = Float32Array.from(weightScale, (sw) => inputScale * sw);
    const data = t.data as Float32Array;
    const q = Int32Array.from(data, (v, c) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(v / scale[c]))));
    const [qn, sn, zn, out] = ['int32', 'scale', 'zero_point', 'dequantized'].map((x) => namer.name(`${b}.${x}`));
    initializers.set(qn, { dtype: 'int32', dims: [...t.dims], data: q })
      .set(sn, { dtype: 'float32', dims: [...t.dims], data: scale })
      .set(zn, { dtype: 'int32', dims: [...t.dims], data: new Int32Array(t.dims[0]) });
    nodes.push({ name: namer.name(`DequantizeLinear_${b}`), opType: 'DequantizeLinear', inputs: [qn, sn, zn], outputs: [out], attrs: { axis: attr.int(0) } });
    return out;
  };

  for (const v of src.inputs) if (!src.initializers.has(v.name)) quantizeActivation(v.name);
  for (const n of topoSort(src)) {
    const inputs = n.inputs.map((i) => actQ.get(i)?.dq ?? i);
    const axis = weightAxis(n, src);
    if (axis !== null) {
      const w = dequantizedWeight(n.inputs[1], axis);
      inputs[1] = w.out;
      const x = actQ.get(n.inputs[0]);
      const b = n.inputs[2];
      if (x && b && src.initializers.get(b)?.dtype === 'float32' && (n.opType === 'Conv' || n.opType === 'Gemm')) {
        inputs[2] = dequantizedBias(b, x.scale, w.scale);
      }
    }
    nodes.push({ ...n, inputs });
    for (const o of n.outputs) if (o !== '') quantizeActivation(o);
  }
  const graph = eliminateDeadNodes({ ...src, nodes, initializers, valueInfo: [] });
  return { ...fp32, graph, metadata: { ...fp32.metadata, variant: 'int8', int8_mode: opts.mode } };
}
