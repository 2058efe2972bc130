import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderShapeImage } from '../../src/datasets/synthetic.ts';
import { runEvaluation } from '../../src/evaluation/run-evaluation.ts';
import type { Manifest } from '../../src/export/manifest.ts';
import { runExport, type ExportImage, type RunExportInput, type RunExportOutput } from '../../src/export/run-export.ts';
import { createModel } from '../../src/models/index.ts';
import { LABELS, SIZE, trainedSmallCnn, type TrainedModel } from './trained-model.ts';
import { preprocessFromManifest, unzip } from './deployer.ts';

/**
 * The export orchestration on a briefly trained small_cnn: every variant built, validated against
 * the eval graph, measured and packaged; the fp32 file checked by a session that knows nothing of
 * the studio, fed by the manifest's preprocessing written here with sharp alone.
 */

const SOURCE: Manifest['source'] = {
  experiment_id: 'exp-aaaaaaaa',
  run_id: 'run-aaaaaaaa',
  checkpoint: 'best',
  model: 'small_cnn',
  dataset_id: 'ds-aaaaaaaa',
  dataset_hash: 'a'.repeat(64),
  split_id: 'main',
  split_hash: 'b'.repeat(64),
};
const TINY_BENCHMARK = { warmup: 1, latencyRuns: 4, batches: [2], throughputRuns: 1, profileRuns: 1, threads: [1] };

let dir: string;
let trained: TrainedModel;
let images: ExportImage[];
let out: RunExportOutput;

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const fileOf = (o: RunExportOutput, name: string) => {
  const f = o.files.find((x) => x.name === name);
  if (!f) throw new Error(`no ${name} in the package`);
  return f.bytes;
};

function input(over: Partial<RunExportInput> = {}): RunExportInput {
  return {
    model: trained.spec.model,
    params: trained.params,
    labels: LABELS,
    size: SIZE,
    normalization: trained.spec,
    images,
    subset: 'val',
    variants: ['fp32', 'fp16', 'int8'],
    benchmark: TINY_BENCHMARK,
    name: 'shapes',
    source: SOURCE,
    runMetrics: { run_best_val_accuracy: 0.9 },
    threads: 1,
    ...over,
  };
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'run-export-'));
  trained = await trainedSmallCnn();
  images = [];
  for (let i = 0; i < trained.images.length; i++) {
    const file = path.join(dir, `img-${i}.bin`);
    await fs.writeFile(file, trained.images[i]);
    images.push({ id: `img-${String(i).padStart(8, '0')}`, path: file, labelIndex: trained.labels[i] });
  }
  // an unreadable image is left out of validation and reported, not fatal
  await fs.writeFile(path.join(dir, 'broken.png'), Buffer.from('not an image at all'));
  out = await runExport(input({ images: [...images, { id: 'img-broken00', path: path.join(dir, 'broken.png'), labelIndex: 0 }] }));
}, 180_000);
afterAll(async () => fs.rm(dir, { recursive: true, force: true }));

