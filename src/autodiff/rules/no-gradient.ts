import { type RuleTable, noGradient } from '../context.ts';

/** Ops whose outputs are integers, booleans or piecewise constants: no gradient flows through. */
export const noGradientRules: RuleTable = Object.fromEntries(
  [
    'Shape', 'Size', 'Constant', 'ConstantOfShape', 'Range', 'NonZero', 'OneHot',
    'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor',
    'ArgMax', 'ArgMin', 'Sign', 'Floor', 'Ceil', 'Round', 'IsNaN', 'IsInf', 'RandomNormalLike', 'RandomUniformLike',
  ].map((op) => [op, noGradient]),
);
