import { validation } from '../kernel/errors.ts';
import { constInts } from '../onnx/ops.ts';
import { constantTensor, normalTensor, truncNormalTensor, xavierLinear, zeroLinear } from './init.ts';
import { NetBuilder } from './net-builder.ts';
import { registerModel, type ResolvedOptions } from './registry.ts';
import type { ModelSpec } from './spec.ts';

/**
 * Vision Transformer (Dosovitskiy et al. 2020) exactly as torchvision's VisionTransformer builds
 * it: a patch×patch/patch conv patch embedding (`conv_proj`), a class token, learned position
 * embeddings, pre-norm encoder blocks (LayerNorm → nn.MultiheadAttention with packed q,k,v →
 * + input; LayerNorm → Linear-GELU-Linear → + input), a final LayerNorm and a Linear head on the
 * class token; LayerNorm eps 1e-6, dropout 0 (torchvision's default: no Dropout in the graph);
 * torchvision's state_dict names and init (the head starts at zero, as torchvision's).
 *
 * Tokens run as rows [N·seq, hidden] so that every Linear is one Gemm and every LayerNorm one
 * LayerNormalization over the last axis. The position embedding has one row per patch of the
 * input size the model is built for (torchvision's `image_size`; 224 for the registered
 * variants): another input size gives another embedding (no interpolation in the graph), so
 * torchvision's 224-px weights load at 224 only.
 */

const LN_EPS = 1e-6;

export interface ViTConfig {
  patch: number;
  layers: number;
  heads: number;
  hidden: number;
  mlp: number;
}

// --- blocks

/** torchvision's EncoderBlock on rows [N·seq, hidden]. */
function encoderBlock(nb: NetBuilder, x: string, name: string, cfg: ViTConfig, seq: number): string {
  const a = nb.selfAttention(nb.layerNorm(x, `${name}.ln_1`, cfg.hidden, LN_EPS), `${name}.self_attention`, cfg.hidden, cfg.heads, seq);
  const y = nb.b.op('Add', [a, x]);
  const h = nb.gelu(nb.linear(nb.layerNorm(y, `${name}.ln_2`, cfg.hidden, LN_EPS), `${name}.mlp.0`, cfg.hidden, cfg.mlp, xavierLinear(nb.rng)));
  return nb.b.op('Add', [y, nb.linear(h, `${name}.mlp.3`, cfg.mlp, cfg.hidden, xavierLinear(nb.rng))]);
}

// --- model

export function buildViT(name: string, cfg: ViTConfig, o: ResolvedOptions): ModelSpec {
  if (o.inputSize % cfg.patch !== 0) throw validation(`${name}: the input size must be a multiple of the patch size ${cfg.patch}, got ${o.inputSize}`);
  const nb = new NetBuilder(o.seed, o.inputSize);
  const grid = o.inputSize / cfg.patch;
  const patches = grid * grid;
  const seq = patches + 1;
  const d = cfg.hidden;
  let x = nb.block('conv_proj', () => {
    // trunc_normal_(std = √(1/fan_in)), zero bias; the class token starts at zero
    const fanIn = 3 * cfg.patch * cfg.patch;
    const emb = nb.conv('input', 'conv_proj', { cin: 3, cout: d, k: cfg.patch, stride: cfg.patch, pad: 0, bias: true },
      (dims) => truncNormalTensor(nb.rng, dims, Math.sqrt(1 / fanIn)));
    const tokens = nb.transpose(nb.reshape(emb, [0, d, patches]), [0, 2, 1]);
    const cls = nb.param('class_token', constantTensor([1, 1, d], 0));
    const pos = nb.param('encoder.pos_embedding', normalTensor(nb.rng, [1, seq, d], 0.02));
    // cat([class_token, tokens], 1) + pos: the tokens padded by one leading zero row, plus
    // pos with the class token added to its first row (no batch-sized Expand of the token)
    const padded = nb.b.op('Pad', [tokens, constInts(nb.b, [0, 1, 0, 0, 0, 0])]);
    const first = nb.b.op('Pad', [cls, constInts(nb.b, [0, 0, 0, 0, patches, 0])]);
    return nb.reshape(nb.b.op('Add', [padded, nb.b.op('Add', [pos, first])]), [-1, d]);
  });
  for (let i = 0; i < cfg.layers; i++) {
    const blockName = `encoder.layers.encoder_layer_${i}`;
    const input = x;
    x = nb.block(blockName, () => encoderBlock(nb, input, blockName, cfg, seq));
  }
  // encoder.ln, then x[:, 0]: LayerNorm is per token, so only the class token's row is normalised
  const input = x;
  const feats = nb.block('encoder.ln', () => {
    const cls = nb.reshapeBatch(nb.b.op('Slice', [nb.reshape(input, [-1, seq, d]), constInts(nb.b, [0]), constInts(nb.b, [1]), constInts(nb.b, [1])]), [d]);
    return nb.layerNorm(cls, 'encoder.ln', d, LN_EPS);
  });
  nb.block('heads', () => nb.linear(feats, 'heads.head', d, o.numClasses, zeroLinear, 'logits'));
  return nb.finish({ name, numClasses: o.numClasses, inputSize: o.inputSize });
}

// --- configs

const configs = {
  vit_b_16: { patch: 16, layers: 12, heads: 12, hidden: 768, mlp: 3072 },
  // timm's vit_tiny_patch16_224 (DeiT-Ti) in torchvision's VisionTransformer
  vit_tiny_16: { patch: 16, layers: 12, heads: 3, hidden: 192, mlp: 768 },
} satisfies Record<string, ViTConfig>;

// --- variants

export function vitB16(o: ResolvedOptions): ModelSpec {
  return buildViT('vit_b_16', configs.vit_b_16, o);
}
registerModel('vit_b_16', vitB16, { family: 'vit', description: 'ViT-B/16 (torchvision)', defaultInputSize: 224, torchvisionParams1000: 86_567_656 });

export function vitTiny16(o: ResolvedOptions): ModelSpec {
  return buildViT('vit_tiny_16', configs.vit_tiny_16, o);
}
registerModel('vit_tiny_16', vitTiny16, {
  family: 'vit', description: 'ViT-Ti/16 (torchvision VisionTransformer: hidden 192, 3 heads, 12 layers, MLP 768; timm vit_tiny_patch16_224)', defaultInputSize: 224, torchvisionParams1000: 5_717_416,
});
