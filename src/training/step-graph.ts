import { backward, decomposeBatchNormForTraining, lowerBatchNormTraining } from '../autodiff/index.ts';
import { badInput } from '../kernel/errors.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { batchNormToInference, foldBatchNorm } from '../onnx/fold-batchnorm.ts';
import { eliminateDeadNodes, renameValues } from '../onnx/graph-utils.ts';
import { attr, type Dim, type Graph, type Model, type Node, type TensorData } from '../onnx/ir.ts';
import { inferShapes } from '../onnx/shape-inference.ts';
import { cloneModel, liftToInput, trainingOpsets } from './graph-copy.ts';
import { poolBeforeRelu } from './pool-before-relu.ts';
import { appendLoss, type LossSpec, lossTarget } from './losses.ts';
import { appendGradClip, appendOptimizer, needsStep, type OptimizerSpec } from './optimizers.ts';

/**
 * Compiles a model into the graphs training runs: one training step (forward with batch-norm in
 * training mode, loss, backward, optional clipping, optimizer update — one session.run), the
 * evaluation graph, and the inference model that is exported. The model graph contract is the
 * catalog's (src/models/spec.ts): one batch input, logits as output 0, batch-norm in inference
 * form with running statistics as initializers.
 */

export interface TrainingStepOptions {
  loss: LossSpec;
  /** Initializer names to train; every other initializer stays a constant (no backward nodes). */
  trainable: string[];
  optimizer: OptimizerSpec;
  /** Max global L2 norm of the gradients (PyTorch's clip_grad_norm_), applied before the update. */
  clipGradNorm?: number;
  /** Trainable names excluded from weight decay. */
  noWeightDecay?: string[];
  /** Also output each parameter's raw gradient (before clipping), for checks and diagnostics. */
  exposeGradients?: boolean;
  /** Learning rate multiples per trainable name (PyTorch's param groups; absent: 1). */
  lrScale?: Record<string, number>;
  /**
   * Batch norms none of whose affine parameters train stay in inference form: their running
   * statistics normalize and are not updated (a frozen backbone's BN in eval mode, as fine-tuning
   * recipes keep it). Default false: every BN trains as under model.train().
   */
  frozenBatchNorm?: boolean;
}

export interface TrainingStep {
  model: Model;
  inputs: { batch: string; target: string; lr: string; step?: string };
  outputs: { loss: string; logits: string; gradNorm?: string; grads?: Record<string, string> };
  /** param input → updated param output */
  params: Record<string, string>;
  /** optimizer-state input → its next value; every state starts as zeros of `stateDims`. */
  state: Record<string, string>;
  stateDims: Record<string, number[]>;
  /** batch-norm running statistic input → its next value */
  bnStats: Record<string, string>;
  /** The masks to feed every step, one per Dropout of the model. */
  dropout: DropoutMask[];
}

function batchInput(g: Graph): string {
  const inputs = g.inputs.filter((v) => !g.initializers.has(v.name));
  if (inputs.length !== 1) throw badInput(`a model for training needs exactly one batch input, found ${inputs.length}`);
  return inputs[0].name;
}

function logitsOf(g: Graph): { name: string; shape: Dim[] } {
  const out = g.outputs[0];
  if (!out) throw badInput('the model has no output');
  return { name: out.name, shape: out.shape ?? [null, null] };
}

/**
 * Graph outputs under readable names (`<param>.next`, `loss`, …). The values are renamed in one
 * pass at the end rather than copied through Identity nodes: an Identity on every parameter and
 * state tensor would copy the whole model each step.
 */
class Exposed {
  readonly names = new Map<string, string>();
  constructor(private readonly b: GraphBuilder) {}
  add(value: string, name: string, dims?: Dim[]): string {
    let out = this.names.get(value);
    if (!out) {
      out = this.b.fresh(name);
      this.names.set(value, out);
      this.b.output(value, 'float32', dims);
    }
    return out;
  }
}

/** A mask dimension: a fixed size, or the size of an axis of the batch input, known per step. */
export type MaskDim = number | { batchAxis: number };

/**
 * One Dropout of the model as the step graph runs it: `y = x · mask`, the mask a float32 graph
 * input the caller feeds every step (0 where dropped, 1/(1 − ratio) where kept: PyTorch's inverted
 * dropout). Drawing the masks outside onnxruntime, from a generator seeded by (seed, step), is what
 * makes a resumed run draw the masks an uninterrupted one would (onnxruntime's own generator
 * restarts with every session).
 */
export interface DropoutMask {
  input: string;
  ratio: number;
  dims: MaskDim[];
}

/** onnx.TensorProto.BOOL */
const DTYPE_BOOL = 9;

