import { GraphBuilder } from './builder.ts';
import { cloneModel, consumers, producers } from './graph-utils.ts';
import { type Graph, type Model, type Node, type TensorData, getFloat, getInt } from './ir.ts';

/**
 * Export-graph rewrites for BatchNormalization.
 *
 * An inference-mode BN after a Conv is an affine map per output channel, so it folds into the
 * conv's weights and bias:  f = γ / √(σ² + ε),  W' = W·f (per output channel),  b' = (b − μ)·f + β.
 */

/** A BN node normalizes with running statistics only when it is not in training mode and only Y is read. */
function isInferenceMode(bn: Node, read: Set<string>): boolean {
  return getInt(bn, 'training_mode', 0) === 0 && bn.outputs.slice(1).every((o) => o === '' || !read.has(o));
}

function readValues(g: Graph): Set<string> {
  const read = new Set(g.outputs.map((o) => o.name));
  for (const n of g.nodes) for (const i of n.inputs) read.add(i);
  return read;
}

/**
 * Puts every BatchNormalization whose statistics outputs nothing reads into inference mode: drops
 * `training_mode` and the unread outputs (an opset-13 training export declares them, which makes
 * onnxruntime normalize with batch statistics). BN nodes whose statistics are read are left alone.
 */
export function batchNormToInference(model: Model): Model {
  const m = cloneModel(model);
  const read = readValues(m.graph);
  for (const n of m.graph.nodes) {
    if (n.opType !== 'BatchNormalization' || n.domain) continue;
    if (n.outputs.slice(1).some((o) => o !== '' && read.has(o))) continue;
    n.outputs = [n.outputs[0]];
    delete n.attrs.training_mode;
  }
  return m;
}

/**
 * Folds each inference-mode BatchNormalization into the Conv that feeds it, when the conv's
 * output goes nowhere else and the conv weights and BN parameters are float32 initializers
 * (not graph inputs). Returns a new model; the argument is not changed.
 */
export function foldBatchNorm(model: Model): Model {
  const m = cloneModel(model);
  const g = m.graph;
  const names = new GraphBuilder(g); // only for fresh, collision-free names
  const graphInputs = new Set(g.inputs.map((v) => v.name));
  const graphOutputs = new Set(g.outputs.map((v) => v.name));
  const prod = producers(g);
  const cons = consumers(g);
  const read = readValues(g);
  const constant = (name: string | undefined): TensorData | undefined => {
    const t = name ? g.initializers.get(name) : undefined;
    return t && t.dtype === 'float32' && !graphInputs.has(name!) ? t : undefined;
  };
  const removed = new Set<Node>();
  const replaced = new Set<string>();

  for (const bn of g.nodes) {
    if (bn.opType !== 'BatchNormalization' || bn.domain || !isInferenceMode(bn, read)) continue;
    const x = bn.inputs[0];
    const conv = prod.get(x);
    if (!conv || conv.opType !== 'Conv' || conv.domain) continue;
    if ((cons.get(x)?.length ?? 0) !== 1 || graphOutputs.has(x)) continue;
    const w = constant(conv.inputs[1]);
    const convBias = conv.inputs[2] ? constant(conv.inputs[2]) : undefined;
    const [gamma, beta, mean, variance] = bn.inputs.slice(1, 5).map(constant);
    if (!w || (conv.inputs[2] && !convBias) || !gamma || !beta || !mean || !variance) continue;

    const outC = w.dims[0];
    const per = w.data.length / outC;
    const eps = getFloat(bn, 'epsilon', 1e-5);
    const wd = w.data as Float32Array;
    const newW = new Float32Array(wd.length);
    const newB = new Float32Array(outC);
    for (let c = 0; c < outC; c++) {
      const f = (gamma.data[c] as number) / Math.sqrt((variance.data[c] as number) + eps);
      for (let j = 0; j < per; j++) newW[c * per + j] = wd[c * per + j] * f;
      const b0 = convBias ? (convBias.data[c] as number) : 0;
      newB[c] = (b0 - (mean.data[c] as number)) * f + (beta.data[c] as number);
    }
    const wName = names.fresh(`${conv.inputs[1]}_bnfolded`);
    const bName = names.fresh(`${conv.name}_bias_bnfolded`);
    g.initializers.set(wName, { dtype: 'float32', dims: [...w.dims], data: newW });
    g.initializers.set(bName, { dtype: 'float32', dims: [outC], data: newB });
    for (const old of [conv.inputs[1], conv.inputs[2], ...bn.inputs.slice(1)]) if (old) replaced.add(old);
    conv.inputs = [conv.inputs[0], wName, bName];
    conv.outputs = [bn.outputs[0], ...conv.outputs.slice(1)];
    removed.add(bn);
  }

  g.nodes = g.nodes.filter((n) => !removed.has(n));
  // Drop the old weights and statistics that nothing reads any more.
  const stillRead = readValues(g);
  for (const name of replaced) if (!stillRead.has(name) && !graphInputs.has(name)) g.initializers.delete(name);
  const produced = new Set(g.nodes.flatMap((n) => n.outputs));
  g.valueInfo = g.valueInfo.filter((v) => produced.has(v.name) || graphInputs.has(v.name));
  return m;
}
