import { describe, expect, it } from 'vitest';
import { buildConvNeXt } from '../../../src/models/convnext.ts';
import { createModel } from '../../../src/models/index.ts';
import { buildMobileNetV2 } from '../../../src/models/mobilenetv2.ts';
import { buildViT } from '../../../src/models/vit.ts';
import type { ModelSpec } from '../../../src/models/spec.ts';
import { matchWeights, toCatalogNames, type LoadedTensor } from '../../../src/models/weights/index.ts';

/**
 * timm's names for MobileNetV2, ConvNeXt and ViT map onto our (torchvision-named) graphs. Each test
 * writes a timm-named file from the model's own initializers with the inverse mapping, spelled out
 * here from timm's module names (timm/models/efficientnet.py `_gen_mobilenet_v2` with
 * efficientnet_blocks.py, convnext.py, vision_transformer.py), and checks that `toCatalogNames`
 * gives back every tensor under its catalog name with the same shape and values.
 */

type Inverse = (name: string, dims: number[]) => { name: string; dims?: number[] };

/** MobileNetV2: timm's arch_def repeats per stage (ds_r1, ir_r2, ir_r3, ir_r4, ir_r3, ir_r3, ir_r1). */
const MBV2_REPEATS = [1, 2, 3, 4, 3, 3, 1];
const mobilenetV2ToTimm: Inverse = (name) => {
  const stageOf: [number, number][] = [];
  MBV2_REPEATS.forEach((r, i) => { for (let j = 0; j < r; j++) stageOf.push([i, j]); });
  const head = stageOf.length + 1;
  let m = /^features\.0\.([01])\.(.+)$/.exec(name);
  if (m) return { name: `${m[1] === '0' ? 'conv_stem' : 'bn1'}.${m[2]}` };
  m = /^features\.(\d+)\.([01])\.(.+)$/.exec(name);
  if (m && Number(m[1]) === head) return { name: `${m[2] === '0' ? 'conv_head' : 'bn2'}.${m[3]}` };
  m = /^features\.(\d+)\.conv\.(.+)$/.exec(name);
  if (m) {
    const [i, j] = stageOf[Number(m[1]) - 1];
    const ds = Number(m[1]) === 1;
    const roles: Record<string, string> = ds
      ? { '0.0': 'conv_dw', '0.1': 'bn1', '1': 'conv_pw', '2': 'bn2' }
      : { '0.0': 'conv_pw', '0.1': 'bn1', '1.0': 'conv_dw', '1.1': 'bn2', '2': 'conv_pwl', '3': 'bn3' };
    const r = /^(\d+\.\d+|\d+)\.(weight|bias|running_mean|running_var)$/.exec(m[2])!;
    return { name: `blocks.${i}.${j}.${roles[r[1]]}.${r[2]}` };
  }
  m = /^classifier\.1\.(.+)$/.exec(name);
  if (m) return { name: `classifier.${m[1]}` };
  throw new Error(`no timm name for ${name}`);
};

const convnextToTimm: Inverse = (name, dims) => {
  let m = /^features\.0\.([01])\.(.+)$/.exec(name);
  if (m) return { name: `stem.${m[1]}.${m[2]}` };
  m = /^features\.(\d+)\.(\d+)\.(.+)$/.exec(name);
  if (m && Number(m[1]) % 2 === 1) {
    const stage = (Number(m[1]) - 1) / 2;
    const base = `stages.${stage}.blocks.${m[2]}`;
    if (m[3] === 'layer_scale') return { name: `${base}.gamma`, dims: [dims[0]] };
    const roles: Record<string, string> = { 'block.0': 'conv_dw', 'block.2': 'norm', 'block.3': 'mlp.fc1', 'block.5': 'mlp.fc2' };
    const r = /^(block\.\d)\.(weight|bias)$/.exec(m[3])!;
    return { name: `${base}.${roles[r[1]]}.${r[2]}` };
  }
  m = /^features\.(\d+)\.([01])\.(weight|bias)$/.exec(name);
  if (m) return { name: `stages.${Number(m[1]) / 2}.downsample.${m[2]}.${m[3]}` };
  m = /^classifier\.([02])\.(.+)$/.exec(name);
  if (m) return { name: `head.${m[1] === '0' ? 'norm' : 'fc'}.${m[2]}` };
  throw new Error(`no timm name for ${name}`);
};

const vitToTimm: Inverse = (name) => {
  const fixed: Record<string, string> = { class_token: 'cls_token', 'encoder.pos_embedding': 'pos_embed' };
  if (fixed[name]) return { name: fixed[name] };
  let m = /^conv_proj\.(.+)$/.exec(name);
  if (m) return { name: `patch_embed.proj.${m[1]}` };
  m = /^encoder\.layers\.encoder_layer_(\d+)\.(.+)$/.exec(name);
  if (m) {
    const roles: Record<string, string> = {
      'ln_1.weight': 'norm1.weight', 'ln_1.bias': 'norm1.bias', 'ln_2.weight': 'norm2.weight', 'ln_2.bias': 'norm2.bias',
      'self_attention.in_proj_weight': 'attn.qkv.weight', 'self_attention.in_proj_bias': 'attn.qkv.bias',
      'self_attention.out_proj.weight': 'attn.proj.weight', 'self_attention.out_proj.bias': 'attn.proj.bias',
      'mlp.0.weight': 'mlp.fc1.weight', 'mlp.0.bias': 'mlp.fc1.bias', 'mlp.3.weight': 'mlp.fc2.weight', 'mlp.3.bias': 'mlp.fc2.bias',
    };
    return { name: `blocks.${m[1]}.${roles[m[2]]}` };
  }
  m = /^encoder\.ln\.(.+)$/.exec(name);
  if (m) return { name: `norm.${m[1]}` };
  m = /^heads\.head\.(.+)$/.exec(name);
  if (m) return { name: `head.${m[1]}` };
  throw new Error(`no timm name for ${name}`);
};

