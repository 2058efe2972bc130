import { badInput } from '../kernel/errors.ts';
import { allocTyped } from '../onnx/dtypes.ts';
import { f32, type Model, type TensorData } from '../onnx/ir.ts';
import {
  copyTensorData,
  createSession,
  type Feeds,
  type RuntimeTensor,
  type Session,
  type SessionOptions,
  toRuntimeTensor,
} from '../runtime/session.ts';
import { lowerConvsToNchwc, nchwcBlockSize } from '../runtime/nchwc.ts';
import { buildBatchNormStatsGraph, buildEvalGraph, buildTrainingStep, type BatchNormStatsGraph, type DropoutMask, type TrainingStep, type TrainingStepOptions } from './step-graph.ts';

/**
 * Runs training steps in memory. Parameters, optimizer state and batch-norm statistics live as
 * runtime handles: each step's outputs become the next step's inputs without a copy into JS.
 * Only the loss, the logits and (on request) the state are copied out.
 */

export interface TrainerOptions extends TrainingStepOptions {
  threads?: number;
  /** Idle runtime threads spin for work (default false: a step's thousands of short ops would
   *  otherwise burn about as much CPU spinning as computing, which other jobs could use). */
  spinning?: boolean;
  /** Seeds the dropout masks (default 0): step k's masks depend on (seed, k) alone. */
  seed?: number;
  /** Depthwise and dense convs on onnxruntime's NCHWc kernels where it has them (default true; src/runtime/nchwc.ts). */
  nchwc?: boolean;
}

/**
 * Session settings for the step graph: no spinning (see TrainerOptions.spinning) and no memory
 * pattern, whose preplanned block is far larger than a training step's live peak.
 */
function stepSessionOptions(opts: TrainerOptions): SessionOptions {
  return { spinning: opts.spinning ?? false, memoryPattern: false, ...(opts.threads === undefined ? {} : { threads: opts.threads }) };
}

/** A copy of `model` whose convs run on onnxruntime's NCHWc kernels (src/runtime/nchwc.ts); nodes are copied, tensors shared. */
function withNchwcConvs(model: Model, block: number): Model {
  const copy: Model = {
    ...model,
    opsetImports: [...model.opsetImports],
    graph: { ...model.graph, nodes: [...model.graph.nodes], initializers: new Map(model.graph.initializers), valueInfo: [...model.graph.valueInfo] },
  };
  lowerConvsToNchwc(copy, block);
  return copy;
}

export interface TrainerState {
  params: Record<string, TensorData>;
  optimizerState: Record<string, TensorData>;
  bnStats: Record<string, TensorData>;
  /** Optimizer steps taken so far. */
  step: number;
}

export interface StepResult {
  loss: number;
  logits: TensorData;
  /** Global gradient norm before clipping, when clipping is on. */
  gradNorm?: number;
}

export class Trainer {
  readonly graph: TrainingStep;
  readonly #train: Session;
  readonly #eval: Session;
  /** Every value carried from step to step, by its step-graph input name. */
  #values = new Map<string, RuntimeTensor>();
  #step = 0;
  readonly #masks: DropoutMasks;
  /** The model and session options, for the batch-statistics graph built on first use. */
  readonly #model: Model;
  readonly #opts: TrainerOptions;
  #stats: { graph: BatchNormStatsGraph; session: Session } | null = null;

  private constructor(graph: TrainingStep, train: Session, evalSession: Session, initial: TrainerState, seed: number, model: Model, opts: TrainerOptions) {
    this.graph = graph;
    this.#model = model;
    this.#opts = opts;
    this.#train = train;
    this.#eval = evalSession;
    this.#masks = new DropoutMasks(graph.dropout, seed);
    this.setState(initial);
  }

