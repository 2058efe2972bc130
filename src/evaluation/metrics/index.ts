/** The evaluation metrics: pure functions over (probs N × C, targets), and their aggregate. */
export { aggregate, type AggregateInput } from './aggregate.ts';
export { balancedAccuracy, cohenKappa } from './agreement.ts';
export { binaryCurve, type BinaryCurve } from './binary-curve.ts';
export { binOf, calibration, ECE_BINS, type Calibration, type ReliabilityBin } from './calibration.ts';
export { accuracy, accuracyOf, confusionFromProbs, confusionMatrix, total, type ConfusionMatrix } from './confusion.ts';
export { downsampleCurve, downsampleIndices } from './downsample.ts';
export { argmaxRows, checkInputs, oneVsRest, type Targets } from './inputs.ts';
export { LOG_LOSS_EPS, logLoss } from './log-loss.ts';
export { meanDefined, rocAucOneVsRest } from './ovr.ts';
export { macroAverage, perClassScores, presentClasses, weightedAverage, type AveragedScores, type ClassScores } from './per-class.ts';
export { averagePrecision, averagePrecisionOf, prCurve, type PrCurve } from './pr.ts';
export { auc, rocAuc, rocCurve, type RocCurve } from './roc.ts';
export * from './schema.ts';
export { reportedTopK, topKAccuracy } from './top-k.ts';
