import { AppError } from '../kernel/errors.ts';
import type { GraphBuilder } from '../onnx/builder.ts';
import { topoSort } from '../onnx/graph-utils.ts';
import type { Node } from '../onnx/ir.ts';
import { lowerBatchNormTraining } from './batchnorm.ts';
import { NO_GRADIENT } from './context.ts';
import { ConstantPool, constLike, makeContext } from './grad-context.ts';
import { RULES } from './registry.ts';
import { typesOf } from './types.ts';

export interface BackwardOptions {
  loss: string;
  wrt: string[];
  /** Gradient of the loss to start from; defaults to ones shaped like the loss. */
  lossGrad?: string;
}

/**
 * Reverse-mode differentiation: walks the forward nodes from the loss back to `wrt`, asks each
 * node's rule for its input gradients, sums gradients of values used more than once, and sums
 * broadcast gradients back to their input's shape. Only nodes that lie on a path from some wrt
 * value to the loss get backward nodes.
 */
export function backward(b: GraphBuilder, opts: BackwardOptions): Map<string, string> {
  const forward = topoSort(b.graph);
  const types = typesOf(b.graph);
  const consts = new ConstantPool(b);

  // Which values depend on a wrt value (gradient can flow to them) …
  const dependsOnWrt = new Set(opts.wrt);
  for (const node of forward) {
    const entry = RULES[node.opType];
    if (entry?.rule === NO_GRADIENT) continue;
    if (node.inputs.some((i) => i !== '' && dependsOnWrt.has(i))) for (const o of node.outputs) if (o !== '') dependsOnWrt.add(o);
  }
  // … and which of those reach the loss.
  const reachesLoss = new Set<string>([opts.loss]);
  const active: Node[] = [];
  for (let k = forward.length - 1; k >= 0; k--) {
    const node = forward[k];
    if (!node.outputs.some((o) => o !== '' && reachesLoss.has(o))) continue;
    const diffInputs = node.inputs.filter((i) => i !== '' && dependsOnWrt.has(i));
    if (diffInputs.length === 0) continue;
    if (RULES[node.opType]?.rule === NO_GRADIENT) continue;
    active.push(node);
    for (const i of diffInputs) reachesLoss.add(i);
  }
  const needsGrad = (v: string) => v !== '' && dependsOnWrt.has(v) && reachesLoss.has(v);

  const contributions = new Map<string, string[]>();
  const addGrad = (value: string, g: string) => {
    const list = contributions.get(value);
    if (list) list.push(g);
    else contributions.set(value, [g]);
  };
  /** The gradient of `value`, its contributions summed (once all consumers have been visited). */
  const gradOf = (value: string): string | null => {
    const list = contributions.get(value);
    if (!list || list.length === 0) return null;
    if (list.length > 1) {
      const terms = unexpandedTerms(b, list);
      // onnxruntime's Add runs faster than its variadic Sum on two tensors (32×64×56×56: 4.3
      // against 5.5 ms, the pass feeding it included; steps: MobileNetV3-Small −3 %, ResNet-18 −1 %)
      const s = b.op(terms.length === 2 ? 'Add' : 'Sum', terms, {}, `${value}_grad_sum`);
      contributions.set(value, [s]);
      return s;
    }
    return list[0];
  };

  if (needsGrad(opts.loss)) {
    addGrad(opts.loss, opts.lossGrad ?? b.op('Expand', [constLike(b, consts, types, [1], [], opts.loss), b.op('Shape', [opts.loss])], {}, 'loss_grad_seed'));
  }

  for (const node of active) {
    const entry = RULES[node.opType];
    if (!entry) {
      throw new AppError('UNSUPPORTED_OP', `autodiff: no gradient rule for op ${node.opType} (node ${node.name})`);
    }
    if (entry.rule === NO_GRADIENT) continue;
    const dY = node.outputs.map((o) => (o === '' ? null : gradOf(o)));
    if (dY.every((g) => g === null)) continue;
    const ctx = makeContext(b, node, dY, types, consts, needsGrad);
    const dX = entry.rule(ctx);
    if (dX.length !== node.inputs.length) {
      throw new AppError('INTERNAL', `autodiff: rule for ${node.opType} returned ${dX.length} gradients for ${node.inputs.length} inputs (node ${node.name})`);
    }
    dX.forEach((g, i) => {
      const input = node.inputs[i];
      if (g === null || !needsGrad(input)) return;
      const broadcasts = entry.broadcast === 'all' || (entry.broadcast?.includes(i) ?? false);
      const shaped = broadcasts ? ctx.unbroadcast(g, input, types.get(node.outputs[0])?.shape) : g;
      addGrad(input, shaped);
    });
  }

  const result = new Map<string, string>();
  for (const w of opts.wrt) {
    const g = gradOf(w);
    // A wrt value the loss does not depend on has a zero gradient, not a missing one: optimizers
    // can then treat every trainable value alike.
    result.set(w, g ?? b.op('Expand', [constLike(b, consts, types, [0], [], w), b.op('Shape', [w])], {}, `${w}_grad_zero`));
  }
  // the gradients are in place: training-mode batch norms can now become standard ops
  lowerBatchNormTraining(b);
  return result;
}

/**
 * Gradient contributions to one value, with each Expand (a broadcast gradient, e.g.
 * GlobalAveragePool's) replaced by its unexpanded input wherever another contribution is not an
 * Expand: the sum then broadcasts it, and the full-size copy is never written (squeeze-excite
 * blocks sum a full product gradient with the pool's). MobileNetV3-Small's step, batch 32 at 224:
 * 448 → 431 and 431 → 415 ms (two A/Bs).
 */
function unexpandedTerms(b: GraphBuilder, list: string[]): string[] {
  const expandOf = (g: string) => {
    for (let k = b.graph.nodes.length - 1; k >= 0; k--) {
      const n = b.graph.nodes[k];
      if (n.outputs[0] === g) return n.opType === 'Expand' && (n.domain ?? '') === '' ? n.inputs[0] : null;
    }
    return null;
  };
  const small = list.map(expandOf);
  if (small.every((s) => s !== null)) return list;
  return list.map((g, i) => small[i] ?? g);
}
