import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildManifest, type ManifestInput, parseManifest, preprocessingFromEval } from '../../src/export/manifest.ts';
import { buildPackage, checksumsText, labelsText, zipPackage } from '../../src/export/package.ts';
import { evalPreprocessing } from '../../src/training/data/eval-transform.ts';
import { unzip } from './deployer.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function input(): Omit<ManifestInput, 'files'> {
  return {
    name: 'shapes-classifier',
    opset: 17,
    numClasses: 3,
    inputSize: { width: 64, height: 64 },
    preprocessing: preprocessingFromEval(evalPreprocessing(64, { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] })),
    labels: ['cat', 'dog', 'bird'],
    metrics: { accuracy: 0.9, per_class_f1: { cat: 0.8, dog: 0.95, bird: 0.9 } },
    source: {
      experiment_id: 'exp-abc', run_id: 'run-def', checkpoint: 'best', model: 'small_cnn',
      dataset_id: 'ds-1', dataset_hash: 'a'.repeat(64), split_id: 'split-1', split_hash: 'b'.repeat(64),
    },
    createdAt: new Date('2026-01-02T03:04:05Z'),
  };
}

describe('manifest', () => {
  it('matches the issue contract and validates against its schema', () => {
    const m = buildManifest({ ...input(), files: [] });
    expect(m).toMatchObject({
      schema_version: 1, task: 'classification', execution_format: 'onnx', opset: 17,
      inputs: [{ name: 'input', dtype: 'float32', shape: ['batch', 3, 64, 64] }],
      outputs: [{ name: 'logits', shape: ['batch', 3] }, { name: 'probabilities', shape: ['batch', 3] }],
      preprocessing: { resize: { width: 64, height: 64, mode: 'stretch' }, color: 'RGB', layout: 'NCHW', scale: 1 / 255, mean: [0.485, 0.456, 0.406] },
      postprocessing: { scores_output: 'probabilities', activation: 'softmax' },
      labels: ['cat', 'dog', 'bird'],
      created_at: '2026-01-02T03:04:05.000Z',
    });
    expect(parseManifest(JSON.parse(JSON.stringify(m)))).toEqual(m);
  });

  it('refuses an unknown schema_version, bad labels and a preprocessing size that is not the model input', () => {
    const m = buildManifest({ ...input(), files: [] });
    expect(() => parseManifest({ ...m, schema_version: 2 })).toThrow(/schema_version 2/);
    expect(() => parseManifest({ ...m, execution_format: 'tflite' })).toThrow(/invalid manifest/);
    expect(() => buildManifest({ ...input(), labels: ['a'], files: [] })).toThrow(/1 labels/);
    expect(() => buildManifest({ ...input(), inputSize: { width: 32, height: 32 }, files: [] })).toThrow(/64×64/);
  });
});

describe('package', () => {
  it('zips the files the manifest lists, with matching sha256, plus manifest.json and SHA256SUMS', async () => {
    const fp32 = new Uint8Array(Buffer.from('pretend fp32 model bytes'));
    const int8 = new Uint8Array(Buffer.from('pretend int8'));
    const pkg = buildPackage({ fp32, int8 }, input());
    const zip = await zipPackage(pkg.files);
    const files = await unzip(zip);
    expect([...files.keys()].sort()).toEqual(['README.md', 'SHA256SUMS', 'labels.txt', 'manifest.json', 'model.int8.onnx', 'model.onnx']);
    const manifest = parseManifest(JSON.parse(files.get('manifest.json')!.toString('utf8')));
    expect(manifest).toEqual(pkg.manifest);
    expect(manifest.files.map((f) => [f.name, f.role, f.variant])).toEqual([
      ['model.onnx', 'model', 'fp32'], ['model.int8.onnx', 'model', 'int8'], ['labels.txt', 'labels', undefined], ['README.md', 'readme', undefined],
    ]);
    for (const f of manifest.files) {
      const bytes = files.get(f.name)!;
      expect(sha(bytes), f.name).toBe(f.sha256);
      expect(bytes.length).toBe(f.size_bytes);
    }
    expect(files.get('model.onnx')!.equals(Buffer.from(fp32))).toBe(true);
    expect(files.get('labels.txt')!.toString('utf8')).toBe('cat\ndog\nbird\n');
    // sha256sum -c format over everything but itself
    const sums = files.get('SHA256SUMS')!.toString('utf8').trim().split('\n').map((l) => l.split('  '));
    expect(sums.map(([, n]) => n).sort()).toEqual(['README.md', 'labels.txt', 'manifest.json', 'model.int8.onnx', 'model.onnx']);
    for (const [h, n] of sums) expect(sha(files.get(n)!), n).toBe(h);
  });

  it('README carries runnable Node.js and Python snippets for the fp32 file and the preprocessing figures', () => {
    const pkg = buildPackage({ fp32: new Uint8Array([1, 2, 3]) }, input());
    const readme = Buffer.from(pkg.files.find((f) => f.name === 'README.md')!.bytes).toString('utf8');
    expect(readme).toContain("import ort from 'onnxruntime-node'");
    expect(readme).toContain("kernel: 'linear', fastShrinkOnLoad: false");
    expect(readme).toContain("new URL('./model.onnx', import.meta.url)");
    expect(readme).toContain('import onnxruntime as ort');
    expect(readme).toContain('ort.InferenceSession("model.onnx"');
    expect(readme).toContain('Resize to 64×64');
    expect(readme).toContain('[0.485,0.456,0.406]');
  });

  it('labels and checksums are plain text, one line each', () => {
    expect(labelsText(['a b', 'c\nd'])).toBe('a b\nc d\n');
    expect(checksumsText([{ name: 'x', bytes: new Uint8Array() }])).toBe(`${sha(new Uint8Array())}  x\n`);
  });
});
