import type { LoadedTensor } from './types.ts';

/**
 * Source names → the catalog's names (torchvision's state_dict keys, which our graphs use).
 * torchvision's own files map 1:1. timm's files (timm.create_model(…).state_dict(), the
 * `model.safetensors` of its Hugging Face repos) name layers their own way: one mapping per family,
 * written here once. A family without a timm mapping (or a file already in torchvision's names)
 * passes through unchanged.
 *
 *   resnet         timm's ResNet names are torchvision's (conv1, bn1, layerN.i.{conv,bn}K, downsample.{0,1}, fc).
 *   mobilenetv3    conv_stem/bn1 → features.0.{0,1}; blocks.i.j (stages flattened, in order) → features.k;
 *                  the last ConvBnAct (conv, bn1) → features.N.{0,1}; the 1×1 conv_head (bias, no BN)
 *                  → classifier.0 (a Linear: [out, in, 1, 1] → [out, in]); classifier → classifier.3.
 *   efficientnet   conv_stem/bn1 → features.0.{0,1}; blocks.i.j → features.{i+1}.j; conv_head/bn2 →
 *                  features.{last}.{0,1}; classifier → classifier.1.
 *   inside a block (both): InvertedResidual conv_pw/bn1 (expand), conv_dw/bn2 (depthwise),
 *                  se.conv_reduce/conv_expand (SE: fc1/fc2), conv_pwl/bn3 (project);
 *                  DepthwiseSeparableConv conv_dw/bn1, se, conv_pw/bn2; numbered block.0… in that
 *                  order, skipping what the block does not have.
 *   mobilenetv2    (timm mobilenetv2_*) conv_stem/bn1 → features.0.{0,1}; blocks.i.j (stages flattened,
 *                  k-th block) → features.{k+1}: the first (DepthwiseSeparable) conv_dw/bn1 → conv.0.{0,1},
 *                  conv_pw/bn2 → conv.{1,2}; InvertedResidual conv_pw/bn1 → conv.0.{0,1}, conv_dw/bn2 →
 *                  conv.1.{0,1}, conv_pwl/bn3 → conv.{2,3}; conv_head/bn2 → features.{blocks+1}.{0,1};
 *                  classifier → classifier.1.
 *   convnext       (timm convnext_*) stem.{0,1} → features.0.{0,1}; stages.i.downsample.{0,1} →
 *                  features.{2i}.{0,1}; stages.i.blocks.j → features.{2i+1}.j: conv_dw → block.0, norm →
 *                  block.2, mlp.fc1/fc2 → block.3/block.5, gamma [C] → layer_scale [C, 1, 1];
 *                  head.norm → classifier.0, head.fc → classifier.2.
 *   vit            (timm vit_*_patch16_224) cls_token → class_token, pos_embed → encoder.pos_embedding,
 *                  patch_embed.proj → conv_proj; blocks.i → encoder.layers.encoder_layer_i: norm1/norm2 →
 *                  ln_1/ln_2, attn.qkv.{weight,bias} → self_attention.in_proj_{weight,bias} (the same
 *                  [q; k; v] rows, heads contiguous in each), attn.proj → self_attention.out_proj,
 *                  mlp.fc1/fc2 → mlp.0/mlp.3; norm → encoder.ln; head → heads.head.
 */

export interface Mapped {
  /** The catalog's name. */
  name: string;
  tensor: LoadedTensor;
  /** The source's own name, when it differs. */
  from?: string;
}

const TIMM_MARKERS = ['conv_stem.weight', 'conv_head.weight'];

export function looksLikeTimm(names: Iterable<string>): boolean {
  for (const n of names) if (TIMM_MARKERS.includes(n) || /^blocks\.\d+\.\d+\./.test(n)) return true;
  return false;
}

/** The mapping for one timm block of the EfficientNet/MobileNetV3 builder: sub-layer → torchvision's `block.<p>` name. */
function blockRenamer(subNames: string[]): (sub: string) => string | null {
  const has = (p: string) => subNames.some((s) => s.startsWith(p));
  const roles: { conv: string; bn: string }[] = [];
  const se = has('se.');
  let seAt = -1;
  if (has('conv_pwl.')) {
    roles.push({ conv: 'conv_pw', bn: 'bn1' }, { conv: 'conv_dw', bn: 'bn2' });
    if (se) seAt = roles.push({ conv: '', bn: '' }) - 1;
    roles.push({ conv: 'conv_pwl', bn: 'bn3' });
  } else if (has('conv_dw.')) {
    roles.push({ conv: 'conv_dw', bn: 'bn1' });
    if (se) seAt = roles.push({ conv: '', bn: '' }) - 1;
    roles.push({ conv: 'conv_pw', bn: 'bn2' });
  } else {
    // ConvBnAct: conv, bn1 — a plain conv-bn-act, torchvision's Conv2dNormActivation (.0, .1).
    return (sub) => {
      const m = /^(conv|bn1)\.(.+)$/.exec(sub);
      return m ? `${m[1] === 'conv' ? '0' : '1'}.${m[2]}` : null;
    };
  }
  return (sub) => {
    let m = /^se\.(conv_reduce|conv_expand)\.(.+)$/.exec(sub);
    if (m && seAt >= 0) return `block.${seAt}.${m[1] === 'conv_reduce' ? 'fc1' : 'fc2'}.${m[2]}`;
    m = /^([a-z_0-9]+)\.(.+)$/.exec(sub);
    if (!m) return null;
    for (let p = 0; p < roles.length; p++) {
      if (roles[p].conv === m[1]) return `block.${p}.0.${m[2]}`;
      if (roles[p].bn === m[1]) return `block.${p}.1.${m[2]}`;
    }
    return null;
  };
}