describe('runExport', () => {
  it('the fp32 file in a fresh onnxruntime session, fed by the manifest preprocessing alone, gives the evaluation’s predictions on every image', async () => {
    const ev = await runEvaluation({
      model: trained.spec.model,
      params: trained.params,
      labels: LABELS,
      items: images.map((im, i) => ({ image_id: im.id, file: `img-${i}`, subset: 'val', labelIndex: im.labelIndex!, path: im.path })),
      size: SIZE,
      normalization: trained.spec,
      batchSize: 8,
      tta: false,
      threads: 1,
    });
    expect(ev.records).toHaveLength(images.length);
    const session = await ort.InferenceSession.create(fileOf(out, 'model.onnx'));
    try {
      const pp = out.manifest.preprocessing;
      expect([pp.resize.mode, pp.resize.interpolation, pp.alpha, pp.color, pp.layout]).toEqual(['stretch', 'bilinear', 'flatten_on_black', 'RGB', 'NCHW']);
      const x = await preprocessFromManifest(images.map((im) => im.path), out.manifest);
      const res = await session.run({ input: new ort.Tensor('float32', x, [images.length, 3, SIZE, SIZE]) });
      const probs = res.probabilities.data as Float32Array;
      const c = LABELS.length;
      let maxDiff = 0;
      for (let i = 0; i < images.length; i++) {
        const row = Array.from(probs.subarray(i * c, (i + 1) * c));
        const best = row.indexOf(Math.max(...row));
        expect(LABELS[best], `image ${i}`).toBe(ev.records[i].predicted);
        for (let j = 0; j < c; j++) maxDiff = Math.max(maxDiff, Math.abs(row[j] - ev.probs[i * c + j]));
      }
      expect(maxDiff).toBeLessThan(1e-4);
    } finally {
      await session.release();
    }
  });

  it('validates every variant within its tolerance on the trained model, with accuracy beside each; the broken image is reported', () => {
    const r = out.report;
    expect(r.variants.map((v) => [v.name, v.file])).toEqual([['fp32', 'model.onnx'], ['fp16', 'model.fp16.onnx'], ['int8', 'model.int8.onnx']]);
    for (const v of r.variants) {
      expect(v.validation.passed, `${v.name}: ${v.validation.failures.join('; ')}`).toBe(true);
      expect(v.validation.count).toBe(images.length);
      expect(v.accuracy).toBeGreaterThan(0.75);
    }
    expect(r.variants[0].validation.max_abs_error).toBeLessThanOrEqual(1e-4);
    expect(r.variants[0].accuracy).toBe(r.reference.accuracy);
    expect(r.images).toBe(images.length);
    expect(r.skipped.map((s) => s.image_id)).toEqual(['img-broken00']);
    expect(r.params).toBeGreaterThan(0);
    expect(r.flops).toBeGreaterThan(r.params);
  });

  it('benchmarks and profiles each variant: latency percentiles, throughput, a per-node table', () => {
    for (const v of out.report.variants) {
      const b = v.benchmark!;
      expect(b.results.map((t) => t.threads)).toEqual([1]);
      const lat = b.results[0].latency_b1;
      expect(lat.runs).toBe(4);
      expect(lat.p50_ms).toBeLessThanOrEqual(lat.p99_ms);
      expect(b.results[0].throughput.map((t) => t.batch)).toEqual([2]);
      expect(b.results[0].throughput[0].images_per_s).toBeGreaterThan(0);
      const p = v.profile!;
      expect(p.size_bytes).toBe(v.size_bytes);
      expect(p.nodes.length).toBeGreaterThan(0);
      expect(p.nodes.reduce((a, n) => a + n.percent, 0)).toBeCloseTo(100, 3);
    }
    // fp32 node names are the graph's own: its convolutions carry their parameters
    expect(out.report.variants[0].profile!.nodes.some((n) => (n.params ?? 0) > 0)).toBe(true);
  });

  it('packages a zip that unpacks to the manifest’s files with matching sha256, plus manifest.json and SHA256SUMS', async () => {
    const files = await unzip(out.zip);
    const m = out.manifest;
    expect(m.files.map((f) => f.name).sort()).toEqual(['README.md', 'labels.txt', 'model.fp16.onnx', 'model.int8.onnx', 'model.onnx']);
    for (const f of m.files) {
      const b = files.get(f.name);
      expect(b, f.name).toBeDefined();
      expect([b!.length, sha256(b!)]).toEqual([f.size_bytes, f.sha256]);
    }
    expect([...files.keys()].sort()).toEqual([...m.files.map((f) => f.name), 'SHA256SUMS', 'manifest.json'].sort());
    expect(JSON.parse(files.get('manifest.json')!.toString('utf8'))).toEqual(m);
    for (const line of files.get('SHA256SUMS')!.toString('utf8').trim().split('\n')) {
      const [sum, name] = line.split('  ');
      expect(sha256(files.get(name)!), name).toBe(sum);
    }
    expect(files.get('labels.txt')!.toString('utf8')).toBe(LABELS.map((l) => `${l}\n`).join(''));
    expect(m.source).toEqual(SOURCE);
    expect(m.metrics).toMatchObject({ run_best_val_accuracy: 0.9, validation_images: images.length });
    expect(Object.keys(m.metrics.accuracy as Record<string, number>)).toEqual(['fp32', 'fp16', 'int8']);
    expect(m.opset).toBe(17);
  });

  it('int8 is at least 3× smaller than fp32 on a catalog model (mobilenet_v3_small at 32 px)', async () => {
    const spec = createModel('mobilenet_v3_small', { numClasses: LABELS.length, inputSize: SIZE, seed: 2 });
    const few: ExportImage[] = [];
    for (let i = 0; i < 4; i++) {
      const file = path.join(dir, `mb-${i}.png`);
      await fs.writeFile(file, await renderShapeImage({ shape: 'circle', size: { width: 40, height: 40 }, seed: 7 + i, format: 'png' }));
      few.push({ id: `img-mb${String(i).padStart(6, '0')}`, path: file, labelIndex: i });
    }
    const small = await runExport(input({ model: spec.model, params: {}, normalization: spec, images: few, variants: ['fp32', 'int8'], benchmark: null, threads: undefined }));
    const [f32, i8] = small.report.variants;
    expect(f32.size_bytes / i8.size_bytes).toBeGreaterThanOrEqual(3);
    expect(f32.benchmark).toBeNull();
    expect(f32.profile).toBeNull();
    expect(small.files.map((f) => f.name)).not.toContain('model.fp16.onnx');
  }, 120_000);

  it('refuses an export with no images, and stops when aborted', async () => {
    await expect(runExport(input({ images: [] }))).rejects.toMatchObject({ code: 'BAD_INPUT' });
    const c = new AbortController();
    c.abort();
    await expect(runExport(input({ signal: c.signal }))).rejects.toThrow();
  });
});
