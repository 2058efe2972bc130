import { badInput } from '../core/errors.ts';
import { encodeModel } from '../onnx/codec.ts';
import type { Model, TensorData } from '../onnx/ir.ts';
import { createSession } from '../runtime/session.ts';
import { buildEvalGraph } from '../training/step-graph.ts';
import { calibrateActivations } from './calibrate.ts';
import { buildFp16Export } from './fp16.ts';
import { buildFp32Export, type ExportMetadata } from './fp32.ts';
import { buildInt8Export } from './int8.ts';
import { validateVariant, type Validation, type Variant } from './validate.ts';

/**
 * Builds the asked-for variants of one checkpoint and validates each against the training
 * engine's eval graph on the same images (eval-transform tensors of the dataset's validation
 * subset), with top-1 accuracy beside it when labels are given. A failed validation is returned,
 * not thrown: the export page shows it.
 */

export interface VariantBuild {
  variant: Variant;
  model: Model;
  bytes: Uint8Array;
  validation: Validation;
  /** Top-1 accuracy on the validation images, when labels were given. */
  accuracy?: number;
}

export interface BuildVariantsInput {
  model: Model;
  params: Record<string, TensorData>;
  meta: ExportMetadata;
  variants: Variant[];
  /** Validation images as eval-transform batches [n,3,H,W]; also the int8 calibration set. */
  batches: TensorData[];
  /** Class index of every image, in batch order. */
  labels?: number[];
  threads?: number;
  onProgress?: (step: string) => void;
}

export interface BuildVariantsResult {
  fp32: Model;
  reference: { probabilities: Float32Array; accuracy?: number };
  variants: VariantBuild[];
}

function softmaxRows(logits: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length; r += classes) {
    let m = -Infinity;
    for (let c = 0; c < classes; c++) m = Math.max(m, logits[r + c]);
    let s = 0;
    for (let c = 0; c < classes; c++) s += (out[r + c] = Math.exp(logits[r + c] - m));
    for (let c = 0; c < classes; c++) out[r + c] /= s;
  }
  return out;
}

function accuracy(p: Float32Array, classes: number, labels: number[] | undefined): number | undefined {
  if (!labels) return undefined;
  let right = 0;
  for (let r = 0; r < labels.length; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (p[r * classes + c] > p[r * classes + best]) best = c;
    if (best === labels[r]) right++;
  }
  return right / labels.length;
}

async function runAll(model: Model | Uint8Array, batches: TensorData[], output: string, threads?: number): Promise<Float32Array> {
  const session = await createSession(model, threads === undefined ? {} : { threads });
  try {
    const parts: Float32Array[] = [];
    for (const x of batches) parts.push((await session.run({ input: x }, [output]))[output].data.slice() as Float32Array);
    const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) (out.set(p, at), (at += p.length));
    return out;
  } finally {
    await session.release();
  }
}

export async function buildVariants(input: BuildVariantsInput): Promise<BuildVariantsResult> {
  if (input.batches.length === 0) throw badInput('validation needs at least one image batch');
  const count = input.batches.reduce((a, b) => a + b.dims[0], 0);
  if (input.labels && input.labels.length !== count) throw badInput(`${input.labels.length} labels for ${count} images`);
  const classes = input.meta.labels.length;
  const step = input.onProgress ?? (() => {});

  step('reference');
  const evalLogits = await runAll(buildEvalGraph(input.model, input.params), input.batches, input.model.graph.outputs[0].name, input.threads);
  const reference = softmaxRows(evalLogits, classes);
  const fp32 = buildFp32Export(input.model, input.params, input.meta);

  const variants: VariantBuild[] = [];
  for (const variant of input.variants) {
    step(variant);
    let model: Model;
    if (variant === 'fp32') model = fp32;
    else if (variant === 'fp16') model = buildFp16Export(fp32);
    else model = buildInt8Export(fp32, { mode: 'static', ranges: await calibrateActivations(fp32, input.batches.map((x) => ({ input: x })), input.threads) });
    const bytes = encodeModel(model);
    // the serialized bytes are what ships, so they are what is validated
    const probs = await runAll(bytes, input.batches, 'probabilities', input.threads);
    const acc = accuracy(probs, classes, input.labels);
    variants.push({ variant, model, bytes, validation: validateVariant(variant, reference, probs, classes), ...(acc === undefined ? {} : { accuracy: acc }) });
  }
  const refAcc = accuracy(reference, classes, input.labels);
  return { fp32, reference: { probabilities: reference, ...(refAcc === undefined ? {} : { accuracy: refAcc }) }, variants };
}
