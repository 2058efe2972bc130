import { normalLinear } from './init.ts';
import { makeDivisible } from './make-divisible.ts';
import { type Activation, type BnOptions, NetBuilder } from './net-builder.ts';
import { registerModel, type ResolvedOptions } from './registry.ts';
import type { ModelSpec } from './spec.ts';

/**
 * MobileNetV3 (Howard et al. 2019) exactly as torchvision builds it: inverted residuals with
 * optional squeeze-excitation (ReLU, hardsigmoid), hardswish, BN eps 1e-3 / momentum 0.01, and a
 * Linear-hardswish-Dropout(0.2)-Linear classifier; torchvision's state_dict names and init.
 */

// --- blocks

/** torchvision's InvertedResidualConfig, channels already scaled by width_mult. */
interface BlockConfig {
  cin: number;
  k: number;
  expanded: number;
  cout: number;
  se: boolean;
  act: Activation;
  stride: number;
}

const BN: BnOptions = { eps: 0.001, momentum: 0.01 };

/** expand 1×1 (if any) → depthwise k×k → SE (if any) → project 1×1, + input when shapes allow. */
function invertedResidual(nb: NetBuilder, x: string, name: string, c: BlockConfig): string {
  let y = x;
  let i = 0;
  if (c.expanded !== c.cin) y = nb.convBnAct(y, `${name}.block.${i++}`, { cin: c.cin, cout: c.expanded, k: 1 }, c.act, BN);
  y = nb.convBnAct(y, `${name}.block.${i++}`, { cin: c.expanded, cout: c.expanded, k: c.k, stride: c.stride, groups: c.expanded }, c.act, BN);
  if (c.se) y = nb.squeezeExcite(y, `${name}.block.${i++}`, c.expanded, makeDivisible(c.expanded / 4 | 0, 8), 'relu', 'hardsigmoid');
  y = nb.convBnAct(y, `${name}.block.${i++}`, { cin: c.expanded, cout: c.cout, k: 1 }, null, BN);
  return c.stride === 1 && c.cin === c.cout ? nb.b.op('Add', [y, x]) : y;
}

// --- model

interface MobileNetV3Config {
  /** Rows of torchvision's bneck_conf: input, kernel, expanded, output, SE, 'RE'|'HS', stride. */
  setting: [number, number, number, number, boolean, 'RE' | 'HS', number][];
  lastChannel: number;
}

function buildMobileNetV3(name: string, cfg: MobileNetV3Config, o: ResolvedOptions): ModelSpec {
  const nb = new NetBuilder(o.seed, o.inputSize);
  const blocks: BlockConfig[] = cfg.setting.map(([cin, k, expanded, cout, se, act, stride]) => ({
    cin: makeDivisible(cin), k, expanded: makeDivisible(expanded), cout: makeDivisible(cout), se, act: act === 'HS' ? 'hardswish' : 'relu', stride,
  }));
  const first = blocks[0].cin;
  let x = nb.block('features.0', () => nb.convBnAct('input', 'features.0', { cin: 3, cout: first, k: 3, stride: 2 }, 'hardswish', BN));
  blocks.forEach((c, i) => {
    const input = x;
    x = nb.block(`features.${i + 1}`, () => invertedResidual(nb, input, `features.${i + 1}`, c));
  });
  const lastIn = blocks[blocks.length - 1].cout;
  const lastOut = 6 * lastIn;
  const lastName = `features.${blocks.length + 1}`;
  const input = x;
  x = nb.block(lastName, () => nb.convBnAct(input, lastName, { cin: lastIn, cout: lastOut, k: 1 }, 'hardswish', BN));
  const feats = nb.poolFlatten(x);
  const last = makeDivisible(cfg.lastChannel);
  nb.block('classifier', () => {
    const init = normalLinear(nb.rng, 0.01);
    const h = nb.act(nb.linear(feats, 'classifier.0', lastOut, last, init), 'hardswish');
    return nb.linear(nb.dropout(h, 'classifier.2', 0.2), 'classifier.3', last, o.numClasses, init, 'logits');
  });
  return nb.finish({ name, numClasses: o.numClasses, inputSize: o.inputSize });
}

// --- configs

const configs = {
  mobilenetv3_large: {
    setting: [
      [16, 3, 16, 16, false, 'RE', 1],
      [16, 3, 64, 24, false, 'RE', 2],
      [24, 3, 72, 24, false, 'RE', 1],
      [24, 5, 72, 40, true, 'RE', 2],
      [40, 5, 120, 40, true, 'RE', 1],
      [40, 5, 120, 40, true, 'RE', 1],
      [40, 3, 240, 80, false, 'HS', 2],
      [80, 3, 200, 80, false, 'HS', 1],
      [80, 3, 184, 80, false, 'HS', 1],
      [80, 3, 184, 80, false, 'HS', 1],
      [80, 3, 480, 112, true, 'HS', 1],
      [112, 3, 672, 112, true, 'HS', 1],
      [112, 5, 672, 160, true, 'HS', 2],
      [160, 5, 960, 160, true, 'HS', 1],
      [160, 5, 960, 160, true, 'HS', 1],
    ],
    lastChannel: 1280,
  },
  mobilenetv3_small: {
    setting: [
      [16, 3, 16, 16, true, 'RE', 2],
      [16, 3, 72, 24, false, 'RE', 2],
      [24, 3, 88, 24, false, 'RE', 1],
      [24, 5, 96, 40, true, 'HS', 2],
      [40, 5, 240, 40, true, 'HS', 1],
      [40, 5, 240, 40, true, 'HS', 1],
      [40, 5, 120, 48, true, 'HS', 1],
      [48, 5, 144, 48, true, 'HS', 1],
      [48, 5, 288, 96, true, 'HS', 2],
      [96, 5, 576, 96, true, 'HS', 1],
      [96, 5, 576, 96, true, 'HS', 1],
    ],
    lastChannel: 1024,
  },
} satisfies Record<string, MobileNetV3Config>;

const meta = (description: string, torchvisionParams1000: number) =>
  ({ family: 'mobilenetv3', description, defaultInputSize: 224, torchvisionParams1000 });

// --- variants

export function mobilenetv3Large(o: ResolvedOptions): ModelSpec {
  return buildMobileNetV3('mobilenet_v3_large', configs.mobilenetv3_large, o);
}
registerModel('mobilenet_v3_large', mobilenetv3Large, meta('MobileNetV3-Large (torchvision mobilenet_v3_large)', 5_483_032));

export function mobilenetv3Small(o: ResolvedOptions): ModelSpec {
  return buildMobileNetV3('mobilenet_v3_small', configs.mobilenetv3_small, o);
}
registerModel('mobilenet_v3_small', mobilenetv3Small, meta('MobileNetV3-Small (torchvision mobilenet_v3_small)', 2_542_856));
