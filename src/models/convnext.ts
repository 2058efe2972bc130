import { f32 } from '../onnx/ir.ts';
import { truncNormalLinear, truncNormalTensor } from './init.ts';
import { NetBuilder } from './net-builder.ts';
import { registerModel, type ResolvedOptions } from './registry.ts';
import type { ModelSpec } from './spec.ts';

/**
 * ConvNeXt (Liu et al. 2022) exactly as torchvision builds it: a 4×4/4 patchify stem with
 * LayerNorm2d, stages of CNBlocks (7×7 depthwise conv → LayerNorm over channels → Linear 4× →
 * GELU → Linear → layer scale, + input), LayerNorm2d + 2×2/2 conv between stages, and a
 * LayerNorm2d-Flatten-Linear classifier; torchvision's state_dict names and init (trunc-normal
 * 0.02 weights, zero biases, layer scale 1e-6). Stochastic depth (0.1 for the tiny model: a
 * per-sample random skip of a block's branch while training, the identity at inference) has no
 * weights and is not in the graph: training runs without it, as EfficientNet's.
 */

const LN_EPS = 1e-6;

/** torchvision's CNBlockConfig: channels, the next stage's channels (null for the last), depth. */
export type CNBlockConfig = [number, number | null, number];

export interface ConvNeXtConfig {
  stages: CNBlockConfig[];
  layerScale: number;
}

// --- blocks

/**
 * A CNBlock on NCHW. The channels-last part runs on rows [N·H·W, C] (LayerNorm over the last axis,
 * the Linears as Gemms), and the layer scale (a [C,1,1] parameter, as torchvision stores it) is
 * applied there as a [C] row before the transpose back.
 */
function cnBlock(nb: NetBuilder, x: string, name: string, c: number, size: number, layerScale: number): string {
  const gamma = nb.param(`${name}.layer_scale`, f32([c, 1, 1], new Float32Array(c).fill(layerScale)));
  const init = (d: number[]) => truncNormalTensor(nb.rng, d, 0.02);
  const dw = nb.conv(x, `${name}.block.0`, { cin: c, cout: c, k: 7, groups: c, bias: true }, init);
  const rows = nb.reshape(nb.transpose(dw, [0, 2, 3, 1]), [-1, c]);
  const normed = nb.layerNorm(rows, `${name}.block.2`, c, LN_EPS);
  const h = nb.gelu(nb.linear(normed, `${name}.block.3`, c, 4 * c, truncNormalLinear(nb.rng)));
  const y = nb.linear(h, `${name}.block.5`, 4 * c, c, truncNormalLinear(nb.rng));
  const scaled = nb.b.op('Mul', [y, nb.reshape(gamma, [c])]);
  const back = nb.transpose(nb.reshapeBatch(scaled, [size, size, c]), [0, 3, 1, 2]);
  return nb.b.op('Add', [back, x]);
}

// --- model

export function buildConvNeXt(name: string, cfg: ConvNeXtConfig, o: ResolvedOptions): ModelSpec {
  const nb = new NetBuilder(o.seed, o.inputSize);
  const init = (d: number[]) => truncNormalTensor(nb.rng, d, 0.02);
  const first = cfg.stages[0][0];
  let size = Math.floor(o.inputSize / 4);
  let x = nb.block('features.0', () =>
    nb.layerNorm2d(nb.conv('input', 'features.0.0', { cin: 3, cout: first, k: 4, stride: 4, pad: 0, bias: true }, init), 'features.0.1', first, LN_EPS));
  let index = 1;
  for (const [c, next, depth] of cfg.stages) {
    const stage = index++;
    for (let j = 0; j < depth; j++) {
      const blockName = `features.${stage}.${j}`;
      const [input, s] = [x, size];
      x = nb.block(blockName, () => cnBlock(nb, input, blockName, c, s, cfg.layerScale));
    }
    if (next !== null) {
      const down = `features.${index++}`;
      const input = x;
      x = nb.block(down, () =>
        nb.conv(nb.layerNorm2d(input, `${down}.0`, c, LN_EPS), `${down}.1`, { cin: c, cout: next, k: 2, stride: 2, pad: 0, bias: true }, init));
      size = Math.floor(size / 2);
    }
  }
  const last = cfg.stages.at(-1)!;
  const width = last[1] ?? last[0];
  // classifier.0 (LayerNorm2d on the pooled [N, C, 1, 1]) is a LayerNorm of the flattened [N, C]
  // rows; it closes the backbone, so that a task's head (replaceHead) keeps it and 'head' trains the Linear.
  const pooled = nb.poolFlatten(x);
  const feats = nb.block('classifier.0', () => nb.layerNorm(pooled, 'classifier.0', width, LN_EPS));
  nb.block('classifier', () => nb.linear(feats, 'classifier.2', width, o.numClasses, truncNormalLinear(nb.rng), 'logits'));
  return nb.finish({ name, numClasses: o.numClasses, inputSize: o.inputSize });
}

// --- configs

const configs = {
  convnext_tiny: { stages: [[96, 192, 3], [192, 384, 3], [384, 768, 9], [768, null, 3]], layerScale: 1e-6 },
} satisfies Record<string, ConvNeXtConfig>;

// --- variants

export function convnextTiny(o: ResolvedOptions): ModelSpec {
  return buildConvNeXt('convnext_tiny', configs.convnext_tiny, o);
}
registerModel('convnext_tiny', convnextTiny, { family: 'convnext', description: 'ConvNeXt-Tiny (torchvision)', defaultInputSize: 224, torchvisionParams1000: 28_589_128 });