/** Marks the batch input's free axes so shape inference carries them through to each Dropout. */
const BATCH_AXIS = '\u0000batch_axis:';

function dropoutRatio(g: Graph, n: Node): number {
  const name = n.inputs[1] ?? '';
  if (name === '') return 0.5;
  const t = g.initializers.get(name);
  if (!t || t.data.length !== 1 || (t.dtype !== 'float32' && t.dtype !== 'float64')) {
    throw badInput(`Dropout '${n.name}': its ratio must be a constant float scalar to train`);
  }
  const ratio = Number(t.data[0]);
  if (!(ratio >= 0 && ratio < 1)) throw badInput(`Dropout '${n.name}': ratio ${ratio} is outside [0, 1)`);
  return ratio;
}

/**
 * Dropout trains as nn.Dropout under model.train(), every one active: each becomes `x · mask` (Mul
 * has a gradient rule, so dX = dY · mask) with the mask fed as a graph input. A mask output the
 * model reads is rebuilt as `mask ≠ 0`.
 */
function replaceDropout(b: GraphBuilder, batch: string): DropoutMask[] {
  const drops = b.graph.nodes.filter((n) => n.opType === 'Dropout' && (n.domain ?? '') === '');
  if (drops.length === 0) return [];
  const declared = b.graph.inputs.find((v) => v.name === batch)?.shape;
  const marked = declared?.map((d, i) => (typeof d === 'number' ? d : `${BATCH_AXIS}${i}`));
  const types = inferShapes(b.graph, marked ? { inputs: { [batch]: marked } } : {});
  return drops.map((n) => {
    const ratio = dropoutRatio(b.graph, n);
    const [x] = n.inputs;
    const [y, keep = ''] = n.outputs;
    const t = types.get(x);
    if (!t) throw badInput(`Dropout '${n.name}': the shape of its input '${x}' cannot be inferred`);
    if (t.dtype !== 'float32') throw badInput(`Dropout '${n.name}': its input is ${t.dtype}; only float32 trains`);
    const dims = t.shape.map((d, axis): MaskDim => {
      if (typeof d === 'number') return d;
      if (typeof d === 'string' && d.startsWith(BATCH_AXIS)) return { batchAxis: Number(d.slice(BATCH_AXIS.length)) };
      throw badInput(`Dropout '${n.name}': axis ${axis} of its input has a size only known at run time`);
    });
    const mask = b.input(b.fresh(`${n.name || 'dropout'}.mask`), 'float32', dims.map((d) => (typeof d === 'number' ? d : null)));
    n.opType = 'Mul';
    n.inputs = [x, mask];
    n.outputs = [y];
    n.attrs = {};
    if (keep !== '') {
      b.opN('Cast', [mask], { to: attr.int(DTYPE_BOOL) }, [keep]);
      // the Cast reads only a graph input: placed right after the Mul, it precedes every reader
      const cast = b.graph.nodes.pop()!;
      b.graph.nodes.splice(b.graph.nodes.indexOf(n) + 1, 0, cast);
    }
    return { input: mask, ratio, dims };
  });
}

/**
 * The graph without its Dropouts (identities outside training), so evaluation and the exported
 * model carry none. A Dropout whose output is a graph output, or whose mask is read, stays.
 */
function removeDropout(g: Graph): Graph {
  const outputs = new Set(g.outputs.map((v) => v.name));
  const alias = new Map<string, string>();
  const nodes = g.nodes.filter((n) => {
    const removable = n.opType === 'Dropout' && (n.domain ?? '') === '' && !outputs.has(n.outputs[0]) && (n.outputs[1] ?? '') === '';
    if (removable) alias.set(n.outputs[0], n.inputs[0]);
    return !removable;
  });
  if (alias.size === 0) return g;
  // a chain of Dropouts resolves to the first one's input
  const r = (v: string) => {
    while (alias.has(v)) v = alias.get(v)!;
    return v;
  };
  return { ...g, nodes: nodes.map((n) => ({ ...n, inputs: n.inputs.map(r) })) };
}