/** The model's parameters and BN statistics, each with its own values (a tensor mapped to another of the same shape is caught). */
function catalogTensors(spec: ModelSpec): Map<string, LoadedTensor> {
  const out = new Map<string, LoadedTensor>();
  let k = 0;
  for (const name of [...spec.params, ...spec.bnStats]) {
    const t = spec.model.graph.initializers.get(name)!;
    const data = new Float32Array(t.data.length);
    for (let i = 0; i < data.length; i++) data[i] = k + i * 1e-3;
    k++;
    out.set(name, { dims: [...t.dims], data });
  }
  return out;
}

function checkRoundTrip(spec: ModelSpec, family: string, inverse: Inverse, marker: string) {
  const catalog = catalogTensors(spec);
  const timm = new Map<string, LoadedTensor>();
  for (const [name, t] of catalog) {
    const to = inverse(name, t.dims);
    expect(timm.has(to.name), to.name).toBe(false);
    timm.set(to.name, { dims: to.dims ?? t.dims, data: t.data });
  }
  expect(timm.has(marker)).toBe(true);
  const mapped = toCatalogNames(family, timm);
  expect(mapped.length).toBe(catalog.size);
  const seen = new Set<string>();
  for (const m of mapped) {
    const want = catalog.get(m.name);
    expect(want, `${m.from ?? '?'} → ${m.name}`).toBeDefined();
    expect(m.from, m.name).toBeDefined();
    expect(m.tensor.dims, m.name).toEqual(want!.dims);
    // the same values: the mapping hands the file's data on (a reshape keeps the array)
    expect(m.tensor.data === want!.data, m.name).toBe(true);
    seen.add(m.name);
  }
  expect([...catalog.keys()].filter((n) => !seen.has(n))).toEqual([]);
  // The matcher agrees: nothing missing, nothing skipped.
  const r = matchWeights(spec, family, timm);
  expect(r.missing).toEqual([]);
  expect(r.skipped).toEqual([]);
  expect(r.values.size).toBe(catalog.size);
}

const o = (inputSize: number) => ({ numClasses: 7, inputSize, seed: 0 });

describe('timm names → catalog names (mobilenetv2, convnext, vit)', () => {
  it('mobilenet_v2 width 0.35 (timm mobilenetv2_035)', () => {
    checkRoundTrip(buildMobileNetV2('mobilenet_v2_035', { widthMult: 0.35, dropout: 0.2 }, o(32)), 'mobilenetv2', mobilenetV2ToTimm, 'conv_stem.weight');
  });
  it('mobilenet_v2 (timm mobilenetv2_100)', () => {
    checkRoundTrip(createModel('mobilenet_v2', { numClasses: 1000, inputSize: 32 }), 'mobilenetv2', mobilenetV2ToTimm, 'blocks.6.0.conv_pwl.weight');
  });
  it('convnext, reduced (4 stages, widths 8…32)', () => {
    const spec = buildConvNeXt('convnext_small', { stages: [[8, 16, 2], [16, 24, 1], [24, 32, 1], [32, null, 2]], layerScale: 1e-6 }, o(64));
    checkRoundTrip(spec, 'convnext', convnextToTimm, 'stages.0.blocks.1.gamma');
  });
  it('convnext_tiny (timm convnext_tiny)', () => {
    checkRoundTrip(createModel('convnext_tiny', { numClasses: 1000, inputSize: 32 }), 'convnext', convnextToTimm, 'stages.3.downsample.1.weight');
  });
  it('vit, reduced (2 layers, hidden 32)', () => {
    checkRoundTrip(buildViT('vit_small', { patch: 16, layers: 2, heads: 2, hidden: 32, mlp: 64 }, o(32)), 'vit', vitToTimm, 'cls_token');
  });
  it('vit_tiny_16 (timm vit_tiny_patch16_224)', () => {
    const spec = createModel('vit_tiny_16', { numClasses: 1000, inputSize: 224 });
    expect(spec.model.graph.initializers.get('encoder.pos_embedding')!.dims).toEqual([1, 197, 192]);
    expect(spec.model.graph.initializers.get('encoder.layers.encoder_layer_11.self_attention.in_proj_weight')!.dims).toEqual([576, 192]);
    checkRoundTrip(spec, 'vit', vitToTimm, 'blocks.11.attn.qkv.weight');
  });

  it('torchvision-named files pass through unchanged for these families', () => {
    for (const [family, spec] of [
      ['mobilenetv2', buildMobileNetV2('m', { widthMult: 0.35, dropout: 0.2 }, o(32))],
      ['convnext', buildConvNeXt('c', { stages: [[8, 16, 1], [16, null, 1]], layerScale: 1e-6 }, o(32))],
      ['vit', buildViT('v', { patch: 16, layers: 1, heads: 2, hidden: 16, mlp: 32 }, o(32))],
    ] as const) {
      const tv = catalogTensors(spec);
      const mapped = toCatalogNames(family, tv);
      expect(mapped.map((m) => m.name), family).toEqual([...tv.keys()]);
      expect(mapped.every((m) => m.from === undefined), family).toBe(true);
    }
  });
});
