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

/** The file's tensors under the catalog's names for a model of `family`. */
export function toCatalogNames(family: string, src: Map<string, LoadedTensor>): Mapped[] {
  if ((family === 'mobilenetv3' || family === 'efficientnet') && looksLikeTimm(src.keys())) return mapTimmMobileNetV3OrEfficientNet(family, src);
  return [...src].map(([name, tensor]) => ({ name, tensor }));
}
