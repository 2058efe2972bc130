import { getInt } from '../ir.ts';
import { type Rule, isNum, normAxis, product } from './context.ts';

/**
 * Shape rules for ops that make or index small tensors — the shape arithmetic of exported graphs
 * (Constant, Shape, Gather, …); they also record the tensors' contents where known.
 */

const constant: Rule = (n, c) => {
  const a = n.attrs;
  const v = a.value;
  if (v?.kind === 'tensor') return c.setConst(n.outputs[0], v.value);
  if (a.value_float) return c.set(n.outputs[0], 'float32', []);
  if (a.value_floats?.kind === 'floats') return c.set(n.outputs[0], 'float32', [a.value_floats.value.length]);
  if (a.value_int?.kind === 'int') {
    c.set(n.outputs[0], 'int64', []);
    c.values.set(n.outputs[0], [a.value_int.value]);
    return;
  }
  if (a.value_ints?.kind === 'ints') {
    c.set(n.outputs[0], 'int64', [a.value_ints.value.length]);
    c.values.set(n.outputs[0], [...a.value_ints.value]);
  }
};

const shapeOp: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  if (!x) return;
  const clampAxis = (a: number) => Math.min(Math.max(normAxis(a, x.length), 0), x.length);
  const start = clampAxis(getInt(n, 'start', 0));
  const end = clampAxis(getInt(n, 'end', x.length));
  const dims = x.slice(start, Math.max(start, end));
  c.set(n.outputs[0], 'int64', [dims.length]);
  c.values.set(n.outputs[0], dims);
};

const sizeOp: Rule = (n, c) => {
  c.set(n.outputs[0], 'int64', []);
  const x = c.shape(n.inputs[0]);
  if (x) c.values.set(n.outputs[0], [product(x)]);
};

const gather: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  const idx = c.shape(n.inputs[1]);
  if (!x || !idx) return;
  const axis = normAxis(getInt(n, 'axis', 0), x.length);
  c.set(n.outputs[0], c.dtype(n.inputs[0]), [...x.slice(0, axis), ...idx, ...x.slice(axis + 1)]);
  const v = c.values.get(n.inputs[0]);
  const i = c.ints(n.inputs[1]);
  if (v && i && x.length === 1) c.values.set(n.outputs[0], i.map((k) => v[normAxis(k, v.length)] ?? null));
};

const constantOfShape: Rule = (n, c) => {
  const v = n.attrs.value;
  const dtype = v?.kind === 'tensor' ? v.value.dtype : 'float32';
  const target = c.values.get(n.inputs[0]);
  const ts = c.shape(n.inputs[0]);
  if (target) c.set(n.outputs[0], dtype, [...target]);
  else if (ts && isNum(ts[0])) c.set(n.outputs[0], dtype, Array(ts[0]).fill(null));
};

const range: Rule = (n, c) => {
  const [s, l, d] = [c.ints(n.inputs[0]), c.ints(n.inputs[1]), c.ints(n.inputs[2])];
  const len = s && l && d ? Math.max(Math.ceil((l[0] - s[0]) / d[0]), 0) : null;
  c.set(n.outputs[0], c.dtype(n.inputs[0]), [len]);
};

const oneHot: Rule = (n, c) => {
  const idx = c.shape(n.inputs[0]);
  if (!idx) return;
  const depth = c.ints(n.inputs[1]);
  const rank = idx.length + 1;
  const axis = normAxis(getInt(n, 'axis', -1), rank);
  const out = [...idx];
  out.splice(axis, 0, depth ? depth[0] : null);
  c.set(n.outputs[0], c.dtype(n.inputs[2]), out);
};

export const constantRules: Record<string, Rule> = {
  Constant: constant,
  ConstantOfShape: constantOfShape,
  Shape: shapeOp,
  Size: sizeOp,
  Gather: gather,
  Range: range,
  OneHot: oneHot,
};
