import { backward, decomposeBatchNormForTraining } from '../../src/autodiff/index.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { type Attr, type DataType, type TensorData, attr, tensor } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';
import { mulberry32 } from '../../src/datasets/prng.ts';

/**
 * An onnxruntime-style gradient checker: one op on random inputs, loss = Σ out·R for a fixed
 * random R, gradients from `backward` compared with central finite differences of the loss.
 * Runs in float64 where onnxruntime has double kernels for the op, else in float32 with the loss
 * accumulated in float64.
 */

export type Gen = (rng: () => number, n: number) => number[];

export interface InputSpec {
  shape: number[];
  /** Constant (initializer) input, not differentiated: int64 values, or floats of the case dtype. */
  ints?: number[];
  floats?: number[];
  bools?: boolean[];
  /** Value generator (default: uniform in ±[0.1, 1]). */
  gen?: Gen;
  /** '' input slot */
  omitted?: boolean;
  /** a float input held constant (no gradient asked) */
  frozen?: boolean;
}

export interface OpCase {
  label: string;
  op: string;
  inputs: InputSpec[];
  attrs?: Record<string, Attr>;
  outputs?: number;
  /** outputs that feed the loss (default: all) */
  lossOutputs?: number[];
  /** rewrite training-mode batch norm before backward */
  decomposeBatchNorm?: boolean;
  /** relative tolerance override */
  tol?: number;
  /** dtype of the outputs when it is not the case's float type (Cast) */
  outDtype?: DataType;
}

export { mulberry32 };

/** Uniform in ±[0.1, 1]: away from the kink at 0 that ReLU-like ops have. */
export const awayFromZero: Gen = (rng, n) => Array.from({ length: n }, () => (0.1 + 0.9 * rng()) * (rng() < 0.5 ? -1 : 1));
/** Distinct values (a shuffled ladder), so maxima have no ties. */
export const distinct: Gen = (rng, n) => {
  const v = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.05);
  for (let i = n - 1; i > 0; i--) { const j = Math.floor(rng() * (i + 1)); [v[i], v[j]] = [v[j], v[i]]; }
  return v;
};
export const positive: Gen = (rng, n) => Array.from({ length: n }, () => 0.5 + rng());
/** Uniform in [lo, hi], at least `gap` away from each of `kinks`. */
export const avoiding = (lo: number, hi: number, kinks: number[], gap = 0.05): Gen => (rng, n) =>
  Array.from({ length: n }, () => {
    for (;;) {
      const v = lo + (hi - lo) * rng();
      if (kinks.every((k) => Math.abs(v - k) > gap)) return v;
    }
  });

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

function floatTensor(dtype: DataType, dims: number[], values: number[]): TensorData {
  return dtype === 'float64' ? tensor('float64', dims, Float64Array.from(values)) : tensor('float32', dims, Float32Array.from(values));
}

interface Built {
  model: ReturnType<GraphBuilder['toModel']>;
  feeds: Record<string, TensorData>;
  wrt: string[];
  grads: Map<string, string>;
  loss: string;
}

async function outputDims(c: OpCase, dtype: DataType, feeds: Record<string, TensorData>): Promise<number[][]> {
  const b = new GraphBuilder();
  const outs = addForward(b, c, dtype);
  for (const o of outs) b.output(o, c.outDtype ?? dtype);
  const s = await createSession(b.toModel(), { threads: 1 });
  try {
    const r = await s.run(feeds, outs);
    return outs.map((o) => r[o].dims);
  } finally {
    await s.release();
  }
}

function addForward(b: GraphBuilder, c: OpCase, dtype: DataType): string[] {
  const names = c.inputs.map((spec, i) => {
    if (spec.omitted) return '';
    const name = `in${i}`;
    if (spec.ints) b.initializer(name, tensor('int64', spec.shape, BigInt64Array.from(spec.ints.map(BigInt))));
    else if (spec.bools) b.initializer(name, tensor('bool', spec.shape, Uint8Array.from(spec.bools, Number)));
    else if (spec.floats) b.initializer(name, floatTensor(dtype, spec.shape, spec.floats));
    else b.input(name, dtype, spec.shape);
    return name;
  });
  return b.opN(c.op, names, c.attrs ?? {}, c.outputs ?? 1);
}

