import type { RuleTable } from './context.ts';
import { activationRules } from './rules/activations.ts';
import { convRules } from './rules/conv.ts';
import { elementwiseRules } from './rules/elementwise.ts';
import { gemmRules } from './rules/gemm.ts';
import { lossRules } from './rules/loss.ts';
import { noGradientRules } from './rules/no-gradient.ts';
import { normalizationRules } from './rules/normalization.ts';
import { poolingRules } from './rules/pooling.ts';
import { reduceRules } from './rules/reduce.ts';
import { resizeRules } from './rules/resize.ts';
import { shapeRules } from './rules/shape.ts';

/** opType → gradient rule. A new op is a row in its family's file; an op in two files is a bug. */
export const RULES: Readonly<RuleTable> = Object.freeze(merge([
  elementwiseRules,
  activationRules,
  reduceRules,
  shapeRules,
  gemmRules,
  convRules,
  poolingRules,
  normalizationRules,
  resizeRules,
  lossRules,
  noGradientRules,
]));

function merge(tables: RuleTable[]): RuleTable {
  const out: RuleTable = {};
  for (const t of tables) {
    for (const [op, entry] of Object.entries(t)) {
      if (op in out) throw new Error(`autodiff: two gradient rules for ${op}`);
      out[op] = entry;
    }
  }
  return out;
}
