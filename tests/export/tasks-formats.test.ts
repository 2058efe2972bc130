import { execFile } from 'node:child_process';
import { promises as fs, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORMAT_NAMES, FORMATS, MODEL_FILES } from '../../src/export/formats/index.ts';
import { parseManifest, type Manifest } from '../../src/export/manifest.ts';
import { primaryOutput } from '../../src/export/predict.ts';
import { runExport, type RunExportOutput } from '../../src/export/run-export.ts';
import { SIZE } from './trained-model.ts';
import { preprocessFromManifest } from './deployer.ts';
import { TASKS, trainedTaskModel, type TaskModel, type TaskName } from './task-models.ts';

/**
 * Tasks × formats: a tiny model trained per task through its definition, exported in every
 * registered format; each format must build, validate against the eval graph within its
 * tolerance for the task's kind of output, and land in a package whose manifest says the task,
 * its outputs, its postprocessing and its labels. The package README's Node.js program runs as
 * written and answers what the task's predict answers.
 */

const SOURCE: Manifest['source'] = {
  experiment_id: 'exp-aaaaaaaa', run_id: 'run-aaaaaaaa', checkpoint: 'best', model: 'small_cnn',
  dataset_id: 'ds-aaaaaaaa', dataset_hash: 'a'.repeat(64), split_id: 'main', split_hash: 'b'.repeat(64),
};

/** What each task's manifest must say (the contracts of common.md). */
const EXPECT: Record<TaskName, { primary: string; type: string; metric: string; argmax: boolean; kind: string }> = {
  classification: { primary: 'probabilities', type: 'softmax', metric: 'accuracy', argmax: true, kind: 'probabilities' },
  multilabel: { primary: 'probabilities', type: 'multilabel', metric: 'map', argmax: false, kind: 'scores' },
  regression: { primary: 'value', type: 'regression', metric: 'mae', argmax: false, kind: 'values' },
};

let root: string;
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'export-tasks-'));
});
afterAll(async () => fs.rm(root, { recursive: true, force: true }));

