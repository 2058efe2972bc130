/** Pretrained weights: readers (torchvision .pth, safetensors, the studio's checkpoint), name mapping, matching. */
export { readWeightsFile, sniffWeightsFormat } from './read.ts';
export { readTorchPth } from './pth.ts';
export { readSafetensors } from './safetensors.ts';
export { readStudioCheckpoint } from './studio-ckpt.ts';
export { toCatalogNames, looksLikeTimm } from './mapping.ts';
export { matchWeights, applyWeights, headClassesOf, type MatchResult } from './apply.ts';
export { ALLOWED_GLOBALS } from './pickle.ts';
export { WEIGHTS_LIMITS, type LoadedTensor, type ReadWeights, type SkippedTensor, type WeightsFormat } from './types.ts';
export { PINNED_WEIGHTS, pinnedWeights, DEFAULT_WEIGHTS_BASE_URL, type PinnedWeights } from './pinned.ts';
