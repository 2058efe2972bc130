import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { calibrateActivations } from '../../src/export/calibrate.ts';
import { buildFp16Export } from '../../src/export/fp16.ts';
import { buildFp32Export } from '../../src/export/fp32.ts';
import { buildInt8Export } from '../../src/export/int8.ts';
import { type Preprocessing, PreprocessingSchema } from '../../src/export/manifest.ts';
import { buildPackage } from '../../src/export/package.ts';
import { buildVariants } from '../../src/export/variants.ts';
import { validateVariant } from '../../src/export/validate.ts';
import { decodeModel, encodeModel } from '../../src/onnx/codec.ts';
import type { Model } from '../../src/onnx/ir.ts';
import { profileModel } from '../../src/runtime/profile.ts';
import { createSession } from '../../src/runtime/session.ts';
import { buildEvalGraph } from '../../src/training/step-graph.ts';
import { argmaxRows, LABELS, SIZE, softmaxRows, trainedSmallCnn, type TrainedModel } from './trained-model.ts';

const CLASSES = LABELS.length;

/** The manifest's preprocessing implemented from its fields alone, with sharp: what a deployer writes. */
async function preprocessFromManifest(images: Buffer[], p: Preprocessing): Promise<Float32Array> {
  const { width, height } = p.resize;
  expect(p.resize.mode).toBe('stretch');
  expect(p.resize.interpolation).toBe('bilinear');
  const plane = width * height;
  const out = new Float32Array(images.length * 3 * plane);
  for (let n = 0; n < images.length; n++) {
    let img = sharp(images[n], { pages: 1 });
    if (p.exif_orientation) img = img.autoOrient();
    const { data } = await img
      .resize(width, height, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false })
      .flatten({ background: '#000000' })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < plane; i++) out[(n * 3 + c) * plane + i] = (data[i * 3 + c] * p.scale - p.mean[c]) / p.std[c];
    }
  }
  return out;
}

let trained: TrainedModel;
let fp32: Model;
/** The training engine's answer: eval graph logits on the eval-transform tensors, softmaxed. */
let reference: Float32Array;

async function probabilitiesOf(model: Model): Promise<Float32Array> {
  const s = await createSession(model, { threads: 1 });
  try {
    return (await s.run({ input: trained.batch }, ['probabilities'])).probabilities.data as Float32Array;
  } finally {
    await s.release();
  }
}

beforeAll(async () => {
  trained = await trainedSmallCnn();
  fp32 = buildFp32Export(trained.spec.model, trained.params, { labels: LABELS, preprocessing: trained.preprocessing, source: { run: 'run-test' } });
  const ev = await createSession(buildEvalGraph(trained.spec.model, trained.params), { threads: 1 });
  reference = softmaxRows((await ev.run({ input: trained.batch })).logits.data as Float32Array, CLASSES);
  await ev.release();
  // the model learned something: the checks below compare peaked predictions, not noise
  const right = argmaxRows(reference, CLASSES).filter((c, i) => c === trained.labels[i]).length;
  expect(right / trained.labels.length).toBeGreaterThan(0.75);
}, 120_000);

describe('fp32 export', () => {
  it('runs in a fresh onnxruntime session fed by the manifest preprocessing alone, matching the eval graph', async () => {
    const bytes = encodeModel(fp32);
    const session = await ort.InferenceSession.create(bytes);
    expect(session.inputNames).toEqual(['input']);
    expect(session.outputNames).toEqual(['logits', 'probabilities']);
    const x = await preprocessFromManifest(trained.images, PreprocessingSchema.parse(JSON.parse(decodeModel(bytes).metadata.preprocessing)));
    const out = await session.run({ input: new ort.Tensor('float32', x, [trained.images.length, 3, SIZE, SIZE]) });
    const probs = out.probabilities.data as Float32Array;
    let worst = 0;
    for (let i = 0; i < probs.length; i++) worst = Math.max(worst, Math.abs(probs[i] - reference[i]));
    expect(worst).toBeLessThanOrEqual(1e-5);
    expect(argmaxRows(probs, CLASSES)).toEqual(argmaxRows(reference, CLASSES));
    // logits are exposed beside the probabilities
    expect(softmaxRows(out.logits.data as Float32Array, CLASSES).every((v, i) => Math.abs(v - probs[i]) < 1e-6)).toBe(true);
    await session.release();
  });

  it('has a dynamic batch axis named batch, opset 17, BN folded, labels and preprocessing in metadata_props', () => {
    const m = decodeModel(encodeModel(fp32));
    expect(m.graph.inputs[0].shape).toEqual(['batch', 3, SIZE, SIZE]);
    expect(m.graph.outputs.map((o) => [o.name, o.shape])).toEqual([['logits', ['batch', CLASSES]], ['probabilities', ['batch', CLASSES]]]);
    expect(m.opsetImports.find((o) => o.domain === '')?.version).toBe(17);
    expect(m.graph.nodes.some((n) => n.opType === 'BatchNormalization')).toBe(false);
    expect(JSON.parse(m.metadata.labels)).toEqual(LABELS);
    expect(PreprocessingSchema.parse(JSON.parse(m.metadata.preprocessing))).toEqual(trained.preprocessing);
    expect(JSON.parse(m.metadata.source)).toEqual({ run: 'run-test' });
  });

  it('passes its own validation (≤ 1e-4, every argmax)', async () => {
    const v = validateVariant('fp32', reference, await probabilitiesOf(fp32), CLASSES);
    expect(v.passed, v.failures.join('; ')).toBe(true);
    expect(v.max_abs_error).toBeLessThanOrEqual(1e-5);
  });

  it('refuses labels that do not match the classes', () => {
    expect(() => buildFp32Export(trained.spec.model, trained.params, { labels: ['a'], preprocessing: trained.preprocessing })).toThrow(/1 labels/);
  });
});

