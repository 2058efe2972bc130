import { type Dim, type Node, getInt, getInts } from '../ir.ts';
import { type Ctx, type Rule, broadcastShapes, isNum, normAxis, product } from './context.ts';

/** Shape rules for ops that move, cut or join data without computing on it. */

const flatten: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  if (!x) return;
  const axis = normAxis(getInt(n, 'axis', 1), x.length);
  c.set(n.outputs[0], c.dtype(n.inputs[0]), [product(x.slice(0, axis)), product(x.slice(axis))]);
};

const reshape: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  const target = c.values.get(n.inputs[1]);
  const tShape = c.shape(n.inputs[1]);
  if (!target) {
    if (tShape && isNum(tShape[0])) c.set(n.outputs[0], c.dtype(n.inputs[0]), Array(tShape[0]).fill(null));
    return;
  }
  const allowZero = getInt(n, 'allowzero', 0) === 1;
  const out: Dim[] = target.map((d, i) => (d === 0 && !allowZero ? (x ? x[i] : null) : d));
  const inferred = out.indexOf(-1);
  if (inferred >= 0) out[inferred] = x ? solveMissing(x, out.filter((_, i) => i !== inferred)) : null;
  c.set(n.outputs[0], c.dtype(n.inputs[0]), out);
  if (x && x.length <= 1 && c.values.has(n.inputs[0])) c.values.set(n.outputs[0], c.values.get(n.inputs[0])!);
};

/** The dim d with product(known)·d = product(total), cancelling symbolic dims present in both. */
function solveMissing(total: Dim[], known: Dim[]): Dim {
  const syms = new Map<Dim, number>();
  let num = 1;
  for (const d of total) {
    if (isNum(d)) num *= d;
    else if (d === null) return null;
    else syms.set(d, (syms.get(d) ?? 0) + 1);
  }
  let den = 1;
  for (const d of known) {
    if (isNum(d)) den *= d;
    else if (d === null || !syms.get(d)) return null;
    else syms.set(d, syms.get(d)! - 1);
  }
  const left = [...syms].filter(([, k]) => k !== 0);
  if (left.length === 0) return den === 0 ? null : num / den;
  return left.length === 1 && left[0][1] === 1 && num === den ? left[0][0] : null;
}

const transpose: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  if (!x) return;
  const perm = getInts(n, 'perm') ?? x.map((_, i) => x.length - 1 - i);
  c.set(n.outputs[0], c.dtype(n.inputs[0]), perm.map((p) => x[p]));
};

/** DepthToSpace: [N, C·b², H, W] → [N, C, H·b, W·b]; SpaceToDepth the reverse. */
const blocks = (toSpace: boolean): Rule => (n, c) => {
  const x = c.shape(n.inputs[0]);
  if (!x || x.length !== 4) return;
  const b = getInt(n, 'blocksize', 1);
  const scale = (d: Dim, up: boolean): Dim => (isNum(d) ? (up ? d * b : d / b) : null);
  const [batch, ch, h, w] = x;
  c.set(n.outputs[0], c.dtype(n.inputs[0]), toSpace
    ? [batch, isNum(ch) ? ch / (b * b) : null, scale(h, true), scale(w, true)]
    : [batch, isNum(ch) ? ch * b * b : null, scale(h, false), scale(w, false)]);
};

const concat: Rule = (n, c) => {
  const shapes = n.inputs.map((i) => c.shape(i));
  if (shapes.some((s) => !s)) return;
  const ss = shapes as Dim[][];
  const axis = normAxis(getInt(n, 'axis', 0), ss[0].length);
  const out = ss[0].map((_, i) => {
    if (i === axis) return ss.reduce<Dim>((acc, s) => (isNum(acc) && isNum(s[i]) ? acc + s[i] : null), 0);
    return ss.map((s) => s[i]).find(isNum) ?? ss[0][i];
  });
  c.set(n.outputs[0], c.dtype(n.inputs[0]), out);
  const vals = n.inputs.map((i) => c.values.get(i));
  if (out.length === 1 && vals.every((v) => v)) c.values.set(n.outputs[0], vals.flatMap((v) => v!));
};

