import { normalLinear } from './init.ts';
import { makeDivisible } from './make-divisible.ts';
import { NetBuilder } from './net-builder.ts';
import { registerModel, type ResolvedOptions } from './registry.ts';
import type { ModelSpec } from './spec.ts';

/**
 * MobileNetV2 (Sandler et al. 2018) exactly as torchvision builds it: inverted residuals with
 * ReLU6 (a linear bottleneck: no activation after the projection), BN eps 1e-5 / momentum 0.1,
 * a Dropout(0.2)-Linear classifier; torchvision's state_dict names (`features.N.conv.…`) and init.
 */

// --- blocks

/** expand 1×1 (if t ≠ 1) → depthwise 3×3 → project 1×1 + BN, + input when shapes allow. */
function invertedResidual(nb: NetBuilder, x: string, name: string, cin: number, cout: number, stride: number, t: number): string {
  // torchvision: hidden_dim = int(round(inp * expand_ratio)); inp and t are integers here
  const hidden = Math.round(cin * t);
  let y = x;
  let i = 0;
  if (t !== 1) y = nb.convBnAct(y, `${name}.conv.${i++}`, { cin, cout: hidden, k: 1 }, 'relu6');
  y = nb.convBnAct(y, `${name}.conv.${i++}`, { cin: hidden, cout: hidden, k: 3, stride, groups: hidden }, 'relu6');
  y = nb.conv(y, `${name}.conv.${i++}`, { cin: hidden, cout, k: 1 });
  y = nb.bn(y, `${name}.conv.${i++}`, cout);
  return stride === 1 && cin === cout ? nb.b.op('Add', [x, y]) : y;
}

// --- model

export interface MobileNetV2Config {
  widthMult: number;
  dropout: number;
}

/** torchvision's inverted_residual_setting: expansion t, channels c, repeats n, first stride s. */
const SETTING: [number, number, number, number][] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

export function buildMobileNetV2(name: string, cfg: MobileNetV2Config, o: ResolvedOptions): ModelSpec {
  const nb = new NetBuilder(o.seed, o.inputSize);
  let cin = makeDivisible(32 * cfg.widthMult);
  const last = makeDivisible(1280 * Math.max(1, cfg.widthMult));
  const first = cin;
  let x = nb.block('features.0', () => nb.convBnAct('input', 'features.0', { cin: 3, cout: first, k: 3, stride: 2 }, 'relu6'));
  let index = 1;
  for (const [t, c, n, s] of SETTING) {
    const cout = makeDivisible(c * cfg.widthMult);
    for (let i = 0; i < n; i++) {
      const blockName = `features.${index++}`;
      const [input, inCh, stride] = [x, cin, i === 0 ? s : 1];
      x = nb.block(blockName, () => invertedResidual(nb, input, blockName, inCh, cout, stride, t));
      cin = cout;
    }
  }
  const lastName = `features.${index}`;
  const input = x;
  x = nb.block(lastName, () => nb.convBnAct(input, lastName, { cin, cout: last, k: 1 }, 'relu6'));
  const feats = nb.poolFlatten(x);
  nb.block('classifier', () =>
    nb.linear(nb.dropout(feats, 'classifier.0', cfg.dropout), 'classifier.1', last, o.numClasses, normalLinear(nb.rng, 0.01), 'logits'));
  return nb.finish({ name, numClasses: o.numClasses, inputSize: o.inputSize });
}

// --- variants

export function mobilenetV2(o: ResolvedOptions): ModelSpec {
  return buildMobileNetV2('mobilenet_v2', { widthMult: 1, dropout: 0.2 }, o);
}
registerModel('mobilenet_v2', mobilenetV2, { family: 'mobilenetv2', description: 'MobileNetV2 (torchvision)', defaultInputSize: 224, torchvisionParams1000: 3_504_872 });
