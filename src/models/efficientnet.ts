import { uniformFanOutLinear } from './init.ts';
import { makeDivisible } from './make-divisible.ts';
import { NetBuilder } from './net-builder.ts';
import { registerModel, type ResolvedOptions } from './registry.ts';
import type { ModelSpec } from './spec.ts';

/**
 * EfficientNet (Tan & Le 2019) exactly as torchvision builds it: MBConv blocks with SiLU and
 * squeeze-excitation (SiLU, sigmoid), a Dropout-Linear classifier; torchvision's state_dict names
 * and init. Stochastic depth (a per-sample random skip while training, the identity at inference)
 * has no weights and is not in the graph: training runs without it.
 */

// --- blocks

/** torchvision's MBConvConfig for one block, channels and depth already scaled. */
interface MBConvArgs {
  expandRatio: number;
  k: number;
  stride: number;
  cin: number;
  cout: number;
}

/** expand 1×1 (if ratio > 1) → depthwise k×k → SE → project 1×1, + input when shapes allow. */
function mbConv(nb: NetBuilder, x: string, name: string, c: MBConvArgs): string {
  const expanded = makeDivisible(c.cin * c.expandRatio);
  let y = x;
  let i = 0;
  if (expanded !== c.cin) y = nb.convBnAct(y, `${name}.block.${i++}`, { cin: c.cin, cout: expanded, k: 1 }, 'silu');
  y = nb.convBnAct(y, `${name}.block.${i++}`, { cin: expanded, cout: expanded, k: c.k, stride: c.stride, groups: expanded }, 'silu');
  y = nb.squeezeExcite(y, `${name}.block.${i++}`, expanded, Math.max(1, c.cin / 4 | 0), 'silu', 'sigmoid');
  y = nb.convBnAct(y, `${name}.block.${i++}`, { cin: expanded, cout: c.cout, k: 1 }, null);
  return c.stride === 1 && c.cin === c.cout ? nb.b.op('Add', [y, x]) : y;
}

// --- model

interface EfficientNetConfig {
  widthMult: number;
  depthMult: number;
  dropout: number;
  /** Stages as torchvision's bneck_conf: expand_ratio, kernel, stride, input, output, layers. */
  stages: [number, number, number, number, number, number][];
}

function buildEfficientNet(name: string, cfg: EfficientNetConfig, o: ResolvedOptions): ModelSpec {
  const nb = new NetBuilder(o.seed, o.inputSize);
  const ch = (c: number) => makeDivisible(c * cfg.widthMult);
  const first = ch(cfg.stages[0][3]);
  let x = nb.block('features.0', () => nb.convBnAct('input', 'features.0', { cin: 3, cout: first, k: 3, stride: 2 }, 'silu'));
  cfg.stages.forEach(([expandRatio, k, stride, cin, cout, layers], si) => {
    const n = Math.ceil(layers * cfg.depthMult);
    for (let j = 0; j < n; j++) {
      const name = `features.${si + 1}.${j}`;
      const args = { expandRatio, k, stride: j === 0 ? stride : 1, cin: j === 0 ? ch(cin) : ch(cout), cout: ch(cout) };
      const input = x;
      x = nb.block(name, () => mbConv(nb, input, name, args));
    }
  });
  const lastIn = ch(cfg.stages[cfg.stages.length - 1][4]);
  const lastOut = 4 * lastIn;
  const lastName = `features.${cfg.stages.length + 1}`;
  const input = x;
  x = nb.block(lastName, () => nb.convBnAct(input, lastName, { cin: lastIn, cout: lastOut, k: 1 }, 'silu'));
  const feats = nb.poolFlatten(x);
  nb.block('classifier', () =>
    nb.linear(nb.dropout(feats, 'classifier.0', cfg.dropout), 'classifier.1', lastOut, o.numClasses, uniformFanOutLinear(nb.rng), 'logits'));
  return nb.finish({ name, numClasses: o.numClasses, inputSize: o.inputSize });
}

// --- configs

const B0_STAGES: EfficientNetConfig['stages'] = [
  [1, 3, 1, 32, 16, 1],
  [6, 3, 2, 16, 24, 2],
  [6, 5, 2, 24, 40, 2],
  [6, 3, 2, 40, 80, 3],
  [6, 5, 1, 80, 112, 3],
  [6, 5, 2, 112, 192, 4],
  [6, 3, 1, 192, 320, 1],
];

// torchvision's width and depth multipliers and classifier dropout; depth rounds up (math.ceil).
const configs = {
  efficientnet_b0: { widthMult: 1.0, depthMult: 1.0, dropout: 0.2, stages: B0_STAGES },
  efficientnet_b1: { widthMult: 1.0, depthMult: 1.1, dropout: 0.2, stages: B0_STAGES },
  efficientnet_b2: { widthMult: 1.1, depthMult: 1.2, dropout: 0.3, stages: B0_STAGES },
  efficientnet_b3: { widthMult: 1.2, depthMult: 1.4, dropout: 0.3, stages: B0_STAGES },
} satisfies Record<string, EfficientNetConfig>;

// --- variants

export function efficientnetB0(o: ResolvedOptions): ModelSpec {
  return buildEfficientNet('efficientnet_b0', configs.efficientnet_b0, o);
}
registerModel('efficientnet_b0', efficientnetB0, { family: 'efficientnet', description: 'EfficientNet-B0 (torchvision)', defaultInputSize: 224, torchvisionParams1000: 5_288_548 });

// torchvision's weights were trained at these sizes (their eval transforms crop 240, 260, 300).
export function efficientnetB1(o: ResolvedOptions): ModelSpec {
  return buildEfficientNet('efficientnet_b1', configs.efficientnet_b1, o);
}
registerModel('efficientnet_b1', efficientnetB1, { family: 'efficientnet', description: 'EfficientNet-B1 (torchvision)', defaultInputSize: 240, torchvisionParams1000: 7_794_184 });

export function efficientnetB2(o: ResolvedOptions): ModelSpec {
  return buildEfficientNet('efficientnet_b2', configs.efficientnet_b2, o);
}
registerModel('efficientnet_b2', efficientnetB2, { family: 'efficientnet', description: 'EfficientNet-B2 (torchvision)', defaultInputSize: 260, torchvisionParams1000: 9_109_994 });

export function efficientnetB3(o: ResolvedOptions): ModelSpec {
  return buildEfficientNet('efficientnet_b3', configs.efficientnet_b3, o);
}
registerModel('efficientnet_b3', efficientnetB3, { family: 'efficientnet', description: 'EfficientNet-B3 (torchvision)', defaultInputSize: 300, torchvisionParams1000: 12_233_232 });
