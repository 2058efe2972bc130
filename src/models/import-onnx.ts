import { z } from 'zod';
import { badInput } from '../kernel/errors.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { decodeModel } from '../onnx/codec.ts';
import { attr, getInt, getInts, type Graph, type Model, type Node, type TensorData, WRITE_IR_VERSION, WRITE_OPSET } from '../onnx/ir.ts';
import { ancestorNodes, cloneGraph, producers, renameValue, valueNames } from './graph-edit.ts';
import { groupBlocks } from './import-blocks.ts';
import { readNormalisation } from './import-preprocessing.ts';
import { assertTrainable, defaultOpset, upgradeGraph } from './import-upgrade.ts';
import { Rng, torchDefaultLinear } from './init.ts';
import type { ModelSpec } from './spec.ts';

/**
 * Import of an external ONNX classifier (torch.onnx.export, timm, …) as a backbone: cut its
 * classifier, attach a fresh Gemm head for `numClasses`, and describe the result as a ModelSpec
 * so it trains like a catalog model. Accepts inference exports (BN folded into conv) and training
 * exports (BatchNormalization kept, possibly with its training-mode outputs), at opsets 7–21: op
 * forms of other opsets are rewritten into opset 17's (import-upgrade.ts), and a backbone that could not be
 * trained is refused here, naming the op, its node and the file's opset — never at run time.
 */

export const ImportOptionsSchema = z.object({
  numClasses: z.number().int().min(1).max(100_000),
  seed: z.number().int().min(0).max(0xffffffff).optional(),
  /** The spec's name; default 'imported'. */
  name: z.string().min(1).max(200).optional(),
});
export type ImportOptions = z.infer<typeof ImportOptionsSchema>;

/** Input slots that hold trainable weights, per op. */
const PARAM_SLOTS: Record<string, number[]> = {
  Conv: [1, 2],
  ConvTranspose: [1, 2],
  Gemm: [0, 1, 2],
  MatMul: [0, 1],
  BatchNormalization: [1, 2],
  InstanceNormalization: [1, 2],
  LayerNormalization: [1, 2],
  PRelu: [1],
};
const BN_STAT_SLOTS = [3, 4];

export function importOnnxBytes(bytes: Uint8Array, opts: ImportOptions): ModelSpec {
  return importOnnxBackbone(decodeModel(bytes), opts);
}

export function importOnnxBackbone(source: Model, options: ImportOptions): ModelSpec {
  const parsed = ImportOptionsSchema.safeParse(options);
  if (!parsed.success) throw badInput('invalid import options', parsed.error.issues);
  const opts = parsed.data;
  const opset = defaultOpset(source);
  const g = cloneGraph(source.graph);
  const input = normaliseInput(g);
  constantsToInitializers(g);
  materialiseSharedWeights(g);
  const { features, width } = cutClassifier(g);

  // Batch becomes symbolic so any batch size runs; stale intermediate shapes would contradict it.
  // Spatial dims the file leaves free are fixed to the input size: the gradient rules need them.
  const norm = readNormalisation(source.metadata);
  const side = [input.shape?.[2], input.shape?.[3]].find((d) => typeof d === 'number');
  const inputSize = typeof side === 'number' ? side : norm.size ?? 224;
  const staticBatch = typeof input.shape?.[0] === 'number' ? input.shape[0] : null;
  input.shape = ['N', 3, inputSize, inputSize];
  if (staticBatch !== null && staticBatch > 1) unbakeBatch(g, staticBatch);
  g.valueInfo = [];
  upgradeGraph(g, opset);
  toInferenceForm(g);

  const rng = new Rng(opts.seed ?? 0);
  const b = new GraphBuilder(g);
  const x = producers(g).get(features)?.opType === 'Flatten' ? features : b.op('Flatten', [features], { axis: attr.int(1) }, 'head_flatten');
  const init = torchDefaultLinear(rng)(opts.numClasses, width);
  const w = b.initializer('head.weight', init.weight);
  const bias = b.initializer('head.bias', init.bias);
  b.opN('Gemm', [x, w, bias], { transB: attr.int(1) }, ['logits'], 'head');
  const headNode = g.nodes[g.nodes.length - 1];
  g.outputs = [{ name: 'logits', dtype: 'float32', shape: ['N', opts.numClasses] }];

  const { params, bnStats, paramsOf } = classifyInitializers(g);
  const grouped = groupBlocks(g.nodes.filter((n) => n !== headNode), paramsOf);
  const headParams = [w, bias];
  const model: Model = {
    irVersion: Math.max(source.irVersion, WRITE_IR_VERSION),
    opsetImports: upgradeOpset(source),
    producerName: 'ai-studio',
    graph: g,
    metadata: {
      ...source.metadata,
      'studio.architecture': opts.name ?? 'imported',
      'studio.input_size': String(inputSize),
      'studio.mean': JSON.stringify(norm.mean),
      'studio.std': JSON.stringify(norm.std),
    },
  };
  assertTrainable(model, params, opset);
  return {
    name: opts.name ?? 'imported',
    model,
    params,
    bnStats,
    blocks: [...grouped.blocks, headParams],
    blockNames: [...grouped.names, 'head'],
    head: headParams,
    inputSize,
    mean: norm.mean,
    std: norm.std,
    numClasses: opts.numClasses,
  };
}

