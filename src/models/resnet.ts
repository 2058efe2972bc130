import { torchDefaultLinear } from './init.ts';
import { NetBuilder } from './net-builder.ts';
import { registerModel, type ResolvedOptions } from './registry.ts';
import type { ModelSpec } from './spec.ts';

/**
 * ResNet (He et al. 2015) exactly as torchvision builds it (v1.5: the stride sits on the 3×3 conv
 * of the bottleneck), with torchvision's state_dict names and initialisation.
 */

// --- blocks

interface BlockArgs {
  name: string;
  inplanes: number;
  planes: number;
  stride: number;
}

/** conv3×3-BN-ReLU-conv3×3-BN (+ identity or 1×1 projection), then ReLU. expansion 1. */
function basicBlock(nb: NetBuilder, x: string, a: BlockArgs): string {
  let y = nb.act(nb.bn(nb.conv(x, `${a.name}.conv1`, { cin: a.inplanes, cout: a.planes, k: 3, stride: a.stride }), `${a.name}.bn1`, a.planes), 'relu');
  y = nb.bn(nb.conv(y, `${a.name}.conv2`, { cin: a.planes, cout: a.planes, k: 3 }), `${a.name}.bn2`, a.planes);
  const identity = shortcut(nb, x, a, a.planes);
  return nb.act(nb.b.op('Add', [y, identity]), 'relu');
}

/** conv1×1-BN-ReLU-conv3×3(stride)-BN-ReLU-conv1×1(×4)-BN (+ shortcut), then ReLU. expansion 4. */
function bottleneck(nb: NetBuilder, x: string, a: BlockArgs): string {
  const width = a.planes;
  const out = a.planes * 4;
  let y = nb.act(nb.bn(nb.conv(x, `${a.name}.conv1`, { cin: a.inplanes, cout: width, k: 1 }), `${a.name}.bn1`, width), 'relu');
  y = nb.act(nb.bn(nb.conv(y, `${a.name}.conv2`, { cin: width, cout: width, k: 3, stride: a.stride }), `${a.name}.bn2`, width), 'relu');
  y = nb.bn(nb.conv(y, `${a.name}.conv3`, { cin: width, cout: out, k: 1 }), `${a.name}.bn3`, out);
  const identity = shortcut(nb, x, a, out);
  return nb.act(nb.b.op('Add', [y, identity]), 'relu');
}

/** torchvision's `downsample`: conv1×1(stride)-BN where the shape changes, else the identity. */
function shortcut(nb: NetBuilder, x: string, a: BlockArgs, out: number): string {
  if (a.stride === 1 && a.inplanes === out) return x;
  const y = nb.conv(x, `${a.name}.downsample.0`, { cin: a.inplanes, cout: out, k: 1, stride: a.stride, pad: 0 });
  return nb.bn(y, `${a.name}.downsample.1`, out);
}

// --- model

interface ResNetConfig {
  block: 'basic' | 'bottleneck';
  layers: [number, number, number, number];
}

function buildResNet(name: string, cfg: ResNetConfig, o: ResolvedOptions): ModelSpec {
  const nb = new NetBuilder(o.seed, o.inputSize);
  const expansion = cfg.block === 'basic' ? 1 : 4;
  const blockFn = cfg.block === 'basic' ? basicBlock : bottleneck;
  let x = nb.block('stem', () => {
    const y = nb.act(nb.bn(nb.conv('input', 'conv1', { cin: 3, cout: 64, k: 7, stride: 2, pad: 3 }), 'bn1', 64), 'relu');
    return nb.maxPool(y, 3, 2, 1);
  });
  let inplanes = 64;
  cfg.layers.forEach((count, li) => {
    const planes = 64 * 2 ** li;
    for (let bi = 0; bi < count; bi++) {
      const name = `layer${li + 1}.${bi}`;
      const stride = bi === 0 && li > 0 ? 2 : 1;
      const input = x;
      x = nb.block(name, () => blockFn(nb, input, { name, inplanes, planes, stride }));
      inplanes = planes * expansion;
    }
  });
  const feats = nb.poolFlatten(x);
  nb.block('fc', () => nb.linear(feats, 'fc', inplanes, o.numClasses, torchDefaultLinear(nb.rng), 'logits'));
  return nb.finish({ name, numClasses: o.numClasses, inputSize: o.inputSize });
}

// --- configs

const configs = {
  resnet18: { block: 'basic', layers: [2, 2, 2, 2] },
  resnet34: { block: 'basic', layers: [3, 4, 6, 3] },
  resnet50: { block: 'bottleneck', layers: [3, 4, 6, 3] },
  resnet101: { block: 'bottleneck', layers: [3, 4, 23, 3] },
} satisfies Record<string, ResNetConfig>;

const meta = (description: string, torchvisionParams1000: number) =>
  ({ family: 'resnet', description, defaultInputSize: 224, torchvisionParams1000 });

// --- variants

export function resnet18(o: ResolvedOptions): ModelSpec {
  return buildResNet('resnet18', configs.resnet18, o);
}
registerModel('resnet18', resnet18, meta('ResNet-18 (torchvision)', 11_689_512));

export function resnet34(o: ResolvedOptions): ModelSpec {
  return buildResNet('resnet34', configs.resnet34, o);
}
registerModel('resnet34', resnet34, meta('ResNet-34 (torchvision)', 21_797_672));

export function resnet50(o: ResolvedOptions): ModelSpec {
  return buildResNet('resnet50', configs.resnet50, o);
}
registerModel('resnet50', resnet50, meta('ResNet-50 (torchvision, v1.5)', 25_557_032));

export function resnet101(o: ResolvedOptions): ModelSpec {
  return buildResNet('resnet101', configs.resnet101, o);
}
registerModel('resnet101', resnet101, meta('ResNet-101 (torchvision, v1.5)', 44_549_160));
