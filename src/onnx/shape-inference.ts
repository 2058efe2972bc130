import { AppError } from '../kernel/errors.ts';
import { topoSort } from './graph-utils.ts';
import type { Dim, Graph } from './ir.ts';
import { constantRules } from './shapes/constants.ts';
import { type Rule, type ShapeInfo, Ctx } from './shapes/context.ts';
import { convLinearRules } from './shapes/conv-linear.ts';
import { elementwiseRules } from './shapes/elementwise.ts';
import { reduceRules } from './shapes/reduce.ts';
import { shapeOpRules } from './shapes/shape-ops.ts';

export { broadcastShapes, type ShapeInfo } from './shapes/context.ts';

/**
 * Static shape inference for the ops the studio builds and imports. Dims stay symbolic ('batch')
 * where they pass through unchanged and become null where they cannot be known statically.
 * Small integer tensors (Constant, Shape, Gather, Concat, … — the shape arithmetic torch exports)
 * are also evaluated, with symbolic entries, so a Reshape fed by Shape→Gather→Concat gets a shape.
 * The rules live in shapes/, one file per op family, each exporting its table rows.
 */

const RULES: Record<string, Rule> = {
  ...elementwiseRules, ...convLinearRules, ...shapeOpRules, ...constantRules, ...reduceRules,
};

/** Op types with a shape rule (for callers that want to check a graph up front). */
export const SHAPE_OPS: ReadonlySet<string> = new Set(Object.keys(RULES));

export interface InferOptions {
  /** Shapes to use for graph inputs instead of the declared ones (e.g. a concrete batch size). */
  inputs?: Record<string, Dim[]>;
  /** Throw UNSUPPORTED_OP for an op without a rule instead of leaving its outputs unknown. */
  strict?: boolean;
}

/** Inferred type of every value whose rank is known; values of unknown rank are absent. */
export function inferShapes(graph: Graph, opts: InferOptions = {}): Map<string, ShapeInfo> {
  const ctx = new Ctx();
  for (const [name, t] of graph.initializers) ctx.setConst(name, t);
  for (const v of graph.inputs) {
    if (graph.initializers.has(v.name) && !opts.inputs?.[v.name]) continue;
    const shape = opts.inputs?.[v.name] ?? v.shape;
    if (shape) ctx.types.set(v.name, { dtype: v.dtype, shape: [...shape] });
  }
  const hints = new Map(graph.valueInfo.map((v) => [v.name, v]));
  for (const node of topoSort(graph)) {
    const rule = RULES[node.opType];
    if (rule && (node.domain ?? '') === '') {
      try {
        rule(node, ctx);
      } catch (e) {
        if (e instanceof AppError) throw e;
        throw new AppError('BAD_INPUT', `shape inference failed at ${node.opType} node '${node.name}': ${(e as Error).message}`);
      }
    } else if (opts.strict) {
      throw new AppError('UNSUPPORTED_OP', `no shape rule for op ${node.domain ? node.domain + '.' : ''}${node.opType} (node '${node.name}')`);
    }
    // Declared value_info fills what the rules could not infer.
    for (const o of node.outputs) {
      const h = hints.get(o);
      if (o !== '' && !ctx.types.has(o) && h?.shape) ctx.types.set(o, { dtype: h.dtype, shape: [...h.shape] });
    }
  }
  return ctx.types;
}