/** Keeps the one real input (old exports also list initializers as inputs), named 'input'. */
function normaliseInput(g: Graph): Graph['inputs'][number] {
  const real = g.inputs.filter((v) => !g.initializers.has(v.name));
  if (real.length !== 1) throw badInput(`expected one image input, found ${real.length}: ${real.map((v) => v.name).join(', ')}`);
  const input = real[0];
  if (input.dtype !== 'float32') throw badInput(`the input must be float32, not ${input.dtype}`);
  if (input.shape && (input.shape.length !== 4 || (typeof input.shape[1] === 'number' && input.shape[1] !== 3))) {
    throw badInput(`the input must be [N,3,H,W], not [${input.shape.join(',')}]`);
  }
  if (input.shape && typeof input.shape[2] === 'number' && typeof input.shape[3] === 'number' && input.shape[2] !== input.shape[3]) {
    throw badInput(`only square inputs are supported, not ${input.shape[2]}×${input.shape[3]}`);
  }
  g.inputs = [input];
  if (input.name !== 'input') {
    if (valueNames(g).has('input')) renameValue(g, 'input', freshName(g, 'input_orig'));
    renameValue(g, input.name, 'input');
  }
  if (valueNames(g).has('logits')) renameValue(g, 'logits', freshName(g, 'logits_orig'));
  return input;
}

function freshName(g: Graph, prefix: string): string {
  const taken = valueNames(g);
  let i = 0;
  while (taken.has(`${prefix}_${i}`)) i++;
  return `${prefix}_${i}`;
}

/** Weights some exporters write as Constant nodes become initializers, so they can be trained. */
function constantsToInitializers(g: Graph): void {
  g.nodes = g.nodes.filter((n) => {
    if (n.opType !== 'Constant' || (n.domain ?? '') !== '') return true;
    const t = constantValue(n);
    if (!t) return true;
    g.initializers.set(n.outputs[0], t);
    return false;
  });
}

/** A Constant node's value: `value` (any opset) or, from opset 12, value_float(s)/value_int(s). */
function constantValue(n: Node): TensorData | undefined {
  const a = n.attrs;
  const v = a['value'] ?? a['value_float'] ?? a['value_floats'] ?? a['value_int'] ?? a['value_ints'];
  switch (v?.kind) {
    case 'tensor': return v.value;
    case 'float': return { dtype: 'float32', dims: [], data: Float32Array.of(v.value) };
    case 'floats': return { dtype: 'float32', dims: [v.value.length], data: Float32Array.from(v.value) };
    case 'int': return { dtype: 'int64', dims: [], data: BigInt64Array.of(BigInt(v.value)) };
    case 'ints': return { dtype: 'int64', dims: [v.value.length], data: BigInt64Array.from(v.value.map((x) => BigInt(x))) };
    default: return undefined;
  }
}

/**
 * Gives every weight slot its own initializer. torch.onnx.export deduplicates equal constants
 * (all-zero biases, say) into one initializer, sometimes behind Identity nodes; fine-tuning must
 * not tie those weights together.
 */
