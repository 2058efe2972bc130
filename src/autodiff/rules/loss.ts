import { attr, getInt, getString } from '../../onnx/ir.ts';
import { type GradContext, type RuleTable, rule } from '../context.ts';

/**
 * Fused losses. ONNX's SoftmaxCrossEntropyLoss: ℓₙ = −wₙ·log pₙ[labelₙ], wₙ = weights[labelₙ]
 * (or 1), 0 where labelₙ = ignore_index; mean divides by Σwₙ. So
 *   dScores = (p − onehot(label)) · wₙ · dℓ (/ Σw for mean)
 * plus, where the log_prob output is used too, the LogSoftmax gradient of its own dY.
 */
function softmaxCrossEntropyGrad(ctx: GradContext): (string | null)[] {
  const node = ctx.node;
  const scores = ctx.x(0);
  const labels = ctx.x(1);
  const weights = ctx.x(2);
  const reduction = getString(node, 'reduction', 'mean');
  const logp = ctx.requireOutput(1);
  const p = ctx.op('Exp', [logp]);
  const one = ctx.ints([1]);
  const grads: string[] = [];

  const dLoss = ctx.dY[0];
  if (dLoss) {
    // Labels equal to ignore_index are out of range for OneHot/Gather: point them at class 0,
    // their weight is zeroed below.
    const ignored = node.attrs.ignore_index
      ? ctx.op('Equal', [labels, ctx.op('CastLike', [ctx.intScalar(getInt(node, 'ignore_index', 0)), labels])])
      : null;
    const safe = ignored ? ctx.op('Where', [ignored, ctx.op('CastLike', [ctx.intScalar(0), labels]), labels]) : labels;
    const depth = ctx.op('Gather', [ctx.op('Shape', [scores]), one]);
    const onehot = ctx.op('OneHot', [safe, depth, ctx.constant([0, 1], [2], scores)], { axis: attr.int(1) });
    let w: string | null = weights === '' ? null : ctx.op('Gather', [weights, safe]);
    if (ignored) {
      const keep = ctx.op('Where', [ignored, ctx.scalar(0, scores), ctx.scalar(1, scores)]);
      w = w ? ctx.op('Mul', [w, keep]) : ctx.op('Expand', [keep, ctx.op('Shape', [labels])]);
    }
    let coef: string;
    if (reduction === 'none') coef = w ? ctx.op('Mul', [dLoss, w]) : dLoss;
    else {
      const scaled = reduction === 'mean'
        ? ctx.op('Div', [dLoss, w ? ctx.op('ReduceSum', [w], { keepdims: attr.int(0) }) : ctx.op('CastLike', [ctx.op('Size', [labels]), scores])])
        : dLoss;
      coef = w ? ctx.op('Mul', [w, scaled]) : scaled;
    }
    // per-sample coefficients [N, d…] → [N, 1, d…] against scores [N, C, d…]
    const perSample = reduction === 'none' || w !== null;
    const c = perSample ? ctx.op('Unsqueeze', [coef, one]) : coef;
    grads.push(ctx.op('Mul', [ctx.op('Sub', [p, onehot]), c]));
  }
  const dLogp = ctx.dY[1];
  if (dLogp) {
    // LogSoftmax over the class axis: dX = dY − p·Σ_c dY
    grads.push(ctx.op('Sub', [dLogp, ctx.op('Mul', [p, ctx.op('ReduceSum', [dLogp, one], { keepdims: attr.int(1) })])]));
  }
  const dScores = grads.length === 1 ? grads[0] : ctx.op('Add', grads);
  return node.inputs.map((_, i) => (i === 0 ? dScores : null));
}

export const lossRules: RuleTable = {
  SoftmaxCrossEntropyLoss: rule(softmaxCrossEntropyGrad),
};
