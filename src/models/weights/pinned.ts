/**
 * The published torchvision weights each catalog model can download (`torchvision.models.<name>(
 * weights="DEFAULT")`'s file, and the others torchvision publishes for it). torch.hub checks only
 * the first 8 hex digits of the sha256, which are in the file name; where the full sha256 is known
 * it is pinned too and checked whole, else the 8-digit prefix is checked (plan/weights.md).
 */
export interface PinnedWeights {
  /** torchvision's enum member, e.g. IMAGENET1K_V1. */
  variant: string;
  /** The file under the base URL (https://download.pytorch.org/models/). */
  file: string;
  /** The full sha256 where known; else null and only `sha256_prefix` is checked. */
  sha256: string | null;
  sha256_prefix: string;
  /** ImageNet-1k top-1 torchvision reports, for the page. */
  acc1: number;
  default?: boolean;
}

const pin = (variant: string, file: string, acc1: number, sha256: string | null = null, isDefault = false): PinnedWeights => ({
  variant,
  file,
  sha256,
  sha256_prefix: /-([0-9a-f]{8})\.pth$/.exec(file)![1],
  acc1,
  ...(isDefault ? { default: true } : {}),
});

export const PINNED_WEIGHTS: Readonly<Record<string, readonly PinnedWeights[]>> = {
  resnet18: [pin('IMAGENET1K_V1', 'resnet18-f37072fd.pth', 69.758, 'f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec', true)],
  resnet34: [pin('IMAGENET1K_V1', 'resnet34-b627a593.pth', 73.314, null, true)],
  resnet50: [pin('IMAGENET1K_V2', 'resnet50-11ad3fa6.pth', 80.858, null, true), pin('IMAGENET1K_V1', 'resnet50-0676ba61.pth', 76.13)],
  resnet101: [pin('IMAGENET1K_V2', 'resnet101-cd907fc2.pth', 81.886, null, true), pin('IMAGENET1K_V1', 'resnet101-63fe2227.pth', 77.374)],
  mobilenet_v2: [pin('IMAGENET1K_V2', 'mobilenet_v2-7ebf99e0.pth', 72.154, null, true), pin('IMAGENET1K_V1', 'mobilenet_v2-b0353104.pth', 71.878)],
  mobilenet_v3_small: [pin('IMAGENET1K_V1', 'mobilenet_v3_small-047dcff4.pth', 67.668, null, true)],
  mobilenet_v3_large: [pin('IMAGENET1K_V2', 'mobilenet_v3_large-5c1a4163.pth', 75.274, null, true), pin('IMAGENET1K_V1', 'mobilenet_v3_large-8738ca79.pth', 74.042)],
  efficientnet_b0: [pin('IMAGENET1K_V1', 'efficientnet_b0_rwightman-7f5810bc.pth', 77.692, null, true)],
  efficientnet_b1: [pin('IMAGENET1K_V1', 'efficientnet_b1_rwightman-bac287d4.pth', 78.642, null, true), pin('IMAGENET1K_V2', 'efficientnet_b1-c27df63c.pth', 79.838)],
  efficientnet_b2: [pin('IMAGENET1K_V1', 'efficientnet_b2_rwightman-c35c1473.pth', 80.608, null, true)],
  efficientnet_b3: [pin('IMAGENET1K_V1', 'efficientnet_b3_rwightman-b3899882.pth', 82.008, null, true)],
  convnext_tiny: [pin('IMAGENET1K_V1', 'convnext_tiny-983f1562.pth', 82.52, null, true)],
  vit_b_16: [pin('IMAGENET1K_V1', 'vit_b_16-c867db91.pth', 81.072, null, true)],
};

/** The pinned file for a model (its default, or the named variant); null when none is published. */
export function pinnedWeights(model: string, variant?: string, table: Readonly<Record<string, readonly PinnedWeights[]>> = PINNED_WEIGHTS): PinnedWeights | null {
  const list = table[model];
  if (!list) return null;
  return (variant === undefined ? list.find((p) => p.default) : list.find((p) => p.variant === variant)) ?? null;
}

export const DEFAULT_WEIGHTS_BASE_URL = 'https://download.pytorch.org/models/';
