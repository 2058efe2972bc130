/**
 * Reverse-mode autodiff over the ONNX IR. `backward` appends gradient nodes to a graph;
 * `decomposeBatchNormForTraining` prepares training-mode batch norms for it.
 */
export { type BackwardOptions, backward } from './engine.ts';
export { type BatchNormStatUpdate, decomposeBatchNormForTraining, lowerBatchNormTraining } from './batchnorm.ts';
export { RULES } from './registry.ts';
export { type GradContext, type GradRule, NO_GRADIENT, type RuleEntry, type RuleTable } from './context.ts';
