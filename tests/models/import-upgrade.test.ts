import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { isAppError } from '../../src/kernel/errors.ts';
import { importOnnxBackbone, importOnnxBytes, type ModelSpec } from '../../src/models/index.ts';
import { decodeModel, encodeModel } from '../../src/onnx/codec.ts';
import { f32, i64, type Model, type TensorData } from '../../src/onnx/ir.ts';
import { inferShapes } from '../../src/onnx/shape-inference.ts';
import { createSession } from '../../src/runtime/session.ts';
import { Trainer } from '../../src/training/trainer.ts';
import { batchOf, maxAbs, maxAbsDiff } from './helpers.ts';

/**
 * ONNX files at opsets 9–12 (tests/fixtures/onnx-zoo, exported by Debian's PyTorch 1.13 with
 * make_fixtures.py) import through the same function the API uses, run in onnxruntime as opset-17
 * graphs that compute what the original computes, and train.
 */

const ZOO = path.resolve(import.meta.dirname, '../fixtures/onnx-zoo');
const TensorJson = z.object({ shape: z.array(z.number().int()), data: z.array(z.number()) });
const Expected = z.object({
  opset: z.number().int(),
  training_export: z.boolean(),
  classifier: z.object({ weight: z.string(), bias: z.string() }),
  onnx_matches_torch: z.boolean(),
  input: TensorJson,
  expected_eval_output: TensorJson,
});

interface ZooFixture {
  name: string;
  bytes: Uint8Array;
  info: z.infer<typeof Expected>;
  input: TensorData;
  expected: TensorData;
}

function zoo(name: string): ZooFixture {
  const info = Expected.parse(JSON.parse(fs.readFileSync(path.join(ZOO, `${name}.expected.json`), 'utf8')));
  return {
    name,
    bytes: new Uint8Array(fs.readFileSync(path.join(ZOO, `${name}.onnx`))),
    info,
    input: f32(info.input.shape, info.input.data),
    expected: f32(info.expected_eval_output.shape, info.expected_eval_output.data),
  };
}

const FIXTURES = fs.readdirSync(ZOO).filter((f) => f.endsWith('.onnx')).map((f) => f.slice(0, -'.onnx'.length)).sort();

async function run(model: Model | Uint8Array, input: TensorData, output = 'logits'): Promise<Float32Array> {
  const s = await createSession(model, { threads: 1 });
  try {
    return (await s.run({ input }))[output].data as Float32Array;
  } finally {
    await s.release();
  }
}

/** The source's own classifier put back into the new head, so that the import must be lossless. */
function withClassifier(spec: ModelSpec, source: Model, weight: string, bias?: string): ModelSpec {
  const inits = spec.model.graph.initializers;
  const w = source.graph.initializers.get(weight)!;
  const k = w.dims[0];
  inits.set(spec.head[0], { ...w, dims: [k, w.data.length / k] }); // a 1×1 conv's [K, C, 1, 1] too
  inits.set(spec.head[1], bias ? source.graph.initializers.get(bias)! : f32([k], new Float32Array(k)));
  return spec;
}

/** What must be gone after the upgrade: every op form older than opset 13. */
function expectOpset17Forms(spec: ModelSpec): void {
  expect(spec.model.opsetImports).toEqual([{ domain: '', version: 17 }]);
  for (const n of spec.model.graph.nodes) {
    expect(n.opType, n.name).not.toBe('Upsample');
    const a = Object.keys(n.attrs);
    if (n.opType === 'Clip') expect(a, n.name).toEqual([]);
    if (n.opType === 'Pad') expect(a.filter((k) => k !== 'mode'), n.name).toEqual([]);
    if (['Squeeze', 'Unsqueeze', 'ReduceSum'].includes(n.opType)) expect(a.filter((k) => k !== 'keepdims'), n.name).toEqual([]);
    if (n.opType === 'Split') expect(a, n.name).toEqual(['axis']);
    if (n.opType === 'Slice') expect(a, n.name).toEqual([]);
    if (n.opType === 'Dropout') expect(a, n.name).toEqual([]);
    if (n.opType === 'BatchNormalization') expect(a.sort(), n.name).toEqual(['epsilon', 'momentum']);
    if (n.opType === 'Resize') expect(n.attrs['coordinate_transformation_mode'], n.name).toBeDefined();
  }
  // Every value has a static shape past the batch axis: what the gradient rules need.
  const types = inferShapes(spec.model.graph, { strict: true });
  for (const n of spec.model.graph.nodes) {
    for (const o of n.outputs) if (o) expect(types.get(o)?.shape.slice(1).every((d) => typeof d === 'number'), `${n.name} → ${o}`).toBe(true);
  }
}