interface BlockKey {
  i: number;
  j: number;
}

function timmBlocks(names: string[]): { blocks: BlockKey[]; subs: Map<string, string[]> } {
  const subs = new Map<string, string[]>();
  const blocks: BlockKey[] = [];
  for (const n of names) {
    const m = /^blocks\.(\d+)\.(\d+)\.(.+)$/.exec(n);
    if (!m) continue;
    const key = `${m[1]}.${m[2]}`;
    if (!subs.has(key)) {
      subs.set(key, []);
      blocks.push({ i: Number(m[1]), j: Number(m[2]) });
    }
    subs.get(key)!.push(m[3]);
  }
  blocks.sort((a, b) => a.i - b.i || a.j - b.j);
  return { blocks, subs };
}

function mapTimmMobileNetV3OrEfficientNet(family: 'mobilenetv3' | 'efficientnet', src: Map<string, LoadedTensor>): Mapped[] {
  const names = [...src.keys()];
  const { blocks, subs } = timmBlocks(names);
  const target = new Map<string, { name: string; reshape?: number[] }>();
  // blocks
  const lastStage = blocks.length ? blocks[blocks.length - 1].i : -1;
  blocks.forEach((b, ordinal) => {
    const key = `${b.i}.${b.j}`;
    const sub = subs.get(key)!;
    const rename = blockRenamer(sub);
    const base = family === 'mobilenetv3' ? `features.${ordinal + 1}` : `features.${b.i + 1}.${b.j}`;
    for (const s of sub) {
      const r = rename(s);
      if (r !== null) target.set(`blocks.${key}.${s}`, { name: `${base}.${r}` });
    }
  });
  for (const n of names) {
    let m = /^conv_stem\.(.+)$/.exec(n);
    if (m) target.set(n, { name: `features.0.0.${m[1]}` });
    m = /^bn1\.(.+)$/.exec(n);
    if (m) target.set(n, { name: `features.0.1.${m[1]}` });
    if (family === 'mobilenetv3') {
      m = /^conv_head\.(weight|bias)$/.exec(n);
      if (m) {
        const t = src.get(n)!;
        target.set(n, { name: `classifier.0.${m[1]}`, ...(m[1] === 'weight' && t.dims.length === 4 ? { reshape: [t.dims[0], t.dims[1]] } : {}) });
      }
      m = /^classifier\.(weight|bias)$/.exec(n);
      if (m) target.set(n, { name: `classifier.3.${m[1]}` });
    } else {
      // torchvision: features.<stages+1> is the head conv; timm's stages are blocks.0..lastStage.
      const last = lastStage + 2;
      m = /^conv_head\.(.+)$/.exec(n);
      if (m) target.set(n, { name: `features.${last}.0.${m[1]}` });
      m = /^bn2\.(.+)$/.exec(n);
      if (m) target.set(n, { name: `features.${last}.1.${m[1]}` });
      m = /^classifier\.(weight|bias)$/.exec(n);
      if (m) target.set(n, { name: `classifier.1.${m[1]}` });
    }
  }
  const out: Mapped[] = [];
  for (const [n, t] of src) {
    const to = target.get(n);
    if (!to) {
      out.push({ name: n, tensor: t });
      continue;
    }
    const tensor = to.reshape && to.reshape.reduce((a, d) => a * d, 1) === t.data.length ? { dims: to.reshape, data: t.data } : t;
    out.push({ name: to.name, tensor, from: n });
  }
  return out;
}

interface Target {
  name: string;
  reshape?: number[];
}

/** Renames each tensor `rule` knows; the others keep their names (reported by the matcher). */
function mapByRule(src: Map<string, LoadedTensor>, rule: (name: string, t: LoadedTensor) => Target | null): Mapped[] {
  const out: Mapped[] = [];
  for (const [n, t] of src) {
    const to = rule(n, t);
    if (!to) {
      out.push({ name: n, tensor: t });
      continue;
    }
    const tensor = to.reshape && to.reshape.reduce((a, d) => a * d, 1) === t.data.length ? { dims: to.reshape, data: t.data } : t;
    out.push({ name: to.name, tensor, from: n });
  }
  return out;
}