function materialiseSharedWeights(g: Graph): void {
  g.nodes = g.nodes.filter((n) => {
    if (n.opType !== 'Identity' || !g.initializers.has(n.inputs[0])) return true;
    const t = g.initializers.get(n.inputs[0])!;
    g.initializers.set(n.outputs[0], { ...t, dims: [...t.dims], data: t.data.slice() });
    return false;
  });
  const owned = new Set<string>();
  for (const n of g.nodes) {
    for (const slot of PARAM_SLOTS[n.opType] ?? []) {
      const name = n.inputs[slot];
      if (!name || !g.initializers.has(name)) continue;
      if (owned.has(name)) {
        const t = g.initializers.get(name)!;
        const copy = freshName(g, `${name}.copy`);
        g.initializers.set(copy, { ...t, dims: [...t.dims], data: t.data.slice() });
        n.inputs[slot] = copy;
      } else owned.add(name);
    }
  }
}

/**
 * Finds the classifier — the last Gemm or MatMul with a constant weight that the output depends
 * on, or failing that a 1×1 Conv on globally pooled features (MXNet/Gluon exports such as the ONNX
 * model zoo's mobilenetv2-7) — and removes it with everything after it. Returns the feature value
 * it read and its width.
 */
function cutClassifier(g: Graph): { features: string; width: number } {
  if (g.outputs.length === 0) throw badInput('the model has no output');
  const upstream = ancestorNodes(g, [g.outputs[0].name]);
  const classifier = [...upstream].reverse().find((n) =>
    (n.opType === 'Gemm' || n.opType === 'MatMul') && g.initializers.has(n.inputs[1]) && !g.initializers.has(n.inputs[0]));
  let features: string;
  let width: number;
  if (classifier) {
    const wDims = g.initializers.get(classifier.inputs[1])!.dims;
    if (wDims.length !== 2) throw badInput(`the classifier weight must be 2-D, not [${wDims.join(',')}]`);
    const transB = classifier.opType === 'Gemm' && getInt(classifier, 'transB', 0) === 1;
    if (classifier.opType === 'Gemm' && getInt(classifier, 'transA', 0) === 1) throw badInput('a transposed classifier input (transA) is not supported');
    features = classifier.inputs[0];
    width = transB ? wDims[1] : wDims[0];
  } else {
    const conv = pooledConvClassifier(g, upstream);
    if (!conv) throw badInput('no classifier found: the output does not depend on a Gemm or MatMul with constant weights, nor on a 1×1 Conv over globally pooled features');
    features = conv.inputs[0];
    width = g.initializers.get(conv.inputs[1])!.dims[1];
  }
  const kept = new Set(ancestorNodes(g, [features]));
  g.nodes = g.nodes.filter((n) => kept.has(n));
  const used = new Set(g.nodes.flatMap((n) => n.inputs));
  for (const k of [...g.initializers.keys()]) if (!used.has(k)) g.initializers.delete(k);
  return { features, width };
}

/** Ops that keep a [N, C, 1, 1] tensor [N, C, 1, 1] on the way from the pooling to the classifier. */
const POOLED_PASS_THROUGH = new Set(['Dropout', 'Identity', 'Relu', 'Clip', 'BatchNormalization']);

/**
 * The last Conv the output depends on when it is a classifier in disguise: constant weight
 * [K, C, 1, 1], one group, no strides or pads that matter on a 1×1 input, whose input comes from a
 * GlobalAveragePool/GlobalMaxPool (through dropout, identities and activations), and after which
 * nothing but reshaping and normalisation (Flatten, Reshape, Squeeze, Softmax, …) reaches the output.
 */
