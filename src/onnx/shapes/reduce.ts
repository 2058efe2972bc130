import { type Dim, getInt, getInts, getString } from '../ir.ts';
import { type Rule, isNum, normAxis } from './context.ts';
import { sameAsInput } from './elementwise.ts';

/** Shape rules for reductions (ReduceX, ArgMax/ArgMin) and the fused softmax cross-entropy loss. */

/** Reductions: axes are an input (ReduceSum from opset 13, the rest from 18) or an attribute before. */
function reduce(): Rule {
  return (n, c) => {
    const x = c.shape(n.inputs[0]);
    if (!x) return;
    const keep = getInt(n, 'keepdims', 1) === 1;
    // Whichever the opset, the node itself tells: a second input wins over the attribute.
    const axesInput = n.inputs[1] ?? '';
    const axes = axesInput ? c.ints(axesInput) : getInts(n, 'axes');
    if (axesInput && !axes) {
      const axesShape = c.shape(axesInput);
      if (!keep && axesShape && isNum(axesShape[0])) c.set(n.outputs[0], c.dtype(n.inputs[0]), Array(x.length - axesShape[0]).fill(null));
      else if (keep) c.set(n.outputs[0], c.dtype(n.inputs[0]), x.map(() => null));
      return;
    }
    if (!axes || axes.length === 0) {
      if (getInt(n, 'noop_with_empty_axes', 0) === 1) return sameAsInput(n, c);
      c.set(n.outputs[0], c.dtype(n.inputs[0]), keep ? x.map(() => 1) : []);
      return;
    }
    const set = new Set(axes.map((a) => normAxis(a, x.length)));
    const out: Dim[] = [];
    x.forEach((d, i) => {
      if (!set.has(i)) out.push(d);
      else if (keep) out.push(1);
    });
    c.set(n.outputs[0], c.dtype(n.inputs[0]), out);
  };
}

const argReduce: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  if (!x) return;
  const axis = normAxis(getInt(n, 'axis', 0), x.length);
  const keep = getInt(n, 'keepdims', 1) === 1;
  const out: Dim[] = [];
  x.forEach((d, i) => {
    if (i !== axis) out.push(d);
    else if (keep) out.push(1);
  });
  c.set(n.outputs[0], 'int64', out);
};

const softmaxCrossEntropyLoss: Rule = (n, c) => {
  const x = c.shape(n.inputs[0]);
  if (!x) return;
  const reduction = getString(n, 'reduction', 'mean');
  c.set(n.outputs[0], c.dtype(n.inputs[0]), reduction === 'none' ? [x[0], ...x.slice(2)] : []);
  c.set(n.outputs[1], c.dtype(n.inputs[0]), x);
};

export const reduceRules: Record<string, Rule> = {
  ...Object.fromEntries(['ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceSumSquare',
    'ReduceL1', 'ReduceL2', 'ReduceLogSumExp'].map((op) => [op, reduce()])),
  ArgMax: argReduce,
  ArgMin: argReduce,
  SoftmaxCrossEntropyLoss: softmaxCrossEntropyLoss,
};
