import { AppError } from '../core/errors.ts';
import type { GraphBuilder } from '../onnx/builder.ts';
import { type DataType, type Node, attr, getFloat, getInt, tensor } from '../onnx/ir.ts';
import { typesOf } from './types.ts';

/** The running-statistics values of one decomposed BatchNormalization: feed the `In` values,
 *  read the `Out` values after each step. */
export interface BatchNormStatUpdate {
  node: string;
  runningMeanIn: string;
  runningVarIn: string;
  runningMeanOut: string;
  runningVarOut: string;
}

/**
 * Rewrites every training-mode BatchNormalization into primitive ops, in place (same position,
 * same output names), so that backward differentiates through the batch statistics:
 *   μ = mean(X), σ² = mean((X−μ)²) over batch and spatial axes, Y = (X−μ)/√(σ²+ε)·s + b
 *   running_mean' = m·running_mean + (1−m)·μ
 *   running_var'  = m·running_var  + (1−m)·σ²·n/(n−1)   (unbiased, as PyTorch; n = N·H·W)
 */
export function decomposeBatchNormForTraining(b: GraphBuilder): BatchNormStatUpdate[] {
  const targets = b.graph.nodes.filter(isTrainingBatchNorm);
  if (targets.length === 0) return [];
  const types = typesOf(b.graph);
  const updates: BatchNormStatUpdate[] = [];
  for (const node of targets) {
    const [x, scale, bias, runMean, runVar] = node.inputs;
    const used = usedValues(b);
    if (node.outputs.slice(3).some((o) => o !== '' && used.has(o))) {
      throw new AppError('UNSUPPORTED_OP', `autodiff: BatchNormalization '${node.name}' has its saved_mean/saved_var outputs in use (opset < 14)`);
    }
    const xt = types.get(x);
    if (!xt) throw new AppError('INTERNAL', `autodiff: no shape known for BatchNormalization input '${x}' (node ${node.name})`);
    const rank = xt.shape.length;
    const eps = getFloat(node, 'epsilon', 1e-5);
    const momentum = getFloat(node, 'momentum', 0.9);
    const at = b.graph.nodes.indexOf(node);
    b.graph.nodes.splice(at, 1);
    const firstNew = b.graph.nodes.length;

    const p = `${node.name}_bn_`;
    const op = (type: string, inputs: string[], attrs = {}) => b.op(type, inputs, attrs, p + type);
    const c = (v: number) => b.initializer(b.fresh(`${p}const`), scalarOf(xt.dtype, v));
    const ints = (v: number[]) => b.initializer(b.fresh(`${p}shape`), tensor('int64', [v.length], BigInt64Array.from(v.map(BigInt))));
    const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    const perChannel = ints([1, -1, ...new Array<number>(rank - 2).fill(1)]);

    const mean = op('ReduceMean', [x], { axes: attr.ints(axes), keepdims: attr.int(1) });
    const centered = op('Sub', [x, mean]);
    const variance = op('ReduceMean', [op('Mul', [centered, centered])], { axes: attr.ints(axes), keepdims: attr.int(1) });
    const normalized = op('Div', [centered, op('Sqrt', [op('Add', [variance, c(eps)])])]);
    const scaled = op('Mul', [normalized, op('Reshape', [scale, perChannel])]);
    b.opN('Add', [scaled, op('Reshape', [bias, perChannel])], {}, [node.outputs[0]], `${p}Add`);

    const flat = ints([-1]);
    const batchMean = op('Reshape', [mean, flat]);
    const n = op('CastLike', [op('Div', [op('Size', [x]), op('Size', [batchMean])]), x]);
    const unbiased = op('Mul', [op('Reshape', [variance, flat]), op('Div', [n, op('Sub', [n, c(1)])])]);
    const blend = (running: string, batch: string, out: string | undefined) =>
      b.opN('Add', [op('Mul', [running, c(momentum)]), op('Mul', [batch, c(1 - momentum)])], {}, [out || b.fresh(`${p}running`)], `${p}Add`)[0];
    const runningMeanOut = blend(runMean, batchMean, node.outputs[1]);
    const runningVarOut = blend(runVar, unbiased, node.outputs[2]);

    const added = b.graph.nodes.splice(firstNew);
    b.graph.nodes.splice(at, 0, ...added);
    updates.push({ node: node.name, runningMeanIn: runMean, runningVarIn: runVar, runningMeanOut, runningVarOut });
  }
  return updates;
}

/** Training mode: the opset-14+ attribute, or (opsets 9–13, as torch.onnx exports a model in
 *  train mode) the running-statistics outputs being present. */
export function isTrainingBatchNorm(n: Node): boolean {
  if (n.opType !== 'BatchNormalization') return false;
  if (n.attrs.training_mode) return getInt(n, 'training_mode', 0) !== 0;
  return n.outputs.slice(1).some((o) => o !== '');
}

function usedValues(b: GraphBuilder): Set<string> {
  const used = new Set(b.graph.outputs.map((o) => o.name));
  for (const n of b.graph.nodes) for (const i of n.inputs) used.add(i);
  return used;
}

function scalarOf(dtype: DataType, v: number) {
  if (dtype === 'float64') return tensor('float64', [], Float64Array.of(v));
  if (dtype === 'float32') return tensor('float32', [], Float32Array.of(v));
  throw new AppError('UNSUPPORTED_OP', `autodiff: BatchNormalization in ${dtype} cannot be trained; use float32`);
}