function pooledConvClassifier(g: Graph, upstream: Node[]): Node | undefined {
  const conv = [...upstream].reverse().find((n) => n.opType === 'Conv');
  if (!conv || !g.initializers.has(conv.inputs[1]) || g.initializers.has(conv.inputs[0])) return undefined;
  const w = g.initializers.get(conv.inputs[1])!;
  if (w.dims.length !== 4 || w.dims[2] !== 1 || w.dims[3] !== 1 || getInt(conv, 'group', 1) !== 1) return undefined;
  if ((getInts(conv, 'pads') ?? []).some((p) => p !== 0) || (getInts(conv, 'dilations') ?? []).some((d) => d !== 1)) return undefined;
  const after = upstream.slice(upstream.indexOf(conv) + 1);
  const reshaping = new Set(['Flatten', 'Reshape', 'Squeeze', 'Softmax', 'LogSoftmax', 'Identity', 'Dropout', 'Shape', 'Gather', 'Unsqueeze', 'Concat', 'Constant', 'Cast']);
  if (after.some((n) => !reshaping.has(n.opType))) return undefined;
  const prod = producers(g);
  let v = conv.inputs[0];
  for (let n = prod.get(v); n; n = prod.get(v)) {
    if (n.opType === 'GlobalAveragePool' || n.opType === 'GlobalMaxPool') return conv;
    if (!POOLED_PASS_THROUGH.has(n.opType)) return undefined;
    v = n.inputs[0];
  }
  return undefined;
}

/**
 * BatchNormalization in inference form (one output, no training_mode) with constant statistics,
 * and Dropout without a training_mode input: the training step decides both.
 */
function toInferenceForm(g: Graph): void {
  for (const n of g.nodes) {
    if (n.opType === 'BatchNormalization') {
      for (const slot of [1, 2, ...BN_STAT_SLOTS]) {
        if (!g.initializers.has(n.inputs[slot])) throw badInput(`BatchNormalization '${n.name}': input ${slot} is not a constant`);
      }
      n.outputs = [n.outputs[0]];
      delete n.attrs['training_mode'];
    } else if (n.opType === 'Dropout') {
      n.inputs = n.inputs.slice(0, 2);
      n.outputs = [n.outputs[0]];
    }
  }
}

/**
 * A static-batch export (torch's training export is one) may bake the batch into Reshape target
 * shapes; 0 in a Reshape shape copies the input's dimension, which keeps the batch free.
 */
function unbakeBatch(g: Graph, batch: number): void {
  for (const n of g.nodes) {
    if (n.opType !== 'Reshape') continue;
    const s = g.initializers.get(n.inputs[1]);
    if (!s || s.dtype !== 'int64' || s.data.length === 0 || s.data[0] !== BigInt(batch)) continue;
    const data = (s.data as BigInt64Array).slice();
    data[0] = 0n;
    const name = freshName(g, `${n.inputs[1]}.nobatch`);
    g.initializers.set(name, { dtype: 'int64', dims: [...s.dims], data });
    n.inputs[1] = name;
  }
}

/** Trainable weights and BN statistics, in graph order, and which node owns which params. */
function classifyInitializers(g: Graph): { params: string[]; bnStats: string[]; paramsOf: (n: Node) => string[] } {
  const prod = producers(g);
  const byNode = new Map<Node, string[]>();
  const params: string[] = [];
  const seen = new Set<string>();
  const bnStats: string[] = [];
  const isFloat = (name: string) => g.initializers.get(name)?.dtype === 'float32';
  for (const n of g.nodes) {
    const own: string[] = [];
    const slots = PARAM_SLOTS[n.opType]
      // A bias added after a MatMul is the other half of that linear layer.
      ?? (n.opType === 'Add' && n.inputs.some((i) => prod.get(i)?.opType === 'MatMul') ? [0, 1] : []);
    for (const slot of slots) {
      const name = n.inputs[slot];
      if (name && isFloat(name) && !seen.has(name)) {
        seen.add(name);
        own.push(name);
      }
    }
    if (n.opType === 'BatchNormalization') for (const slot of BN_STAT_SLOTS) bnStats.push(n.inputs[slot]);
    params.push(...own);
    byNode.set(n, own);
  }
  return { params, bnStats, paramsOf: (n) => byNode.get(n) ?? [] };
}

/**
 * The default domain at WRITE_OPSET once upgradeGraph has rewritten the nodes (opsets 13–16 share
 * the semantics of every op a CNN uses with 17, BN aside, normalised above); one entry for it.
 */
function upgradeOpset(m: Model): Model['opsetImports'] {
  const others = m.opsetImports.filter((o) => o.domain !== '' && o.domain !== 'ai.onnx').map((o) => ({ ...o }));
  return [{ domain: '', version: WRITE_OPSET }, ...others];
}