const split: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  if (!x) return;
  const axis = normAxis(getInt(n, 'axis', 0), x.length);
  const parts = n.outputs.length;
  // Sizes: an input from opset 13, an attribute before; neither means equal parts.
  const sizesInput = n.inputs[1] ?? '';
  const sizes = sizesInput ? c.ints(sizesInput) : getInts(n, 'split');
  const d = x[axis];
  n.outputs.forEach((o, k) => {
    let size: Dim = null;
    if (sizes) size = sizes[k];
    else if (isNum(d) && !sizesInput) {
      // Equal parts; opset 18 puts any remainder in the last part (num_outputs).
      const chunk = Math.ceil(d / parts);
      size = k < parts - 1 ? chunk : d - chunk * (parts - 1);
    }
    c.set(o, c.dtype(n.inputs[0]), x.map((v, i) => (i === axis ? size : v)));
  });
};

const slice: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  if (!x) return;
  const fromInputs = n.inputs.length > 1;
  const starts = fromInputs ? c.ints(n.inputs[1]) : getInts(n, 'starts');
  const ends = fromInputs ? c.ints(n.inputs[2]) : getInts(n, 'ends');
  const axesIn = fromInputs ? (n.inputs[3] ? c.ints(n.inputs[3]) : undefined) : getInts(n, 'axes');
  const axesGiven = fromInputs ? !!n.inputs[3] : !!getInts(n, 'axes');
  const steps = fromInputs && n.inputs[4] ? c.ints(n.inputs[4]) : undefined;
  const out = [...x];
  if (!starts || !ends || (axesGiven && !axesIn) || (n.inputs[4] && !steps)) {
    // Which axes change is known only if `axes` is; their sizes are not.
    if (axesIn) for (const a of axesIn) out[normAxis(a, x.length)] = null;
    c.set(n.outputs[0], c.dtype(n.inputs[0]), axesIn ? out : x.map(() => null));
    return;
  }
  const axes = axesIn ?? starts.map((_, i) => i);
  axes.forEach((a0, k) => {
    const a = normAxis(a0, x.length);
    const d = x[a];
    const step = steps?.[k] ?? 1;
    if (!isNum(d)) {
      out[a] = null;
      return;
    }
    out[a] = sliceLength(d, starts[k], ends[k], step);
  });
  c.set(n.outputs[0], c.dtype(n.inputs[0]), out);
  const v = c.values.get(n.inputs[0]);
  if (v && x.length === 1 && isNum(out[0])) {
    const s = clampStart(starts[0], v.length, steps?.[0] ?? 1);
    const st = steps?.[0] ?? 1;
    c.values.set(n.outputs[0], Array.from({ length: out[0] }, (_, i) => v[s + i * st]));
  }
};

function clampStart(start: number, d: number, step: number): number {
  let s = start < 0 ? start + d : start;
  return step > 0 ? Math.min(Math.max(s, 0), d) : Math.min(Math.max(s, -1), d - 1);
}

/** Number of elements of range(start, end, step) over a dim of size d, clamped as ONNX Slice does. */
function sliceLength(d: number, start: number, end: number, step: number): number {
  const s = clampStart(start, d, step);
  let e = end < 0 ? end + d : end;
  e = step > 0 ? Math.min(Math.max(e, 0), d) : Math.min(Math.max(e, -1), d - 1);
  return Math.max(0, Math.ceil((e - s) / step));
}

const pad: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  if (!x) return;
  const pads = n.inputs.length > 1 ? c.ints(n.inputs[1]) : getInts(n, 'pads');
  const axes = n.inputs[3] ? c.ints(n.inputs[3]) : undefined;
  if (!pads || (n.inputs[3] && !axes)) {
    c.set(n.outputs[0], c.dtype(n.inputs[0]), x.map(() => null));
    return;
  }
  const ax = axes?.map((a) => normAxis(a, x.length)) ?? x.map((_, i) => i);
  const out = [...x];
  ax.forEach((a, k) => {
    const d = x[a];
    out[a] = isNum(d) ? d + pads[k] + pads[k + ax.length] : pads[k] + pads[k + ax.length] === 0 ? d : null;
  });
  c.set(n.outputs[0], c.dtype(n.inputs[0]), out);
};

function axesOf(n: Node, c: Ctx): number[] | undefined {
  return n.inputs[1] ? c.ints(n.inputs[1]) : getInts(n, 'axes');
}