  static async create(model: Model, opts: TrainerOptions): Promise<Trainer> {
    const graph = buildTrainingStep(model, opts);
    const carried = [...Object.keys(graph.params), ...Object.keys(graph.bnStats)];
    const evalModel = buildEvalGraph(model, {}, { asInputs: carried });
    const sessionOpts = stepSessionOptions(opts);
    // Weights are fed to both graphs, so onnxruntime's own NCHWc pass leaves their depthwise convs alone.
    const block = opts.nchwc === false ? null : await nchwcBlockSize();
    const [trainModel, evalRun] = block === null ? [graph.model, evalModel] : [withNchwcConvs(graph.model, block), withNchwcConvs(evalModel, block)];
    const [train, evalSession] = await Promise.all([createSession(trainModel, sessionOpts), createSession(evalRun, sessionOpts)]);
    const init = (name: string) => {
      const t = model.graph.initializers.get(name);
      if (!t) throw badInput(`'${name}' is not an initializer of the model`);
      return t;
    };
    const initial: TrainerState = {
      params: Object.fromEntries(Object.keys(graph.params).map((p) => [p, init(p)])),
      optimizerState: Object.fromEntries(
        Object.entries(graph.stateDims).map(([s, dims]) => [s, { dtype: 'float32' as const, dims, data: allocTyped('float32', dims.reduce((a, d) => a * d, 1)) }]),
      ),
      bnStats: Object.fromEntries(Object.keys(graph.bnStats).map((s) => [s, init(s)])),
      step: 0,
    };
    return new Trainer(graph, train, evalSession, initial, opts.seed ?? 0, model, opts);
  }

  get stepCount(): number {
    return this.#step;
  }

