import { describe, expect, it } from 'vitest';
import { createModel } from '../../src/models/index.ts';
import { decodeModel } from '../../src/onnx/codec.ts';
import { f32, type Graph, type Model } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';
import { interop, maxAbs, maxAbsDiff } from './helpers.ts';

/**
 * Loads the weights of torchvision's own MobileNetV3-Small (exported by PyTorch, BN folded into
 * the convs) into our graph and compares outputs: equal outputs mean the same layers in the same
 * order with the same shapes, strides, pads, groups and activations.
 */
function loadFolded(target: Model, source: Graph): void {
  const g = target.graph;
  const consumer = new Map(g.nodes.flatMap((n) => n.inputs.map((i) => [i, n] as const)));
  const ours = g.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'Gemm');
  const theirs = source.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'Gemm');
  expect(ours.map((n) => n.opType)).toEqual(theirs.map((n) => n.opType));
  const value = (graph: Graph, name: string) => {
    // PyTorch's exporter may route a shared initializer through an Identity node.
    const id = graph.nodes.find((n) => n.opType === 'Identity' && n.outputs[0] === name);
    return graph.initializers.get(id ? id.inputs[0] : name)!;
  };
  ours.forEach((n, i) => {
    const src = theirs[i];
    const w = value(source, src.inputs[1]);
    expect(g.initializers.get(n.inputs[1])!.dims, n.name).toEqual(w.dims);
    expect(src.attrs.strides ?? null, n.name).toEqual(n.attrs.strides ?? null);
    g.initializers.set(n.inputs[1], w);
    const bias = value(source, src.inputs[2]);
    if (n.inputs[2]) {
      g.initializers.set(n.inputs[2], bias);
      return;
    }
    // Folded BN: ours keeps a BN after the conv; make it y = x + bias (var = 1 − eps).
    const bn = consumer.get(n.outputs[0])!;
    expect(bn.opType).toBe('BatchNormalization');
    const eps = bn.attrs.epsilon?.kind === 'float' ? bn.attrs.epsilon.value : 1e-5;
    const c = bias.dims[0];
    g.initializers.set(bn.inputs[1], f32([c], new Float32Array(c).fill(1)));
    g.initializers.set(bn.inputs[2], bias);
    g.initializers.set(bn.inputs[3], f32([c], new Float32Array(c)));
    g.initializers.set(bn.inputs[4], f32([c], new Float32Array(c).fill(1 - eps)));
  });
}

describe('torchvision parity', () => {
  it('mobilenet_v3_small with torchvision weights gives PyTorch\'s output', async () => {
    const fx = interop('mobilenet_v3_small_eval_opset13');
    const spec = createModel('mobilenet_v3_small', { numClasses: 10 });
    loadFolded(spec.model, decodeModel(fx.bytes).graph);
    const session = await createSession(spec.model, { threads: 1 });
    const out = await session.run({ input: fx.input });
    await session.release();
    expect(out.logits.dims).toEqual([2, 10]);
    // The untrained network's outputs are ~1e-10 (eval-mode BN with fresh statistics): compare relatively.
    const scale = maxAbs(fx.expected.data as Float32Array);
    expect(scale).toBeGreaterThan(0);
    const rel = maxAbsDiff(out.logits.data as Float32Array, fx.expected.data as Float32Array) / scale;
    // Measured 1.3e-6; a wrong hardsigmoid slope (1/5) gives 2e-3.
    expect(rel).toBeLessThan(1e-4);
  });
});