describe('fp16 export', () => {
  it('stores float16 weights behind a float32 interface and validates', async () => {
    const fp16 = buildFp16Export(fp32);
    const inits = [...fp16.graph.initializers.values()];
    expect(inits.some((t) => t.dtype === 'float16')).toBe(true);
    expect(inits.filter((t) => t.dtype === 'float32' && t.dims.length > 1)).toEqual([]);
    const s = await createSession(fp16, { threads: 1 });
    expect(s.inputs).toEqual([{ name: 'input', dtype: 'float32', shape: ['batch', 3, SIZE, SIZE] }]);
    expect(s.outputs.map((o) => o.dtype)).toEqual(['float32', 'float32']);
    await s.release();
    const v = validateVariant('fp16', reference, await probabilitiesOf(fp16), CLASSES);
    expect(v.passed, v.failures.join('; ')).toBe(true);
    expect(v.max_abs_error).toBeGreaterThan(0); // it really computes in float16
    expect(encodeModel(fp16).length).toBeLessThan(0.55 * encodeModel(fp32).length);
  });
});

describe('int8 export', () => {
  it('static QDQ, calibrated on the images, validates and runs as integer kernels', async () => {
    const ranges = await calibrateActivations(fp32, [{ input: trained.batch }], 1);
    const int8 = buildInt8Export(fp32, { mode: 'static', ranges });
    const v = validateVariant('int8', reference, await probabilitiesOf(int8), CLASSES);
    expect(v.passed, v.failures.join('; ')).toBe(true);
    const rows = await profileModel(int8, { input: trained.batch }, { runs: 2, threads: 1 });
    expect(rows.some((r) => r.opType === 'QLinearConv')).toBe(true);
  });

  it('weight-only QDQ validates without calibration', async () => {
    const int8 = buildInt8Export(fp32, { mode: 'weights' });
    expect(int8.graph.nodes.some((n) => n.opType === 'QuantizeLinear')).toBe(false);
    const v = validateVariant('int8', reference, await probabilitiesOf(int8), CLASSES);
    expect(v.passed, v.failures.join('; ')).toBe(true);
  });
});

describe('package README', () => {
  it('its Node.js snippet, run as written beside the package files, prints the eval graph’s top classes', async () => {
    const pkg = buildPackage({ fp32: encodeModel(fp32) }, {
      name: 'shapes', opset: 17, numClasses: CLASSES, inputSize: { width: SIZE, height: SIZE }, preprocessing: trained.preprocessing,
      labels: LABELS, metrics: {},
      source: { experiment_id: 'e', run_id: 'r', checkpoint: 'best', model: 'small_cnn', dataset_id: 'd', dataset_hash: 'h', split_id: 's', split_hash: 'h' },
    });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'export-readme-'));
    try {
      for (const f of pkg.files) fs.writeFileSync(path.join(dir, f.name), f.bytes);
      // the deployer's `npm install onnxruntime-node sharp`
      fs.symlinkSync(path.resolve('node_modules'), path.join(dir, 'node_modules'), 'dir');
      const readme = fs.readFileSync(path.join(dir, 'README.md'), 'utf8');
      const js = /```js\n([\s\S]*?)```/.exec(readme)![1];
      fs.writeFileSync(path.join(dir, 'predict.mjs'), js);
      const pick = [0, 1, 2];
      for (const i of pick) fs.writeFileSync(path.join(dir, `img${i}`), trained.images[i]);
      for (const i of pick) {
        const { stdout } = await promisify(execFile)(process.execPath, ['predict.mjs', `img${i}`], { cwd: dir });
        const lines = stdout.trim().split('\n').map((l) => l.split('\t'));
        expect(lines).toHaveLength(CLASSES);
        const row = Array.from(reference.subarray(i * CLASSES, (i + 1) * CLASSES));
        const best = row.indexOf(Math.max(...row));
        expect(lines[0][0]).toBe(LABELS[best]);
        expect(Number(lines[0][1])).toBeCloseTo(row[best], 4);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('buildVariants', () => {
  it('builds, runs from bytes and validates every variant with accuracy beside it', async () => {
    const half = trained.images.length / 2;
    const plane = 3 * SIZE * SIZE;
    const batches = [0, 1].map((k) => ({ dtype: 'float32' as const, dims: [half, 3, SIZE, SIZE], data: (trained.batch.data as Float32Array).slice(k * half * plane, (k + 1) * half * plane) }));
    const steps: string[] = [];
    const r = await buildVariants({
      model: trained.spec.model, params: trained.params, meta: { labels: LABELS, preprocessing: trained.preprocessing },
      variants: ['fp32', 'fp16', 'int8'], batches, labels: trained.labels, threads: 1, onProgress: (s) => steps.push(s),
    });
    expect(steps).toEqual(['reference', 'fp32', 'fp16', 'int8']);
    // same eval graph and images, run in two batches instead of one
    expect(r.reference.probabilities.every((v, i) => Math.abs(v - reference[i]) <= 1e-6)).toBe(true);
    expect(r.variants.map((v) => [v.variant, v.validation.passed, v.validation.count])).toEqual([['fp32', true, 32], ['fp16', true, 32], ['int8', true, 32]]);
    const accRef = r.reference.accuracy!;
    for (const v of r.variants) expect(Math.abs(v.accuracy! - accRef)).toBeLessThanOrEqual(1 / 32);
    expect(decodeModel(r.variants[2].bytes).metadata.int8_mode).toBe('static');
  });
});
