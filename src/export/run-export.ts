import { badInput } from '../kernel/errors.ts';
import type { Model, TensorData } from '../onnx/ir.ts';
import { profileModel } from '../runtime/profile.ts';
import { evalPreprocessing } from '../training/data/eval-transform.ts';
import { evalTransform, loadBatches, type LoaderItem } from '../training/data/loader.ts';
import type { Normalization } from '../training/data/tensor.ts';
import { benchmarkModel, type BenchmarkReport } from './benchmark.ts';
import { preprocessingFromEval, type Manifest } from './manifest.ts';
import { buildPackage, MODEL_FILE, sha256Hex, zipPackage, type PackageFile } from './package.ts';
import { modelStats, type ModelStats } from './stats.ts';
import type { OutputKind, Validation, Variant } from './validate.ts';
import { buildVariants, type TaskMetric } from './variants.ts';
import { getTask, type AnyTask } from '../tasks/index.ts';

/**
 * One export from start to package, with no disk access of its own beyond reading the images:
 * the validation images go through the eval transform (the loader training's validation uses),
 * the variants are built and validated against the eval graph on them (accuracy beside each),
 * measured when asked (benchmark and per-node profile), and packaged (manifest, README, labels,
 * checksums, zip). The caller (src/workers/export.ts) writes what this returns through storage.
 */

export interface ExportImage {
  id: string;
  /** Absolute path of the image file. */
  path: string;
  /** The image's target (task.target()); classification's may be given as `labelIndex` instead. */
  target?: number[];
  labelIndex?: number;
}

const targetOf = (im: ExportImage): number[] => im.target ?? (im.labelIndex === undefined ? [] : [im.labelIndex]);

export interface BenchmarkSizes {
  warmup: number;
  latencyRuns: number;
  batches: number[];
  throughputRuns: number;
  profileRuns: number;
  /** Thread counts to measure (default: 1 and every core). */
  threads?: number[];
}

export const DEFAULT_BENCHMARK: BenchmarkSizes = { warmup: 5, latencyRuns: 50, batches: [8, 32], throughputRuns: 5, profileRuns: 5 };

/** The per-node table keeps the slowest nodes; the rest are summed into the totals only. */
export const PROFILE_ROWS = 200;
const VALIDATION_BATCH = 16;

export interface RunExportInput {
  model: Model;
  /** The checkpoint's parameters and batch-norm statistics. */
  params: Record<string, TensorData>;
  /** The model's output names (classes, or regression's targets): the manifest's `labels`. */
  labels: string[];
  /** The run's task and fitted state (default: classification without class weights). */
  task?: AnyTask;
  state?: unknown;
  size: number;
  normalization: Normalization;
  images: readonly ExportImage[];
  subset: 'val' | 'test' | 'train';
  variants: Variant[];
  benchmark: BenchmarkSizes | null;
  name: string;
  source: Manifest['source'];
  /** Figures of the run to repeat in the manifest (e.g. its best validation accuracy). */
  runMetrics?: Record<string, number>;
  threads?: number;
  signal?: AbortSignal;
  onProgress?: (step: string, fraction: number) => void;
}

export interface VariantOutcome {
  name: Variant;
  file: string;
  size_bytes: number;
  sha256: string;
  validation: ValidationOut;
  /** Classification's top-1 accuracy (its task metric), else null. */
  accuracy: number | null;
  /** The task's export metric on the validation images (accuracy, map, mae, …). */
  metric: TaskMetric | null;
  benchmark: BenchmarkReport | null;
  profile: ProfileOut | null;
}

export type ValidationOut = Omit<Validation, 'max_abs_error' | 'rmse' | 'cosine' | 'argmax_agreement'> & {
  /** How the outputs were compared (src/export/validate.ts). */
  kind: OutputKind;
  /** The unit of the errors, where not the outputs' own (regression: the target's std). */
  units?: string;
  max_abs_error: number | null;
  rmse: number | null;
  cosine: number | null;
  argmax_agreement: number | null;
};