export async function buildCase(c: OpCase, dtype: DataType, seed = 1): Promise<Built> {
  const rng = mulberry32(seed);
  const feeds: Record<string, TensorData> = {};
  c.inputs.forEach((spec, i) => {
    if (spec.omitted || spec.ints || spec.floats || spec.bools) return;
    feeds[`in${i}`] = floatTensor(dtype, spec.shape, (spec.gen ?? awayFromZero)(rng, size(spec.shape)));
  });
  const dims = await outputDims(c, dtype, feeds);
  const b = new GraphBuilder();
  const outs = addForward(b, c, dtype);
  const lossOutputs = c.lossOutputs ?? outs.map((_, i) => i);
  const terms = lossOutputs.map((i) => {
    const r = b.initializer(`R${i}`, tensor('float64', dims[i], Float64Array.from({ length: size(dims[i]) }, () => rng() * 2 - 1)));
    const wide = (c.outDtype ?? dtype) === 'float64' ? outs[i] : b.op('Cast', [outs[i]], { to: attr.int(11) });
    return b.op('ReduceSum', [b.op('Mul', [wide, r])], { keepdims: attr.int(0) });
  });
  const loss = terms.length === 1 ? terms[0] : b.op('Sum', terms);
  if (c.decomposeBatchNorm) decomposeBatchNormForTraining(b);
  const wrt = c.inputs.flatMap((spec, i) => (spec.omitted || spec.ints || spec.floats || spec.bools || spec.frozen ? [] : [`in${i}`]));
  const grads = backward(b, { loss, wrt });
  b.output(loss, 'float64');
  for (const w of wrt) b.output(grads.get(w) as string, dtype);
  return { model: b.toModel(), feeds, wrt, grads, loss };
}

export interface CheckResult {
  dtype: DataType;
  /** worst |analytic − numeric| / (|numeric| + scale) over the sampled elements */
  worst: number;
  tol: number;
}

/** Runs the case; prefers float64, falls back to float32 where onnxruntime lacks double kernels. */
export async function gradCheck(c: OpCase, seed = 1): Promise<CheckResult> {
  let built: Built;
  let dtype: DataType = 'float64';
  let session;
  try {
    built = await buildCase(c, dtype, seed);
    session = await createSession(built.model, { threads: 1 });
  } catch (e) {
    if (!/implementation|NOT_IMPLEMENTED|not supported|type/i.test(String(e))) throw e;
    dtype = 'float32';
    built = await buildCase(c, dtype, seed);
    session = await createSession(built.model, { threads: 1 });
  }
  try {
    const eps = dtype === 'float64' ? 1e-6 : 1e-3;
    const tol = c.tol ?? (dtype === 'float64' ? 1e-6 : 1e-3);
    const analytic = await session.run(built.feeds);
    const lossAt = async (feeds: Record<string, TensorData>) => Number((await session.run(feeds, [built.loss]))[built.loss].data[0]);
    let worst = 0;
    const rng = mulberry32(seed + 7);
    for (const w of built.wrt) {
      const x = built.feeds[w];
      const g = analytic[built.grads.get(w) as string];
      if (g.data.length !== x.data.length) throw new Error(`${c.label}: gradient of ${w} has ${g.data.length} values for ${x.data.length}`);
      const n = x.data.length;
      const picks = n <= 24 ? Array.from({ length: n }, (_, i) => i) : Array.from({ length: 24 }, () => Math.floor(rng() * n));
      // scale: errors are judged against the gradient's overall magnitude, not each element's
      const scale = Math.max(1e-3, ...Array.from(g.data as ArrayLike<number>, Math.abs));
      for (const k of picks) {
        const plus = { ...x, data: x.data.slice() } as TensorData;
        const minus = { ...x, data: x.data.slice() } as TensorData;
        (plus.data as Float64Array)[k] += eps;
        (minus.data as Float64Array)[k] -= eps;
        // the step actually taken, after rounding to the input's precision
        const step = Number(plus.data[k]) - Number(minus.data[k]);
        const num = ((await lossAt({ ...built.feeds, [w]: plus })) - (await lossAt({ ...built.feeds, [w]: minus }))) / step;
        const err = Math.abs(Number(g.data[k]) - num) / (Math.abs(num) + scale);
        if (!(err <= worst)) worst = Number.isNaN(err) ? Infinity : Math.max(worst, err);
      }
    }
    return { dtype, worst, tol };
  } finally {
    await session.release();
  }
}