function mapTimmMobileNetV2(src: Map<string, LoadedTensor>): Mapped[] {
  const { blocks, subs } = timmBlocks([...src.keys()]);
  const ordinal = new Map(blocks.map((b, k) => [`${b.i}.${b.j}`, k]));
  const head = blocks.length + 1;
  const IR: Record<string, string> = { conv_pw: 'conv.0.0', bn1: 'conv.0.1', conv_dw: 'conv.1.0', bn2: 'conv.1.1', conv_pwl: 'conv.2', bn3: 'conv.3' };
  const DS: Record<string, string> = { conv_dw: 'conv.0.0', bn1: 'conv.0.1', conv_pw: 'conv.1', bn2: 'conv.2' };
  return mapByRule(src, (n) => {
    let m = /^blocks\.(\d+\.\d+)\.([a-z_0-9]+)\.(.+)$/.exec(n);
    if (m) {
      const roles = subs.get(m[1])!.some((s) => s.startsWith('conv_pwl.')) ? IR : DS;
      const to = roles[m[2]];
      return to ? { name: `features.${ordinal.get(m[1])! + 1}.${to}.${m[3]}` } : null;
    }
    m = /^(conv_stem|bn1|conv_head|bn2|classifier)\.(.+)$/.exec(n);
    if (!m) return null;
    const to = { conv_stem: 'features.0.0', bn1: 'features.0.1', conv_head: `features.${head}.0`, bn2: `features.${head}.1`, classifier: 'classifier.1' }[m[1]];
    return to ? { name: `${to}.${m[2]}` } : null;
  });
}

function mapTimmConvNeXt(src: Map<string, LoadedTensor>): Mapped[] {
  const BLOCK: Record<string, string> = { conv_dw: 'block.0', norm: 'block.2', 'mlp.fc1': 'block.3', 'mlp.fc2': 'block.5' };
  return mapByRule(src, (n, t) => {
    let m = /^stem\.([01])\.(.+)$/.exec(n);
    if (m) return { name: `features.0.${m[1]}.${m[2]}` };
    m = /^stages\.(\d+)\.downsample\.([01])\.(.+)$/.exec(n);
    if (m) return { name: `features.${2 * Number(m[1])}.${m[2]}.${m[3]}` };
    m = /^stages\.(\d+)\.blocks\.(\d+)\.(.+)$/.exec(n);
    if (m) {
      const base = `features.${2 * Number(m[1]) + 1}.${m[2]}`;
      if (m[3] === 'gamma') return { name: `${base}.layer_scale`, reshape: [t.dims[0], 1, 1] };
      const sub = /^(conv_dw|norm|mlp\.fc1|mlp\.fc2)\.(.+)$/.exec(m[3]);
      return sub ? { name: `${base}.${BLOCK[sub[1]]}.${sub[2]}` } : null;
    }
    m = /^head\.(norm|fc)\.(.+)$/.exec(n);
    if (m) return { name: `classifier.${m[1] === 'norm' ? 0 : 2}.${m[2]}` };
    return null;
  });
}

function mapTimmViT(src: Map<string, LoadedTensor>): Mapped[] {
  const BLOCK: Record<string, string> = { norm1: 'ln_1', norm2: 'ln_2', 'attn.proj': 'self_attention.out_proj', 'mlp.fc1': 'mlp.0', 'mlp.fc2': 'mlp.3' };
  return mapByRule(src, (n) => {
    if (n === 'cls_token') return { name: 'class_token' };
    if (n === 'pos_embed') return { name: 'encoder.pos_embedding' };
    let m = /^patch_embed\.proj\.(.+)$/.exec(n);
    if (m) return { name: `conv_proj.${m[1]}` };
    m = /^blocks\.(\d+)\.(.+)$/.exec(n);
    if (m) {
      const base = `encoder.layers.encoder_layer_${m[1]}`;
      const qkv = /^attn\.qkv\.(weight|bias)$/.exec(m[2]);
      if (qkv) return { name: `${base}.self_attention.in_proj_${qkv[1]}` };
      const sub = /^(norm1|norm2|attn\.proj|mlp\.fc1|mlp\.fc2)\.(.+)$/.exec(m[2]);
      return sub ? { name: `${base}.${BLOCK[sub[1]]}.${sub[2]}` } : null;
    }
    m = /^(norm|head)\.(.+)$/.exec(n);
    if (m) return { name: `${m[1] === 'norm' ? 'encoder.ln' : 'heads.head'}.${m[2]}` };
    return null;
  });
}

const hasName = (src: Map<string, LoadedTensor>, re: RegExp) => [...src.keys()].some((n) => re.test(n));

/** The file's tensors under the catalog's names for a model of `family`. */
export function toCatalogNames(family: string, src: Map<string, LoadedTensor>): Mapped[] {
  if ((family === 'mobilenetv3' || family === 'efficientnet') && looksLikeTimm(src.keys())) return mapTimmMobileNetV3OrEfficientNet(family, src);
  if (family === 'mobilenetv2' && looksLikeTimm(src.keys())) return mapTimmMobileNetV2(src);
  if (family === 'convnext' && hasName(src, /^(stem\.0\.|stages\.\d+\.)/)) return mapTimmConvNeXt(src);
  if (family === 'vit' && hasName(src, /^(cls_token$|pos_embed$|patch_embed\.)/)) return mapTimmViT(src);
  return [...src].map(([name, tensor]) => ({ name, tensor }));
}