export interface ProfileOut {
  params: number;
  flops: number;
  size_bytes: number;
  threads: number;
  runs: number;
  nodes: { node: string; op_type: string; mean_us: number; percent: number; params: number | null }[];
}

export interface RunExportOutput {
  manifest: Manifest;
  /** The package's files (models, labels.txt, README.md, manifest.json, SHA256SUMS). */
  files: PackageFile[];
  zip: Buffer;
  report: {
    subset: 'val' | 'test' | 'train';
    images: number;
    reference: { accuracy: number | null; metric: TaskMetric | null };
    params: number;
    flops: number;
    variants: VariantOutcome[];
    skipped: { image_id: string; reason: string }[];
  };
}

const finiteOrNull = (v: number) => (Number.isFinite(v) ? v : null);

/** The validation images as eval-transform batches; unreadable images are left out and reported. */
export async function validationBatches(
  images: readonly ExportImage[],
  size: number,
  normalization: Normalization,
  signal?: AbortSignal,
): Promise<{ batches: TensorData[]; labels: number[]; targets: number[][]; skipped: { image_id: string; reason: string }[] }> {
  // the loader's class index is not used here: targets are kept beside the batches by index
  const items: LoaderItem[] = images.map((im) => ({ path: im.path, labelIndex: 0, id: im.id }));
  const batches: TensorData[] = [];
  const labels: number[] = [];
  const targets: number[][] = [];
  const skipped: { image_id: string; reason: string }[] = [];
  for await (const b of loadBatches({
    items,
    batchSize: VALIDATION_BATCH,
    size,
    normalization,
    transform: evalTransform(size),
    seed: 0,
    epoch: 0,
    shuffle: false,
    dropLast: false,
    signal,
    onWarning: (w) => skipped.push({ image_id: w.id, reason: w.message }),
  })) {
    const n = b.indices.length;
    if (n === 0) continue;
    batches.push({ dtype: 'float32', dims: [n, 3, size, size], data: b.input.slice(0, n * 3 * size * size) });
    for (const i of b.indices) {
      labels.push(images[i].labelIndex ?? 0);
      targets.push(targetOf(images[i]));
    }
  }
  return { batches, labels, targets, skipped };
}

function profileRows(rows: Awaited<ReturnType<typeof profileModel>>, stats: ModelStats): ProfileOut['nodes'] {
  const paramsOf = new Map(stats.nodes.map((n) => [n.node, n.params]));
  return rows.slice(0, PROFILE_ROWS).map((r) => ({
    node: r.node,
    op_type: r.opType,
    mean_us: r.meanUs,
    percent: r.percent,
    params: paramsOf.get(r.node) ?? null,
  }));
}

