import { torchDefaultLinear } from './init.ts';
import { NetBuilder } from './net-builder.ts';
import { registerModel, type ResolvedOptions } from './registry.ts';
import type { ModelSpec } from './spec.ts';

/**
 * A small VGG-style CNN for tests and quick experiments: stages of conv3×3-BN-ReLU, each but the
 * last followed by a 2×2 max-pool, then global average pooling and a linear head.
 */

// --- blocks

function stage(nb: NetBuilder, x: string, i: number, cin: number, cout: number, pool: boolean): string {
  return nb.block(`stages.${i}`, () => {
    const y = nb.convBnAct(x, `stages.${i}`, { cin, cout, k: 3 }, 'relu');
    return pool ? nb.maxPool(y, 2, 2, 0) : y;
  });
}

// --- model

interface SmallCnnConfig {
  widths: number[];
}

function buildSmallCnn(name: string, cfg: SmallCnnConfig, o: ResolvedOptions): ModelSpec {
  const nb = new NetBuilder(o.seed, o.inputSize);
  let x = 'input';
  let cin = 3;
  cfg.widths.forEach((w, i) => {
    x = stage(nb, x, i, cin, w, i < cfg.widths.length - 1);
    cin = w;
  });
  const feats = nb.poolFlatten(x);
  nb.block('head', () => nb.linear(feats, 'head', cin, o.numClasses, torchDefaultLinear(nb.rng), 'logits'));
  return nb.finish({ name, numClasses: o.numClasses, inputSize: o.inputSize });
}

// --- configs

const configs = {
  small_cnn: { widths: [16, 32, 64] },
} satisfies Record<string, SmallCnnConfig>;

// --- variants

export function smallCnn(o: ResolvedOptions): ModelSpec {
  return buildSmallCnn('small_cnn', configs.small_cnn, o);
}
registerModel('small_cnn', smallCnn, { family: 'small-cnn', description: '3-stage conv-BN-ReLU CNN for tests and tiny datasets', defaultInputSize: 32 });