describe.each(TASKS)('%s export', (name) => {
  let m: TaskModel;
  let out: RunExportOutput;
  const want = EXPECT[name];

  beforeAll(async () => {
    m = await trainedTaskModel(name, path.join(root, name));
    out = await runExport({
      model: m.spec.model, params: m.params, labels: m.names, task: m.task, state: m.state, size: SIZE, normalization: m.spec,
      images: m.images, subset: 'val', variants: [...FORMAT_NAMES], benchmark: null, name: `${name} toy`, source: SOURCE, threads: 1,
    });
  }, 180_000);

  it.each(FORMAT_NAMES)('%s builds and validates within its tolerance', (format) => {
    const v = out.report.variants.find((x) => x.name === format);
    expect(v, `${format} missing`).toBeDefined();
    expect(v!.validation.passed, `${format}: ${v!.validation.failures.join('; ')}`).toBe(true);
    expect(v!.validation.kind).toBe(want.kind);
    expect(v!.validation.count).toBe(m.images.length);
    expect(v!.validation.tolerance).toEqual(FORMATS.find((f) => f.name === format)!.tolerances[want.kind as 'values'].tolerance);
    expect(v!.validation.argmax_agreement === null).toBe(!want.argmax);
    expect(v!.file).toBe(MODEL_FILES[format]);
    expect(v!.metric?.name).toBe(want.metric);
    expect(typeof v!.metric?.value).toBe('number');
    // the task's metric barely moves between the eval graph and a variant
    const ref = out.report.reference.metric!.value!;
    const tol = want.metric === 'mae' ? 0.2 * Math.max(ref, 1) : 0.1;
    expect(Math.abs(v!.metric!.value! - ref)).toBeLessThanOrEqual(tol);
    expect(out.files.some((f) => f.name === MODEL_FILES[format])).toBe(true);
  });

  it('the manifest says the task, its outputs, postprocessing, labels and metrics', () => {
    const man = parseManifest(JSON.parse(Buffer.from(out.files.find((f) => f.name === 'manifest.json')!.bytes).toString('utf8')));
    expect(man).toEqual(out.manifest);
    expect(man.task).toBe(name);
    expect(man.labels).toEqual(m.names);
    expect(man.outputs.map((o) => [o.name, o.shape])).toEqual([['logits', ['batch', m.names.length]], [want.primary, ['batch', m.names.length]]]);
    expect(primaryOutput(man)).toBe(want.primary);
    const pp = man.postprocessing as Record<string, unknown>;
    expect(pp.type).toBe(want.type);
    if (name === 'classification') expect(pp).toEqual({ type: 'softmax', scores_output: 'probabilities', activation: 'softmax', axis: 1, labels: 'labels' });
    if (name === 'multilabel') {
      expect(pp).toMatchObject({ scores_output: 'probabilities', activation: 'sigmoid' });
      expect(Object.keys(pp.thresholds as object)).toEqual(m.names);
      for (const t of Object.values(pp.thresholds as Record<string, number>)) expect(t).toBeGreaterThanOrEqual(0), expect(t).toBeLessThanOrEqual(1);
    }
    if (name === 'regression') expect(pp).toEqual({ type: 'regression', values_output: 'value', targets: [{ name: 'radius' }] });
    expect(man.files.filter((f) => f.role === 'model').map((f) => [f.variant, f.name])).toEqual(FORMATS.map((f) => [f.name, f.file]));
    expect(man.metrics.validation_images).toBe(m.images.length);
    expect(typeof man.metrics[`reference_${want.metric}`]).toBe('number');
    expect(Object.keys(man.metrics[want.metric] as object)).toEqual([...FORMAT_NAMES]);
  });

  it('the README’s Node.js program, run beside the package files, answers what the task’s predict answers', async () => {
    const dir = path.join(root, `${name}-pkg`);
    await fs.mkdir(dir, { recursive: true });
    for (const f of out.files) await fs.writeFile(path.join(dir, f.name), f.bytes);
    // the deployer's `npm install onnxruntime-node sharp`
    symlinkSync(path.resolve('node_modules'), path.join(dir, 'node_modules'), 'dir');
    const readme = await fs.readFile(path.join(dir, 'README.md'), 'utf8');
    await fs.writeFile(path.join(dir, 'predict.mjs'), /```js\n([\s\S]*?)```/.exec(readme)![1]);

    // the same images through a session that knows only the package
    const pick = [0, 1, 2, 3, 4];
    const man = out.manifest;
    const k = m.names.length;
    const session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'));
    const x = await preprocessFromManifest(pick.map((i) => m.files[i]), man);
    const rows = (await session.run({ input: new ort.Tensor('float32', x, [pick.length, 3, SIZE, SIZE]) }))[want.primary].data as Float32Array;
    await session.release();

    for (const [j, i] of pick.entries()) {
      const { stdout } = await promisify(execFile)(process.execPath, ['predict.mjs', m.files[i]], { cwd: dir });
      const lines = stdout.trim() === '' ? [] : stdout.trim().split('\n').map((l) => l.split('\t'));
      const row = rows.subarray(j * k, (j + 1) * k);
      const answer = m.task.predict(row, m.names, man.postprocessing as Record<string, unknown>, { topK: 5 }) as Record<string, unknown>;
      if (name === 'classification') {
        const top = answer.top as { label: string; score: number }[];
        expect(lines.map((l) => l[0])).toEqual(top.map((t) => t.label));
        expect(Number(lines[0][1])).toBeCloseTo(top[0].score, 4);
      } else if (name === 'multilabel') {
        const labels = answer.labels as { label: string; score: number }[];
        expect(lines.map((l) => l[0])).toEqual(labels.map((t) => t.label));
        lines.forEach((l, q) => expect(Number(l[1])).toBeCloseTo(labels[q].score, 4));
      } else {
        const values = answer.values as Record<string, number>;
        expect(lines.map((l) => l[0])).toEqual(m.names);
        for (const l of lines) expect(Math.abs(Number(l[1]) - values[l[0]])).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(values[l[0]])));
      }
    }
  }, 60_000);
});