describe('importing ONNX files of opsets 9–12 (torch.onnx.export)', () => {
  it('has fixtures at every opset from 9 to 12', () => {
    const opsets = new Set(FIXTURES.map((f) => zoo(f).info.opset));
    expect([...opsets].sort((a, b) => a - b)).toEqual([9, 10, 11, 12]);
  });

  for (const name of FIXTURES) {
    it(`${name}: upgraded to opset 17, gives PyTorch's output (and the original file's in onnxruntime)`, async () => {
      const fx = zoo(name);
      const source = decodeModel(fx.bytes);
      expect(source.opsetImports.find((o) => o.domain === '')?.version).toBe(fx.info.opset);
      const k = fx.expected.dims[1];
      const spec = withClassifier(importOnnxBytes(fx.bytes, { numClasses: k }), source, fx.info.classifier.weight, fx.info.classifier.bias);
      expectOpset17Forms(spec);
      const out = await run(spec.model, fx.input);
      const want = fx.expected.data as Float32Array;
      if (fx.info.onnx_matches_torch) expect(maxAbsDiff(out, want) / maxAbs(want)).toBeLessThan(1e-4);
      // A training export's original runs its batch norms on batch statistics in onnxruntime.
      if (!fx.info.training_export) expect(maxAbsDiff(out, await run(fx.bytes, fx.input))).toBeLessThan(1e-5);
      // The stored form round-trips (what a run re-imports is the file; what it exports is this).
      expect(decodeModel(encodeModel(spec.model)).opsetImports).toEqual([{ domain: '', version: 17 }]);
    });
  }

  for (const name of FIXTURES) {
    it(`${name}: one training step runs (every parameter, batch norms in training mode)`, async () => {
      const fx = zoo(name);
      const spec = importOnnxBytes(fx.bytes, { numClasses: 3, seed: 1 });
      const trainer = await Trainer.create(spec.model, { loss: { kind: 'cross_entropy' }, trainable: spec.params, optimizer: { kind: 'sgd' }, threads: 1 });
      try {
        const r = await trainer.step(batchOf(2, spec.inputSize), i64([2], [0, 2]), 0.01);
        expect(Number.isFinite(r.loss)).toBe(true);
      } finally {
        await trainer.release();
      }
    });
  }

  it('fine-tunes the opset-12 MobileNetV2 and the opset-9 training export: loss falls', async () => {
    for (const [name, steps] of [['mobilenet_v2_eval_opset12', 4], ['tiny_resnet_train_opset9', 8]] as const) {
      const spec = importOnnxBytes(zoo(name).bytes, { numClasses: 3 });
      const trainer = await Trainer.create(spec.model, { loss: { kind: 'cross_entropy' }, trainable: spec.params, optimizer: { kind: 'adam' }, threads: 1 });
      const x = batchOf(4, spec.inputSize);
      const y = i64([4], [0, 1, 2, 0]);
      const losses: number[] = [];
      for (let i = 0; i < steps; i++) losses.push((await trainer.step(x, y, 1e-3)).loss);
      await trainer.release();
      expect(losses.every(Number.isFinite), name).toBe(true);
      expect(losses.at(-1)!, `${name}: ${losses.join(', ')}`).toBeLessThan(losses[0]);
    }
  });
});