export function buildTrainingStep(model: Model, opts: TrainingStepOptions): TrainingStep {
  if (opts.trainable.length === 0) throw badInput('nothing to train: the trainable set is empty');
  if (new Set(opts.trainable).size !== opts.trainable.length) throw badInput('the trainable set names a parameter twice');
  const copy = cloneModel(model);
  const b = new GraphBuilder(copy.graph);
  poolBeforeRelu(b);
  const batch = batchInput(b.graph);
  const logits = logitsOf(b.graph);
  // The step's outputs are only what the runner reads: the model's other outputs are dropped.
  b.graph.outputs = b.graph.outputs.filter((o) => o.name === logits.name);
  const numClasses = logits.shape[logits.shape.length - 1];
  if (typeof numClasses !== 'number') throw badInput(`the logits output '${logits.name}' needs a static class dimension`);

  const paramDims = new Map<string, number[]>();
  for (const p of opts.trainable) {
    const t = b.graph.initializers.get(p);
    if (t && t.dtype !== 'float32') throw badInput(`trainable '${p}' is ${t.dtype}; only float32 parameters are trained`);
    paramDims.set(p, liftToInput(b, p));
  }

  // Batch-norm trains as PyTorch's model.train(): every BN, frozen ones included, normalizes with
  // batch statistics and updates its running statistics — unless `frozenBatchNorm` keeps the BNs
  // of frozen layers in eval mode.
  const training = new Set(opts.trainable);
  for (const node of b.graph.nodes) {
    if (node.opType !== 'BatchNormalization') continue;
    if (opts.frozenBatchNorm && !training.has(node.inputs[1]) && !training.has(node.inputs[2])) continue;
    node.attrs = { ...node.attrs, training_mode: attr.int(1) };
  }
  const dropout = replaceDropout(b, batch);
  const exposed = new Exposed(b);
  const bnStats: Record<string, string> = {};
  for (const bn of decomposeBatchNormForTraining(b)) {
    for (const [inName, outName] of [[bn.runningMeanIn, bn.runningMeanOut], [bn.runningVarIn, bn.runningVarOut]]) {
      const dims = b.graph.initializers.has(inName) ? liftToInput(b, inName) : undefined;
      bnStats[inName] = exposed.add(outName, `${inName}.next`, dims);
    }
  }

  const target = b.fresh('target');
  const t = lossTarget(opts.loss, logits.shape);
  b.input(target, t.dtype, t.shape);
  const lossValue = appendLoss(b, opts.loss, logits.name, target, numClasses);

  const grads = backward(b, { loss: lossValue, wrt: opts.trainable });
  let gradList = opts.trainable.map((p) => {
    const g = grads.get(p);
    if (!g) throw badInput(`no gradient for '${p}'`);
    return g;
  });
  const rawGrads = opts.exposeGradients
    ? Object.fromEntries(opts.trainable.map((p, i) => [p, exposed.add(gradList[i], `${p}.grad`, paramDims.get(p))]))
    : undefined;
  let gradNorm: string | undefined;
  if (opts.clipGradNorm !== undefined) {
    if (!(opts.clipGradNorm > 0)) throw badInput(`clipGradNorm must be positive, got ${opts.clipGradNorm}`);
    const clipped = appendGradClip(b, gradList, opts.clipGradNorm, opts.trainable.map((p) => paramDims.get(p)?.length ?? 0));
    gradList = clipped.grads;
    gradNorm = exposed.add(clipped.totalNorm, 'grad_norm', []);
  }

  const lr = b.input(b.fresh('lr'), 'float32', []);
  const step = needsStep(opts.optimizer) ? b.input(b.fresh('step'), 'float32', []) : undefined;
  const noDecay = new Set(opts.noWeightDecay ?? []);
  const update = appendOptimizer(
    b,
    opts.optimizer,
    opts.trainable.map((p, i) => ({ param: p, grad: gradList[i], dims: paramDims.get(p) ?? [], decay: !noDecay.has(p), ...(opts.lrScale?.[p] !== undefined ? { lrScale: opts.lrScale[p] } : {}) })),
    lr,
    step,
  );

  const loss = exposed.add(lossValue, 'loss', []);
  const params: Record<string, string> = {};
  for (const p of opts.trainable) params[p] = exposed.add(update.params[p], `${p}.next`, paramDims.get(p));
  const state: Record<string, string> = {};
  const stateDims: Record<string, number[]> = {};
  for (const s of update.state) {
    state[s.name] = exposed.add(s.out, `${s.name}.next`, s.dims);
    stateDims[s.name] = s.dims;
  }

  // backward emits gradients of values nothing reads (e.g. of frozen branches' inputs)
  const pruned = eliminateDeadNodes(b.graph);
  return {
    model: { ...copy, opsetImports: trainingOpsets(copy), graph: renameValues(pruned, exposed.names) },
    inputs: { batch, target, lr, ...(step ? { step } : {}) },
    outputs: { loss, logits: logits.name, ...(gradNorm ? { gradNorm } : {}), ...(rawGrads ? { grads: rawGrads } : {}) },
    params,
    state,
    stateDims,
    bnStats,
    dropout,
  };
}

/** The batch statistics of every batch-norm for one batch: running-statistics input name → graph output. */
export interface BatchNormStatsGraph {
  model: Model;
  /** The graph's batch input. */
  input: string;
  stats: Record<string, string>;
}

