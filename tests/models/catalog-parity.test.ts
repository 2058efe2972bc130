import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildConvNeXt } from '../../src/models/convnext.ts';
import { buildMobileNetV2 } from '../../src/models/mobilenetv2.ts';
import { buildViT } from '../../src/models/vit.ts';
import { countParams, createModel, type ModelSpec } from '../../src/models/index.ts';
import { f32, i64, type TensorData } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';
import { Trainer } from '../../src/training/trainer.ts';
import { maxAbs, maxAbsDiff } from './helpers.ts';

/**
 * The new catalog architectures against PyTorch: each fixture (tests/fixtures/catalog/, made by
 * make_fixtures.py from torchvision's own classes) names every state_dict tensor with its shape
 * and how to fill it (a hash of name and index, recomputed here), and holds PyTorch's eval logits
 * for an input filled the same way. Loading by name into our graph and running it must give the
 * same logits: same layers, order, shapes, strides, pads, groups, norms and activations.
 * The `.grads.json` fixtures hold a training-mode loss and gradients at reduced sizes.
 */

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/catalog');

const Fixture = z.object({
  key: z.string(),
  model: z.string().optional(),
  builder: z.enum(['vit', 'mobilenet_v2']).optional(),
  config: z.record(z.string(), z.number()).optional(),
  input_size: z.number().int(),
  num_classes: z.number().int(),
  params: z.number().int(),
  tensors: z.array(z.object({ name: z.string(), shape: z.array(z.number().int()), scale: z.number(), offset: z.number() })),
  logits: z.array(z.number()),
});
type Fixture = z.infer<typeof Fixture>;

function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(s, 'utf8')) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h;
}

function fmix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x85ebca6b) >>> 0;
  x = (x ^ (x >>> 13)) >>> 0;
  x = Math.imul(x, 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** The fixture script's `fill`: float32((2u − 1)·scale + offset), u from fmix32 of index and name. */
function fill(name: string, dims: number[], scale: number, offset: number): TensorData {
  const h = fnv1a32(name);
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) {
    const u = fmix32((Math.imul(i + 1, 0x9e3779b1) ^ h) >>> 0) / 4294967296;
    data[i] = (2 * u - 1) * scale + offset;
  }
  return f32(dims, data);
}

function build(fx: Fixture): ModelSpec {
  const o = { numClasses: fx.num_classes, inputSize: fx.input_size, seed: 0 };
  if (fx.model) return createModel(fx.model, o);
  const n = z.number();
  if (fx.builder === 'vit') return buildViT(fx.key, z.object({ patch: n, layers: n, heads: n, hidden: n, mlp: n }).parse(fx.config), o);
  return buildMobileNetV2(fx.key, z.object({ widthMult: n, dropout: n }).parse(fx.config), o);
}

const KEYS = ['resnet101', 'efficientnet_b1', 'efficientnet_b2', 'efficientnet_b3', 'mobilenet_v2', 'mobilenet_v2_035', 'convnext_tiny', 'vit_tiny_16', 'vit_b_16_2layers'];

describe('catalog parity with PyTorch (torchvision classes, same weights)', () => {
  it.each(KEYS)('%s gives PyTorch\'s eval logits', async (key) => {
    const fx = Fixture.parse(JSON.parse(fs.readFileSync(path.join(DIR, `${key}.json`), 'utf8')));
    const spec = build(fx);
    expect(countParams(spec)).toBe(fx.params);
    // the same tensors by name and shape: params and BN statistics are the state_dict
    const g = spec.model.graph;
    expect(new Set([...spec.params, ...spec.bnStats])).toEqual(new Set(fx.tensors.map((t) => t.name)));
    for (const t of fx.tensors) {
      expect(g.initializers.get(t.name)!.dims, t.name).toEqual(t.shape);
      g.initializers.set(t.name, fill(t.name, t.shape, t.scale, t.offset));
    }
    const session = await createSession(spec.model, { threads: 1 });
    const out = await session.run({ input: fill('input', [2, 3, fx.input_size, fx.input_size], 1, 0) });
    await session.release();
    expect(out.logits.dims).toEqual([2, fx.num_classes]);
    const got = out.logits.data as Float32Array;
    const diff = maxAbsDiff(got, fx.logits);
    // logits are O(0.1–1) here; measured max differences 1.5e-8 (mobilenet_v2) to 1.7e-6 (vit_b_16, 2 layers)
    expect(maxAbs(fx.logits)).toBeGreaterThan(0.05);
    expect(diff, `${key}: max |Δ| ${diff}`).toBeLessThan(1e-4);
  }, 60_000);
});

