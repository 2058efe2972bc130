import type { Model, TensorData } from '../../onnx/ir.ts';
import type { ActivationRanges } from '../calibrate.ts';
import type { OutputKind, Tolerance } from '../validate.ts';

/**
 * One export format (DESIGN §8): a file in `src/export/formats/` plus its line in `index.ts`. The
 * variant enum, the artifact names, the manifest's `variant` enum, the media types and the Deploy
 * page's list all derive from the registry, so a format is added in one place. Formats are
 * orthogonal to tasks: a tolerance is given per kind of primary output (what the task's
 * post-processing makes), never per task.
 */

/** A tolerance with the reason it is what it is (shown in the docs and the report's failures). */
export interface ReasonedTolerance {
  tolerance: Tolerance;
  reason: string;
}

/** What a builder may use besides the fp32 graph. */
export interface FormatBuildContext {
  /** The validation images as eval-transform batches [n,3,H,W] (int8 calibrates on them). */
  batches: readonly TensorData[];
  /** Min/max of every activation of `model` on `batches` (src/export/calibrate.ts; runs onnxruntime). */
  calibrate(model: Model): Promise<ActivationRanges>;
}

export interface ExportFormat<N extends string = string, F extends string = string> {
  /** The variant name (`fp32`, …): the API's `variants`, the manifest's file `variant`. */
  readonly name: N;
  /** Its model file in the package (a plain file name). */
  readonly file: F;
  /** Media type of the file when served. */
  readonly mediaType: string;
  /** A few words for the Deploy page's checkbox. */
  readonly note: string;
  /** Longer notes: what it trades, where it is fast (docs, README). */
  readonly notes: string;
  /** Tolerances against the eval graph, per kind of primary output. */
  readonly tolerances: Readonly<Record<OutputKind, ReasonedTolerance>>;
  /** Builds the variant's graph from the fp32 export graph (which carries the task's outputs). */
  build(fp32: Model, ctx: FormatBuildContext): Promise<Model>;
}

/** Keeps the literal name and file types (the enums derive from them). */
export function defineFormat<const N extends string, const F extends string>(f: ExportFormat<N, F>): ExportFormat<N, F> {
  return f;
}