const unsqueeze: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  const axes = axesOf(n, c);
  if (!x || !axes) return;
  const rank = x.length + axes.length;
  const set = new Set(axes.map((a) => normAxis(a, rank)));
  const out: Dim[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(set.has(i) ? 1 : x[k++]);
  c.set(n.outputs[0], c.dtype(n.inputs[0]), out);
  const v = c.values.get(n.inputs[0]);
  if (v && rank <= 1) c.values.set(n.outputs[0], v);
};

const squeeze: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  if (!x) return;
  const axes = axesOf(n, c);
  if (!axes && n.inputs[1]) return;
  let set: Set<number>;
  if (axes) set = new Set(axes.map((a) => normAxis(a, x.length)));
  else {
    // Without axes every size-1 dim goes, so an unknown dim makes the rank unknown.
    if (x.some((d) => !isNum(d))) return;
    set = new Set(x.flatMap((d, i) => (d === 1 ? [i] : [])));
  }
  c.set(n.outputs[0], c.dtype(n.inputs[0]), x.filter((_, i) => !set.has(i)));
  const v = c.values.get(n.inputs[0]);
  if (v) c.values.set(n.outputs[0], v);
};

const expand: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  const target = c.values.get(n.inputs[1]);
  if (!x) return;
  if (!target) {
    const ts = c.shape(n.inputs[1]);
    if (ts && isNum(ts[0])) c.set(n.outputs[0], c.dtype(n.inputs[0]), Array(Math.max(ts[0], x.length)).fill(null));
    return;
  }
  c.set(n.outputs[0], c.dtype(n.inputs[0]), broadcastShapes(x, target));
};

const tile: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  const reps = c.ints(n.inputs[1]);
  if (!x) return;
  c.set(n.outputs[0], c.dtype(n.inputs[0]), x.map((d, i) => (reps ? (reps[i] === 1 ? d : isNum(d) ? d * reps[i] : null) : null)));
};

const resize: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  if (!x) return;
  // Opset 10: (X, scales). Opset 11+: (X, roi, scales, sizes).
  const scalesName = n.inputs.length === 2 ? n.inputs[1] : n.inputs[2] ?? '';
  const sizes = n.inputs[3] ? c.values.get(n.inputs[3]) : undefined;
  const scales = scalesName ? c.ints(scalesName) : undefined;
  const axes = getInts(n, 'axes')?.map((a) => normAxis(a, x.length)) ?? x.map((_, i) => i);
  const out = [...x];
  if (sizes && sizes.length === axes.length) axes.forEach((a, k) => (out[a] = sizes[k]));
  else if (scales && scales.length === axes.length) {
    axes.forEach((a, k) => {
      const d = x[a];
      out[a] = scales[k] === 1 ? d : isNum(d) ? Math.floor(d * scales[k]) : null;
    });
  } else return c.set(n.outputs[0], c.dtype(n.inputs[0]), x.map(() => null));
  c.set(n.outputs[0], c.dtype(n.inputs[0]), out);
};

/** GatherElements: the indices' shape, the data's dtype. */
const gatherElements: Rule = (n, c) => c.set(n.outputs[0], c.dtype(n.inputs[0]), c.shape(n.inputs[1]));

/** ScatterElements/ScatterND write into a copy of the data: its shape and dtype. */
const scatter: Rule = (n, c) => c.set(n.outputs[0], c.dtype(n.inputs[0]), c.shape(n.inputs[0]));

/** NonZero: [rank, count of non-zeros], the count known only at run time. */
const nonZero: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  if (x) c.set(n.outputs[0], 'int64', [x.length, null]);
};

export const shapeOpRules: Record<string, Rule> = {
  GatherElements: gatherElements,
  ScatterElements: scatter,
  ScatterND: scatter,
  NonZero: nonZero,
  Flatten: flatten,
  Reshape: reshape,
  Transpose: transpose,
  DepthToSpace: blocks(true),
  SpaceToDepth: blocks(false),
  Concat: concat,
  Split: split,
  Slice: slice,
  Pad: pad,
  Unsqueeze: unsqueeze,
  Squeeze: squeeze,
  Expand: expand,
  Tile: tile,
  Resize: resize,
};