/**
 * A forward graph that reads each batch-norm's batch statistics (for "precise BN": running
 * statistics recomputed over a pass of training images, as torch.optim.swa_utils.update_bn does).
 * Every batch-norm normalizes with its batch's statistics, as in training, and outputs its batch
 * mean and unbiased variance in place of the running ones (momentum 0); Dropout is removed, as at
 * evaluation. `asInputs` are fed each run (the Trainer's current parameters).
 */
export function buildBatchNormStatsGraph(model: Model, asInputs: string[] = []): BatchNormStatsGraph {
  const copy = cloneModel(model);
  const b = new GraphBuilder(removeDropout(copy.graph));
  const input = batchInput(b.graph);
  for (const node of b.graph.nodes) {
    if (node.opType === 'BatchNormalization') node.attrs = { ...node.attrs, training_mode: attr.int(1), momentum: attr.float(0) };
  }
  const updates = decomposeBatchNormForTraining(b);
  lowerBatchNormTraining(b);
  for (const name of asInputs) liftToInput(b, name);
  const stats: Record<string, string> = {};
  const outputs: Graph['outputs'] = [];
  for (const u of updates) {
    for (const [inName, outName] of [[u.runningMeanIn, u.runningMeanOut], [u.runningVarIn, u.runningVarOut]]) {
      stats[inName] = outName;
      const t = b.graph.initializers.get(inName);
      outputs.push({ name: outName, dtype: 'float32', shape: t ? [...t.dims] : [null] });
    }
  }
  b.graph.outputs = outputs;
  return { model: { ...copy, opsetImports: trainingOpsets(copy), graph: eliminateDeadNodes(b.graph) }, input, stats };
}

export interface EvalGraphOptions {
  /** Initializers to leave as graph inputs (fed each run, e.g. the values a Trainer updates). */
  asInputs?: string[];
}

/**
 * The evaluation graph: batch-norm in inference mode (running statistics), no Dropout, `params`
 * written over the model's initializers, logits as the only output.
 */
export function buildEvalGraph(model: Model, params: Record<string, TensorData>, opts: EvalGraphOptions = {}): Model {
  const copy = cloneModel(model);
  const logits = logitsOf(copy.graph);
  copy.graph.outputs = copy.graph.outputs.filter((o) => o.name === logits.name);
  // a model exported in training form gets its batch-norms switched to running statistics
  const inference = batchNormToInference(copy);
  const b = new GraphBuilder(removeDropout(inference.graph));
  setParams(b.graph, params);
  for (const name of opts.asInputs ?? []) liftToInput(b, name);
  return { ...inference, graph: eliminateDeadNodes(b.graph) };
}

/**
 * What a task appends after the raw outputs of the inference model: it adds its nodes through `b`
 * and names the graph outputs it made, the first being the one evaluation and predict read.
 */
export type InferencePostprocess = (b: GraphBuilder, raw: string) => { primary: string; outputs: { name: string; description: string }[] };

/** Class probabilities: softmax over the class axis (classification's post-processing). */
export const softmaxPostprocess: InferencePostprocess = (b, raw) => {
  const probs = b.fresh('probabilities');
  b.opN('Softmax', [raw], { axis: attr.int(1) }, [probs]);
  return { primary: probs, outputs: [{ name: probs, description: 'softmax of the logits over the class axis; index i is labels[i]' }] };
};

/**
 * The model that is exported: `params` baked in as initializers, batch-norm folded into the convs
 * before it, and the task's post-processing (`post`; softmax probabilities by default) as the
 * outputs, the primary one first.
 */
export function buildInferenceModel(model: Model, params: Record<string, TensorData>, post: InferencePostprocess = softmaxPostprocess): Model {
  const folded = foldBatchNorm(buildEvalGraph(model, params));
  const b = new GraphBuilder(folded.graph);
  const logits = logitsOf(b.graph);
  const made = post(b, logits.name);
  const primary = made.outputs.find((o) => o.name === made.primary);
  if (!primary) throw badInput(`the post-processing's primary output '${made.primary}' is not among its outputs`);
  const rest = made.outputs.filter((o) => o.name !== made.primary);
  b.graph.outputs = [primary, ...rest].map((o) => ({ name: o.name, dtype: 'float32', shape: logits.shape }));
  return folded;
}

function setParams(g: Graph, params: Record<string, TensorData>): void {
  for (const [name, t] of Object.entries(params)) {
    const old = g.initializers.get(name);
    if (!old) throw badInput(`'${name}' is not an initializer of the model`);
    if (old.dtype !== t.dtype || old.dims.join(',') !== t.dims.join(',')) {
      throw badInput(`'${name}' is ${old.dtype}[${old.dims.join(',')}], got ${t.dtype}[${t.dims.join(',')}]`);
    }
    g.initializers.set(name, t);
  }
}
