import { type Dim, type Node, getInt, getInts, getString } from '../ir.ts';
import { type Rule, broadcastShapes, isNum } from './context.ts';

/** Shape rules for sliding-window ops (convolution, pooling) and matrix products. */

/** Spatial output size of a sliding window (conv/pool), by auto_pad or explicit pads. */
function windowOut(n: Node, inSpatial: Dim[], kernel: number[], dilations: number[], ceil: boolean): Dim[] {
  const rank = inSpatial.length;
  const strides = getInts(n, 'strides') ?? Array(rank).fill(1);
  const pads = getInts(n, 'pads') ?? Array(2 * rank).fill(0);
  const autoPad = getString(n, 'auto_pad', 'NOTSET');
  return inSpatial.map((d, i) => {
    if (!isNum(d)) return null;
    const ek = dilations[i] * (kernel[i] - 1) + 1;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(d / strides[i]);
    if (autoPad === 'VALID') return Math.floor((d - ek) / strides[i]) + 1;
    const span = d + pads[i] + pads[i + rank] - ek;
    let out = (ceil ? Math.ceil(span / strides[i]) : Math.floor(span / strides[i])) + 1;
    // With ceil_mode, a last window that would start inside the end padding is dropped.
    if (ceil && (out - 1) * strides[i] >= d + pads[i]) out--;
    return out;
  });
}

const conv: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  const w = c.shape(n.inputs[1]);
  if (!x) return;
  const rank = x.length - 2;
  const kernel = getInts(n, 'kernel_shape') ?? w?.slice(2).map((d) => (isNum(d) ? d : NaN));
  const outC = w ? w[0] : null;
  if (!kernel || kernel.some(Number.isNaN)) {
    c.set(n.outputs[0], c.dtype(n.inputs[0]), [x[0], outC, ...Array(rank).fill(null)]);
    return;
  }
  const dil = getInts(n, 'dilations') ?? Array(rank).fill(1);
  c.set(n.outputs[0], c.dtype(n.inputs[0]), [x[0], outC, ...windowOut(n, x.slice(2), kernel, dil, false)]);
};

const convTranspose: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  const w = c.shape(n.inputs[1]);
  if (!x) return;
  const rank = x.length - 2;
  const group = getInt(n, 'group', 1);
  const outC = w && isNum(w[1]) ? w[1] * group : null;
  const explicit = getInts(n, 'output_shape');
  if (explicit) {
    c.set(n.outputs[0], c.dtype(n.inputs[0]), [x[0], outC, ...explicit.slice(-rank)]);
    return;
  }
  const kernel = getInts(n, 'kernel_shape') ?? w?.slice(2).map((d) => (isNum(d) ? d : NaN)) ?? [];
  const strides = getInts(n, 'strides') ?? Array(rank).fill(1);
  const dil = getInts(n, 'dilations') ?? Array(rank).fill(1);
  const pads = getInts(n, 'pads') ?? Array(2 * rank).fill(0);
  const outPad = getInts(n, 'output_padding') ?? Array(rank).fill(0);
  const autoPad = getString(n, 'auto_pad', 'NOTSET');
  const spatial = x.slice(2).map((d, i) => {
    if (!isNum(d) || Number.isNaN(kernel[i] ?? NaN)) return null;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return d * strides[i];
    const total = strides[i] * (d - 1) + outPad[i] + (kernel[i] - 1) * dil[i] + 1;
    return autoPad === 'VALID' ? total : total - pads[i] - pads[i + rank];
  });
  c.set(n.outputs[0], c.dtype(n.inputs[0]), [x[0], outC, ...spatial]);
};

/** MaxPool, AveragePool (dilations from opset 19), LpPool; MaxPool's second output is its indices. */
const pool: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  const kernel = getInts(n, 'kernel_shape');
  if (!x || !kernel) return;
  const dil = getInts(n, 'dilations') ?? Array(kernel.length).fill(1);
  const out = [x[0], x[1], ...windowOut(n, x.slice(2), kernel, dil, getInt(n, 'ceil_mode', 0) === 1)];
  c.set(n.outputs[0], c.dtype(n.inputs[0]), out);
  c.set(n.outputs[1], 'int64', out);
};

const globalPool: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  if (x) c.set(n.outputs[0], c.dtype(n.inputs[0]), [x[0], x[1], ...x.slice(2).map(() => 1)]);
};

const gemm: Rule = (n, c) => {
  const a = c.shape(n.inputs[0]);
  const b = c.shape(n.inputs[1]);
  if (!a || !b) return;
  const m = getInt(n, 'transA', 0) ? a[1] : a[0];
  const nn = getInt(n, 'transB', 0) ? b[0] : b[1];
  c.set(n.outputs[0], c.dtype(n.inputs[0]), [m, nn]);
};

const matmul: Rule = (n, c) => {
  const a0 = c.shape(n.inputs[0]);
  const b0 = c.shape(n.inputs[1]);
  if (!a0 || !b0) return;
  // numpy.matmul: a 1-D operand gets a 1 prepended (A) or appended (B), removed afterwards.
  const a = a0.length === 1 ? [1, a0[0]] : a0;
  const b = b0.length === 1 ? [b0[0], 1] : b0;
  const batch = broadcastShapes(a.slice(0, -2), b.slice(0, -2));
  const out = [...batch];
  if (a0.length !== 1) out.push(a[a.length - 2]);
  if (b0.length !== 1) out.push(b[b.length - 1]);
  c.set(n.outputs[0], c.dtype(n.inputs[0]), out);
};

export const convLinearRules: Record<string, Rule> = {
  Conv: conv,
  ConvTranspose: convTranspose,
  MaxPool: pool,
  AveragePool: pool,
  LpPool: pool,
  GlobalAveragePool: globalPool,
  GlobalMaxPool: globalPool,
  Gemm: gemm,
  MatMul: matmul,
};
