import { backward, decomposeBatchNormForTraining } from '../autodiff/index.ts';
import { badInput } from '../core/errors.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { batchNormToInference, foldBatchNorm } from '../onnx/fold-batchnorm.ts';
import { eliminateDeadNodes, renameValues } from '../onnx/graph-utils.ts';
import { attr, type Dim, type Graph, type Model, type TensorData } from '../onnx/ir.ts';
import { cloneModel, liftToInput, trainingOpsets } from './graph-copy.ts';
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

/**
 * Dropout trains as nn.Dropout under model.train(): training_mode is set true, so each step draws
 * a mask (onnxruntime's own generator) that the Dropout gradient rule reads back.
 */
function activateDropout(b: GraphBuilder): void {
  const drops = b.graph.nodes.filter((n) => n.opType === 'Dropout');
  if (drops.length === 0) return;
  const on = b.initializer(b.fresh('dropout_training'), { dtype: 'bool', dims: [], data: Uint8Array.of(1) });
  for (const n of drops) n.inputs = [n.inputs[0], n.inputs[1] ?? '', on];
}

export function buildTrainingStep(model: Model, opts: TrainingStepOptions): TrainingStep {
  if (opts.trainable.length === 0) throw badInput('nothing to train: the trainable set is empty');
  if (new Set(opts.trainable).size !== opts.trainable.length) throw badInput('the trainable set names a parameter twice');
  const copy = cloneModel(model);
  const b = new GraphBuilder(copy.graph);
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
  // batch statistics and updates its running statistics.
  for (const node of b.graph.nodes) {
    if (node.opType === 'BatchNormalization') node.attrs = { ...node.attrs, training_mode: attr.int(1) };
  }
  activateDropout(b);
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
    const clipped = appendGradClip(b, gradList, opts.clipGradNorm);
    gradList = clipped.grads;
    gradNorm = exposed.add(clipped.totalNorm, 'grad_norm', []);
  }

  const lr = b.input(b.fresh('lr'), 'float32', []);
  const step = needsStep(opts.optimizer) ? b.input(b.fresh('step'), 'float32', []) : undefined;
  const noDecay = new Set(opts.noWeightDecay ?? []);
  const update = appendOptimizer(
    b,
    opts.optimizer,
    opts.trainable.map((p, i) => ({ param: p, grad: gradList[i], dims: paramDims.get(p) ?? [], decay: !noDecay.has(p) })),
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
  };
}

export interface EvalGraphOptions {
  /** Initializers to leave as graph inputs (fed each run, e.g. the values a Trainer updates). */
  asInputs?: string[];
}

/**
 * The evaluation graph: batch-norm in inference mode (running statistics), `params` written over
 * the model's initializers, logits as the only output.
 */
export function buildEvalGraph(model: Model, params: Record<string, TensorData>, opts: EvalGraphOptions = {}): Model {
  const copy = cloneModel(model);
  const logits = logitsOf(copy.graph);
  copy.graph.outputs = copy.graph.outputs.filter((o) => o.name === logits.name);
  // a model exported in training form gets its batch-norms switched to running statistics
  const inference = batchNormToInference(copy);
  const b = new GraphBuilder(inference.graph);
  setParams(b.graph, params);
  for (const name of opts.asInputs ?? []) liftToInput(b, name);
  return { ...inference, graph: eliminateDeadNodes(b.graph) };
}

/**
 * The model that is exported: `params` baked in as initializers, batch-norm folded into the convs
 * before it, and class probabilities (softmax over the logits) as the output.
 */
export function buildInferenceModel(model: Model, params: Record<string, TensorData>): Model {
  const folded = foldBatchNorm(buildEvalGraph(model, params));
  const b = new GraphBuilder(folded.graph);
  const logits = logitsOf(b.graph);
  const probs = b.fresh('probabilities');
  b.opN('Softmax', [logits.name], { axis: attr.int(1) }, [probs]);
  b.graph.outputs = [{ name: probs, dtype: 'float32', shape: logits.shape }];
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