const TensorSpec = z.object({ name: z.string(), shape: z.array(z.number().int()), scale: z.number(), offset: z.number() });
const GradFixture = z.object({
  key: z.string(),
  builder: z.enum(['vit', 'mobilenet_v2', 'convnext']),
  config: z.unknown(),
  input_size: z.number().int(),
  targets: z.array(z.number().int()),
  loss: z.number(),
  grads: z.record(z.string(), z.tuple([z.number(), z.number()])),
  tensors: z.array(TensorSpec),
});

function buildGrad(fx: z.infer<typeof GradFixture>): ModelSpec {
  const o = { numClasses: 4, inputSize: fx.input_size, seed: 0 };
  const n = z.number();
  if (fx.builder === 'vit') return buildViT(fx.key, z.object({ patch: n, layers: n, heads: n, hidden: n, mlp: n }).parse(fx.config), o);
  if (fx.builder === 'convnext') {
    const c = z.object({ stages: z.array(z.tuple([n, n.nullable(), n])), layerScale: n }).parse(fx.config);
    return buildConvNeXt(fx.key, c, o);
  }
  return buildMobileNetV2(fx.key, z.object({ widthMult: n, dropout: n }).parse(fx.config), o);
}

describe('catalog gradients match PyTorch (training mode, reduced sizes)', () => {
  // LayerNorm, the erf GELU, layer scale, 7×7 depthwise and patchify convs (ConvNeXt); packed
  // q/k/v attention, class token and position embedding (ViT); ReLU6 and training-mode BN
  // (MobileNetV2): the loss, and each gradient's norm and its dot product with a fixed probe.
  it.each(['convnext_small', 'vit_small', 'mobilenet_v2_035'])('%s', async (key) => {
    const fx = GradFixture.parse(JSON.parse(fs.readFileSync(path.join(DIR, `${key}.grads.json`), 'utf8')));
    const spec = buildGrad(fx);
    expect(new Set(spec.params)).toEqual(new Set(Object.keys(fx.grads)));
    for (const t of fx.tensors) spec.model.graph.initializers.set(t.name, fill(t.name, t.shape, t.scale, t.offset));
    // plain SGD at lr 1: each param moves by minus its gradient
    const trainer = await Trainer.create(spec.model, { loss: { kind: 'cross_entropy' }, trainable: spec.params, optimizer: { kind: 'sgd', momentum: 0, weightDecay: 0 }, threads: 1 });
    try {
      const before = trainer.getState().params;
      const r = await trainer.step(fill('input', [fx.targets.length, 3, fx.input_size, fx.input_size], 1, 0), i64([fx.targets.length], fx.targets), 1);
      const after = trainer.getState().params;
      expect(Math.abs(r.loss - fx.loss)).toBeLessThan(1e-5);
      for (const p of spec.params) {
        const b = before[p].data as Float32Array;
        const a = after[p].data as Float32Array;
        const probe = fill(`probe/${p}`, before[p].dims, 1, 0).data as Float32Array;
        let sq = 0;
        let dot = 0;
        for (let i = 0; i < b.length; i++) {
          const g = b[i] - a[i];
          sq += g * g;
          dot += g * probe[i];
        }
        const [norm, probeDot] = fx.grads[p];
        // the update's float32 rounding (≤ ulp(p)/2 per element) bounds how exactly Δp gives g
        const tol = 1e-3 * norm + 1e-6 * Math.sqrt(b.length);
        expect(Math.abs(Math.sqrt(sq) - norm), `${p} norm`).toBeLessThan(tol);
        expect(Math.abs(dot - probeDot), `${p} probe`).toBeLessThan(tol * 3);
      }
    } finally {
      await trainer.release();
    }
  }, 60_000);
});