  /** One optimizer step on a batch; `target` as the loss expects (class indices or float targets). */
  async step(batch: TensorData, target: TensorData, lr: number): Promise<StepResult> {
    const g = this.graph;
    const feeds: Feeds = { [g.inputs.batch]: batch, [g.inputs.target]: target, [g.inputs.lr]: f32([], [lr]) };
    if (g.inputs.step) feeds[g.inputs.step] = f32([], [this.#step + 1]);
    Object.assign(feeds, this.#masks.feeds(batch.dims, this.#step + 1));
    for (const [name, h] of this.#values) feeds[name] = h;
    const out = await this.#train.runHandles(feeds);
    for (const map of [g.params, g.state, g.bnStats]) {
      for (const [input, output] of Object.entries(map)) this.#values.set(input, out[output]);
    }
    this.#step += 1;
    const result: StepResult = { loss: scalar(out[g.outputs.loss]), logits: copyTensorData(out[g.outputs.logits]) };
    if (g.outputs.gradNorm) result.gradNorm = scalar(out[g.outputs.gradNorm]);
    return result;
  }

  /** Logits for a batch with batch-norm in inference mode (running statistics). */
  async evaluate(batch: TensorData): Promise<TensorData> {
    const feeds: Feeds = { [this.graph.inputs.batch]: batch };
    for (const name of [...Object.keys(this.graph.params), ...Object.keys(this.graph.bnStats)]) {
      feeds[name] = this.#need(name);
    }
    const out = await this.#eval.runHandles(feeds);
    return copyTensorData(out[this.#eval.outputNames[0]]);
  }

  /** Whether the model has batch norms whose running statistics evaluation uses. */
  get hasBatchNorm(): boolean {
    return Object.keys(this.graph.bnStats).length > 0;
  }

  /**
   * "Precise BN": replaces every batch norm's running statistics by the cumulative average of its
   * batch statistics over `batches` (mean, and unbiased variance, each batch weighing the same), as
   * torch.optim.swa_utils.update_bn does. Running statistics only feed evaluation, so training is
   * unchanged; a pass of un-augmented training images makes them describe the current weights,
   * where an exponential average over few steps may not (the cause of constant predictions after
   * a short run). Returns the number of batches used (0: nothing changed).
   */
  async recalibrateBatchNorm(batches: AsyncIterable<TensorData>): Promise<number> {
    if (!this.hasBatchNorm) return 0;
    if (!this.#stats) {
      const graph = buildBatchNormStatsGraph(this.#model, Object.keys(this.graph.params));
      const block = this.#opts.nchwc === false ? null : await nchwcBlockSize();
      const session = await createSession(block === null ? graph.model : withNchwcConvs(graph.model, block), stepSessionOptions(this.#opts));
      this.#stats = { graph, session };
    }
    const { graph, session } = this.#stats;
    const names = Object.keys(this.graph.bnStats).filter((n) => n in graph.stats);
    const sums = new Map<string, Float64Array>();
    let count = 0;
    for await (const batch of batches) {
      // one image has no variance to speak of: its statistics would only add noise
      if ((batch.dims[0] ?? 0) < 2) continue;
      const feeds: Feeds = { [graph.input]: batch };
      for (const p of Object.keys(this.graph.params)) feeds[p] = this.#need(p);
      const out = await session.runHandles(feeds);
      for (const n of names) {
        const v = copyTensorData(out[graph.stats[n]]).data as Float32Array;
        let acc = sums.get(n);
        if (!acc) sums.set(n, (acc = new Float64Array(v.length)));
        for (let i = 0; i < v.length; i++) acc[i] += v[i];
      }
      count += 1;
    }
    if (count === 0) return 0;
    for (const n of names) {
      const acc = sums.get(n)!;
      const old = this.#need(n);
      const data = Float32Array.from(acc, (x) => x / count);
      this.#values.set(n, toRuntimeTensor({ dtype: 'float32', dims: [...copyTensorData(old).dims], data }));
    }
    return count;
  }

  /** A copy of everything a checkpoint needs to resume bit-for-bit. */
  getState(): TrainerState {
    const pick = (names: string[]) => Object.fromEntries(names.map((n) => [n, copyTensorData(this.#need(n))]));
    return {
      params: pick(Object.keys(this.graph.params)),
      optimizerState: pick(Object.keys(this.graph.state)),
      bnStats: pick(Object.keys(this.graph.bnStats)),
      step: this.#step,
    };
  }

  /**
   * A whole state for this trainer from a partial one (a trainer that trained fewer parameters,
   * e.g. only the head while the backbone was frozen): what `partial` lacks comes from the model's
   * initializers (parameters, batch-norm statistics) or starts at zero (optimizer state), as it
   * would for a parameter that never trained. Names `partial` has that this graph lacks are dropped.
   */
  completeState(partial: TrainerState): TrainerState {
    const fromModel = (name: string): TensorData => {
      const t = this.#model.graph.initializers.get(name);
      if (!t) throw badInput(`'${name}' is not an initializer of the model`);
      return t;
    };
    const pick = (names: string[], given: Record<string, TensorData>, fallback: (n: string) => TensorData) =>
      Object.fromEntries(names.map((n) => [n, given[n] ?? fallback(n)]));
    return {
      params: pick(Object.keys(this.graph.params), partial.params, fromModel),
      optimizerState: pick(Object.keys(this.graph.state), partial.optimizerState, (n) => {
        const dims = this.graph.stateDims[n];
        return { dtype: 'float32', dims, data: allocTyped('float32', dims.reduce((a, d) => a * d, 1)) };
      }),
      bnStats: pick(Object.keys(this.graph.bnStats), partial.bnStats, fromModel),
      step: partial.step,
    };
  }

  /** Replaces the whole state; names and shapes must match this trainer's graph exactly. */
  setState(s: TrainerState): void {
    if (!Number.isSafeInteger(s.step) || s.step < 0) throw badInput(`step must be a non-negative integer, got ${s.step}`);
    const values = new Map<string, RuntimeTensor>();
    const load = (group: string, expected: Record<string, unknown>, given: Record<string, TensorData>, dimsOf: (n: string) => number[] | undefined) => {
      const want = Object.keys(expected).sort();
      const got = Object.keys(given).sort();
      if (want.join('\n') !== got.join('\n')) {
        const missing = want.filter((n) => !(n in given));
        const extra = got.filter((n) => !(n in expected));
        throw badInput(`${group} do not match the training graph (missing: ${missing.join(', ') || 'none'}; unexpected: ${extra.join(', ') || 'none'})`);
      }
      for (const n of want) {
        const t = given[n];
        const dims = dimsOf(n);
        if (t.dtype !== 'float32' || (dims && dims.join(',') !== t.dims.join(','))) {
          throw badInput(`${group} '${n}' is ${t.dtype}[${t.dims.join(',')}], expected float32[${dims?.join(',')}]`);
        }
        // own copy: the caller may reuse its arrays, and handles must not alias each other
        values.set(n, toRuntimeTensor({ dtype: t.dtype, dims: [...t.dims], data: t.data.slice() }));
      }
    };
    const inputDims = (n: string) => this.graph.model.graph.inputs.find((v) => v.name === n)?.shape?.map(Number);
    load('params', this.graph.params, s.params, inputDims);
    load('optimizer state', this.graph.state, s.optimizerState, (n) => this.graph.stateDims[n]);
    load('batch-norm statistics', this.graph.bnStats, s.bnStats, inputDims);
    this.#values = values;
    this.#step = s.step;
  }

  async release(): Promise<void> {
    await Promise.all([this.#train.release(), this.#eval.release(), this.#stats?.session.release()]);
    this.#stats = null;
  }

  #need(name: string): RuntimeTensor {
    const h = this.#values.get(name);
    if (!h) throw badInput(`no value for '${name}'`);
    return h;
  }
}

/**
 * The dropout masks of each step, drawn from sfc32 seeded by (seed, step, mask index): a resumed
 * run needs only its step count to draw what an uninterrupted run would, whatever the session.
 * One buffer per mask is reused across steps (a smaller last batch takes a view of it).
 */
export class DropoutMasks {
  readonly #buffers = new Map<string, Float32Array>();
  readonly #seed: number;
  constructor(
    readonly masks: readonly DropoutMask[],
    seed: number,
  ) {
    if (!Number.isSafeInteger(seed)) throw badInput(`the dropout seed must be an integer, got ${seed}`);
    this.#seed = seed >>> 0;
  }

  /** Feeds for the masks of 1-based `step` and a batch of `batchDims`; valid until the next call. */
  feeds(batchDims: readonly number[], step: number): Record<string, TensorData> {
    const feeds: Record<string, TensorData> = {};
    this.masks.forEach((m, index) => {
      const dims = m.dims.map((d) => {
        if (typeof d === 'number') return d;
        const size = batchDims[d.batchAxis];
        if (size === undefined) throw badInput(`the batch has rank ${batchDims.length}; dropout mask '${m.input}' needs axis ${d.batchAxis}`);
        return size;
      });
      const n = dims.reduce((a, v) => a * v, 1);
      let buf = this.#buffers.get(m.input);
      if (!buf || buf.length < n) this.#buffers.set(m.input, (buf = new Float32Array(n)));
      const data = buf.subarray(0, n);
      fillDropoutMask(data, m.ratio, this.#seed, step, index);
      feeds[m.input] = { dtype: 'float32', dims, data };
    });
    return feeds;
  }
}

/** splitmix32's finalizer: spreads related words (step k, k + 1) over unrelated generator states. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * Writes one mask: each entry kept with probability 1 − ratio (to 2⁻³²), as 1/(1 − ratio), else 0.
 * sfc32 inlined: the generator runs once per masked activation every step.
 */
export function fillDropoutMask(out: Float32Array, ratio: number, seed: number, step: number, index: number): void {
  if (!(ratio >= 0 && ratio < 1)) throw badInput(`dropout ratio ${ratio} is outside [0, 1)`);
  if (!Number.isSafeInteger(step) || step < 0) throw badInput(`step must be a non-negative integer, got ${step}`);
  let a = mix32((seed + 0x9e3779b9) >>> 0);
  let b = mix32((step >>> 0) ^ 0x7f4a7c15);
  let c = mix32((mix32((Math.floor(step / 2 ** 32) + 0x632be5ab) >>> 0) ^ index) >>> 0);
  let d = 1;
  const threshold = Math.round(ratio * 2 ** 32);
  const scale = 1 / (1 - ratio);
  for (let i = -12; i < out.length; i++) {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    // the first 12 outputs warm the state up and are discarded
    if (i >= 0) out[i] = t >= threshold ? scale : 0;
  }
}

function scalar(h: RuntimeTensor): number {
  return Number(copyTensorData(h).data[0]);
}