export async function runExport(input: RunExportInput): Promise<RunExportOutput> {
  if (input.images.length === 0) throw badInput('there are no labelled images to validate the export on');
  const progress = input.onProgress ?? (() => {});
  const steps = 2 + input.variants.length * (input.benchmark ? 2 : 1);
  let step = 0;
  const tick = (what: string) => progress(what, Math.min(1, step++ / steps));

  tick('reading images');
  const data = await validationBatches(input.images, input.size, input.normalization, input.signal);
  if (data.batches.length === 0) throw badInput(`none of the ${input.images.length} validation images could be read`);
  const preprocessing = preprocessingFromEval(evalPreprocessing(input.size, input.normalization));

  input.signal?.throwIfAborted();
  const built = await buildVariants({
    model: input.model,
    params: input.params,
    meta: { labels: input.labels, preprocessing, source: { ...input.source } },
    variants: input.variants,
    batches: data.batches,
    targets: data.targets,
    ...(input.task ? { task: input.task, state: input.state } : {}),
    threads: input.threads,
    onProgress: (s) => {
      input.signal?.throwIfAborted();
      if (s !== 'reference') tick(`building and validating ${s}`);
    },
  });
  const stats = modelStats(built.fp32);

  const variants: VariantOutcome[] = [];
  for (const v of built.variants) {
    let benchmark: BenchmarkReport | null = null;
    let profile: ProfileOut | null = null;
    if (input.benchmark) {
      input.signal?.throwIfAborted();
      tick(`benchmarking ${v.variant}`);
      const b = input.benchmark;
      benchmark = await benchmarkModel(v.bytes, {
        height: input.size,
        width: input.size,
        warmup: b.warmup,
        latencyRuns: b.latencyRuns,
        batches: b.batches,
        throughputRuns: b.throughputRuns,
        signal: input.signal,
        ...(b.threads ? { threads: b.threads } : {}),
      });
      const first = data.batches[0];
      const one: TensorData = { dtype: 'float32', dims: [1, 3, input.size, input.size], data: (first.data as Float32Array).slice(0, 3 * input.size * input.size) };
      const threads = input.threads ?? 1;
      const rows = await profileModel(v.bytes, { input: one }, { runs: b.profileRuns, threads });
      profile = { params: stats.params, flops: stats.flops, size_bytes: v.bytes.length, threads, runs: b.profileRuns, nodes: profileRows(rows, stats) };
    }
    const { max_abs_error, rmse, cosine, argmax_agreement, ...rest } = v.validation;
    const kindNote = built.kind === 'values' ? { units: 'target standard deviations' } : {};
    variants.push({
      name: v.variant,
      file: MODEL_FILE[v.variant],
      size_bytes: v.bytes.length,
      sha256: sha256Hex(v.bytes),
      validation: {
        ...rest,
        kind: built.kind,
        ...kindNote,
        max_abs_error: finiteOrNull(max_abs_error),
        rmse: finiteOrNull(rmse),
        cosine: finiteOrNull(cosine),
        argmax_agreement: argmax_agreement === null ? null : finiteOrNull(argmax_agreement),
      },
      accuracy: v.accuracy ?? null,
      metric: v.metric ? { name: v.metric.name, value: v.metric.value === null ? null : finiteOrNull(v.metric.value) } : null,
      benchmark,
      profile,
    });
  }

  tick('packaging');
  // the task's metric on the validation images: `reference_<m>` (the eval graph) and `<m>` per variant
  const metricName = built.reference.metric?.name ?? built.variants.find((v) => v.metric)?.metric?.name ?? 'accuracy';
  const perVariant: Record<string, number> = {};
  for (const v of built.variants) if (v.metric?.value !== null && v.metric?.value !== undefined && Number.isFinite(v.metric.value)) perVariant[v.variant] = v.metric.value;
  const refValue = built.reference.metric?.value;
  const metrics: Manifest['metrics'] = {
    ...input.runMetrics,
    validation_images: data.targets.length,
    ...(refValue === null || refValue === undefined || !Number.isFinite(refValue) ? {} : { [`reference_${metricName}`]: refValue }),
    [metricName]: perVariant,
  };
  const opset = built.fp32.opsetImports.find((o) => o.domain === '')?.version;
  if (opset === undefined) throw badInput('the export graph imports no default-domain opset');
  const pkg = buildPackage(Object.fromEntries(built.variants.map((v) => [v.variant, v.bytes])), {
    name: input.name,
    task: (input.task ?? getTask('classification')).name,
    outputs: built.outputs,
    postprocessing: built.postprocessing,
    opset,
    numClasses: input.labels.length,
    inputSize: { width: input.size, height: input.size },
    preprocessing,
    labels: input.labels,
    metrics,
    source: input.source,
  });
  const zip = await zipPackage(pkg.files);
  progress('done', 1);
  return {
    manifest: pkg.manifest,
    files: pkg.files,
    zip,
    report: {
      subset: input.subset,
      images: data.targets.length,
      reference: {
        accuracy: built.reference.accuracy ?? null,
        metric: built.reference.metric ? { name: built.reference.metric.name, value: built.reference.metric.value === null ? null : finiteOrNull(built.reference.metric.value) } : null,
      },
      params: stats.params,
      flops: stats.flops,
      variants,
      skipped: data.skipped,
    },
  };
}
