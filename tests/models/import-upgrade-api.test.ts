import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { encodeModel } from '../../src/onnx/codec.ts';
import { attr, f32 } from '../../src/onnx/ir.ts';
import { call, makeStudio, type TestStudio } from '../api/helpers.ts';
import { makeShapesProject, waitForRun, type ShapesProject } from '../api/runs-fixtures.ts';

/**
 * Through the API, as a new user would: an opset-12 torchvision MobileNetV2 (the form of the ONNX
 * model zoo's mobilenetv2-12) imports and a run on it trains; what cannot be trained is refused
 * by POST /api/models/import, not by the run.
 */

const MOBILENET_V2_OPSET12 = path.resolve(import.meta.dirname, '../fixtures/onnx-zoo/mobilenet_v2_eval_opset12.onnx');

interface ModelEntry {
  id: string;
  name: string;
  kind: string;
  input_size: number;
  param_count: number;
}

let s: TestStudio;
let p: ShapesProject;

beforeAll(async () => {
  s = await makeStudio();
  p = await makeShapesProject(s.app, s.dir, { perClass: 4, size: 48, ratios: { train: 0.5, val: 0.5, test: 0 } });
}, 60_000);
afterAll(async () => s?.close());

/** A small opset-`opset` classifier file with `op` (if given) inside its backbone. */
async function oldFile(name: string, opset: number, op?: string): Promise<string> {
  const b = new GraphBuilder();
  b.input('data', 'float32', [null, 3, 8, 8]);
  let x = b.op('Conv', ['data', b.initializer('w', f32([4, 3, 1, 1], new Float32Array(12).fill(0.1)))], { kernel_shape: attr.ints([1, 1]) }, 'conv1');
  if (op) x = b.op(op, [x], op === 'LRN' ? { size: attr.int(3) } : {}, 'norm1');
  const f = b.op('Flatten', [b.op('GlobalAveragePool', [x])], { axis: attr.int(1) });
  b.output(b.op('Gemm', [f, b.initializer('fc.w', f32([2, 4], new Float32Array(8))), b.initializer('fc.b', f32([2], new Float32Array(2)))], { transB: attr.int(1) }), 'float32', [null, 2]);
  const file = path.join(s.dir, `${name}.onnx`);
  await fs.writeFile(file, encodeModel({ ...b.toModel(), irVersion: 3, opsetImports: [{ domain: '', version: opset }] }));
  return file;
}

describe('POST /api/models/import of older opsets', () => {
  it('imports an opset-12 MobileNetV2 and trains a run on it', async () => {
    const imported = await call<ModelEntry>(s.app, 'POST', '/api/models/import', { path: MOBILENET_V2_OPSET12, name: 'mobilenet v2 opset 12' });
    expect(imported.status, JSON.stringify(imported.body)).toBe(201);
    const bb = imported.body.data;
    expect(bb).toMatchObject({ kind: 'imported', input_size: 64 });
    // torchvision's mobilenet_v2(width_mult=0.25, num_classes=10) has 250,922 parameters, 12,810 in
    // its last Linear; the eval export folds each BN into a conv bias.
    expect(bb.param_count).toBeLessThan(250922 - 12810);
    expect(bb.param_count).toBeGreaterThan(200000);

    const exp = await call<{ id: string; model: { input_size: number } }>(s.app, 'POST', `/api/projects/${p.pid}/experiments`, {
      name: 'opset 12 backbone',
      dataset_id: p.datasetId,
      split_name: 'main',
      model: { backbone_id: bb.id },
      hyperparameters: { epochs: 1, batch_size: 4, lr: 1e-3 },
    });
    expect(exp.status, JSON.stringify(exp.body)).toBe(201);
    expect(exp.body.data.model.input_size).toBe(64);
    const base = `/api/projects/${p.pid}/experiments/${exp.body.data.id}/runs`;
    const started = await call<{ run: { id: string } }>(s.app, 'POST', base);
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    const run = await waitForRun(s.app, `${base}/${started.body.data.run.id}`, 120_000);
    expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
    expect(run.metrics).toHaveLength(1);
    expect(Number.isFinite(run.metrics[0].train_loss)).toBe(true);
  }, 150_000);

  it('refuses at import an op the engine cannot train, and an opset older than 7, with UNSUPPORTED_OP', async () => {
    const lrn = await call(s.app, 'POST', '/api/models/import', { path: await oldFile('alexnet-ish', 7, 'LRN'), name: 'lrn' });
    expect([lrn.status, lrn.body.error?.code]).toEqual([400, 'UNSUPPORTED_OP']);
    expect(lrn.body.error.message).toContain("op LRN (node 'norm1') at opset 7 cannot be trained");
    const old = await call(s.app, 'POST', '/api/models/import', { path: await oldFile('opset6', 6), name: 'opset 6' });
    expect([old.status, old.body.error?.code]).toEqual([400, 'UNSUPPORTED_OP']);
    expect(old.body.error.message).toContain('opset 6');
    // Nothing was stored.
    const listed = (await call<ModelEntry[]>(s.app, 'GET', '/api/models')).body.data.filter((m) => m.kind === 'imported');
    expect(listed.map((m) => m.name)).not.toContain('lrn');
    expect(listed.map((m) => m.name)).not.toContain('opset 6');
  });
});
