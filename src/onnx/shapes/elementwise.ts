import { dtypeFromOnnx } from '../dtypes.ts';
import { type DataType, type Dim, type Node, getInt } from '../ir.ts';
import { type Ctx, type Rule, broadcastShapes, isIntType, isNum } from './context.ts';

/** Shape rules for elementwise ops: unary maps and activations, broadcasting binary ops, casts, BN. */

export const sameAsInput: Rule = (n, c) => c.set(n.outputs[0], c.dtype(n.inputs[0]), c.shape(n.inputs[0]));

function elementwise(dtype?: DataType, dtypeInput = 0): Rule {
  return (n, c) => {
    const shapes = n.inputs.filter((i) => i !== '').map((i) => c.shape(i));
    if (shapes.some((s) => !s)) return;
    const out = broadcastShapes(...(shapes as Dim[][]));
    c.set(n.outputs[0], dtype ?? c.dtype(n.inputs[dtypeInput]), out);
    foldArithmetic(n, c, out);
  };
}

const ARITHMETIC: Record<string, (a: number, b: number, int: boolean) => number> = {
  Add: (a, b) => a + b,
  Sub: (a, b) => a - b,
  Mul: (a, b) => a * b,
  // Integer Div truncates toward zero, as in C.
  Div: (a, b, int) => (int ? Math.trunc(a / b) : a / b),
};

/** Evaluates Add/Sub/Mul/Div on known small values (shape arithmetic in exported graphs). */
function foldArithmetic(n: Node, c: Ctx, outShape: Dim[]): void {
  const f = ARITHMETIC[n.opType];
  if (!f || outShape.length > 1) return;
  const int = isIntType(c.dtype(n.inputs[0]));
  const a = c.values.get(n.inputs[0]);
  const b = c.values.get(n.inputs[1]);
  if (!a || !b) return;
  const len = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < len; i++) {
    const x = a[a.length === 1 ? 0 : i];
    const y = b[b.length === 1 ? 0 : i];
    // x*1, x+0 and the like keep a symbolic dim; anything else with a symbol is unknown.
    if (isNum(x) && isNum(y)) out.push(f(x, y, int));
    else if ((n.opType === 'Mul' || n.opType === 'Div') && y === 1) out.push(x);
    else if (n.opType === 'Mul' && x === 1) out.push(y);
    else if ((n.opType === 'Add' || n.opType === 'Sub') && y === 0) out.push(x);
    else out.push(null);
  }
  c.values.set(n.outputs[0], out);
}

const batchNorm: Rule = (n, c) => {
  sameAsInput(n, c);
  const stat = c.shape(n.inputs[3]) ?? c.shape(n.inputs[1]);
  const dt = c.dtype(n.inputs[3]) ?? c.dtype(n.inputs[0]);
  for (const o of n.outputs.slice(1)) c.set(o, dt, stat);
};

const identity: Rule = (n, c) => {
  sameAsInput(n, c);
  const v = c.values.get(n.inputs[0]);
  if (v) c.values.set(n.outputs[0], v);
};

const cast: Rule = (n, c) => {
  const to = dtypeFromOnnx(getInt(n, 'to', 0));
  c.set(n.outputs[0], to, c.shape(n.inputs[0]));
  const v = c.values.get(n.inputs[0]);
  if (v) c.values.set(n.outputs[0], v.map((d) => (isNum(d) && isIntType(to) ? Math.trunc(d) : d)));
};

const dropout: Rule = (n, c) => {
  sameAsInput(n, c);
  c.set(n.outputs[1], 'bool', c.shape(n.inputs[0]));
};

/** Y like X; Mean and InvStdDev (outputs 1, 2) like X with the normalized axes [axis, rank) kept as 1. */
const layerNorm: Rule = (n, c) => {
  sameAsInput(n, c);
  const shape = c.shape(n.inputs[0]);
  if (!shape) return;
  const a = getInt(n, 'axis', -1);
  const from = a < 0 ? a + shape.length : a;
  const reduced = shape.map((d, i) => (i < from ? d : 1));
  for (const o of n.outputs.slice(1)) c.set(o, 'float32', reduced);
};

const UNARY = ['Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Neg', 'Exp', 'Log', 'Sqrt',
  'Erf', 'Abs', 'Reciprocal', 'Sign', 'Softmax', 'LogSoftmax', 'Softplus', 'Softsign', 'Elu', 'Selu', 'Gelu', 'Mish',
  'Ceil', 'Floor', 'Round', 'Sin', 'Cos', 'PRelu', 'CumSum', 'LRN', 'InstanceNormalization',
  'LpNormalization', 'Trilu'];

export const elementwiseRules: Record<string, Rule> = {
  ...Object.fromEntries(UNARY.map((op) => [op, sameAsInput])),
  Identity: identity,
  Cast: cast,
  CastLike: (n, c) => c.set(n.outputs[0], c.dtype(n.inputs[1]), c.shape(n.inputs[0])),
  Dropout: dropout,
  LayerNormalization: layerNorm,
  BatchNormalization: batchNorm,
  Not: (n, c) => c.set(n.outputs[0], 'bool', c.shape(n.inputs[0])),
  IsNaN: (n, c) => c.set(n.outputs[0], 'bool', c.shape(n.inputs[0])),
  IsInf: (n, c) => c.set(n.outputs[0], 'bool', c.shape(n.inputs[0])),
  Add: elementwise(), Sub: elementwise(), Mul: elementwise(), Div: elementwise(), Pow: elementwise(), Mod: elementwise(),
  Max: elementwise(), Min: elementwise(), Sum: elementwise(), Mean: elementwise(),
  Equal: elementwise('bool'), Greater: elementwise('bool'), Less: elementwise('bool'), GreaterOrEqual: elementwise('bool'),
  LessOrEqual: elementwise('bool'), And: elementwise('bool'), Or: elementwise('bool'), Xor: elementwise('bool'),
  Where: elementwise(undefined, 1),
};
