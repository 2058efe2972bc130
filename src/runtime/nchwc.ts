import { GraphBuilder } from '../onnx/builder.ts';
import { attr, f32, getInt, getInts, getString, i64, type Model, type Node } from '../onnx/ir.ts';
import { inferShapes, type ShapeInfo } from '../onnx/shape-inference.ts';
import { createSession } from './session.ts';

/**
 * Convolutions on onnxruntime's NCHWc kernels when their weights are run-time values.
 *
 * onnxruntime's own NCHWc pass (graph optimisation level "all") rewrites only convs whose weights
 * are constant initializers, so it speeds up inference but not a training step or the evaluation
 * graph, where the weights are fed. Its depthwise kernel vectorises across a block of channels
 * where the plain NCHW Conv runs an im2col and a one-row GEMM per channel: on MobileNetV3-Small's
 * 240-channel 5×5 layer (batch 32, 14×14, 2 threads) 12.1 ms against 2.5 ms with both reorders
 * (bench/engine/depthwise-nchwc.ts). Here each such Conv becomes
 *   ReorderInput(X) → nchwc.Conv(·, W reordered to [C/B, kh, kw, B]) → ReorderOutput(channels C)
 * with the channels padded to a multiple of the block (zero weights, cropped again on the way out).
 * Dense convs (one group) go the same way, their weights reordered to [O/B, C/B, kh, kw, B_in, B_out]
 * each run (ReorderInput and a MatMul with the identity, see `emit`): 3×3 convs of ResNet-18's four
 * stages (batch 32, 2 threads) took 66/50/58/55 ms as NCHW Convs against 45/44/41/45 ms so
 * (bench/engine/conv-nchwc.ts); that applies to the forward convs and to the flipped convs that
 * give dX.
 * The block is 16 channels with AVX-512 and 8 with AVX2; it is probed once per process, and builds
 * without the NCHWc kernels (not x86-64) leave graphs as they are.
 */

export const NCHWC_DOMAIN = 'com.microsoft.nchwc';

let probed: Promise<number | null> | undefined;

/** Channels per NCHWc block on this machine, or null where onnxruntime has no NCHWc kernels. */
export function nchwcBlockSize(): Promise<number | null> {
  probed ??= probe();
  return probed;
}

async function probe(): Promise<number | null> {
  const b = new GraphBuilder();
  // ReorderInput takes channels in multiples of 4 and pads them to the block
  b.input('x', 'float32', [1, 4, 1, 1]);
  const y = b.op('ReorderInput', ['x']);
  b.graph.nodes[b.graph.nodes.length - 1].domain = NCHWC_DOMAIN;
  b.output(y, 'float32');
  const model = b.toModel();
  model.opsetImports.push({ domain: NCHWC_DOMAIN, version: 1 });
  try {
    const s = await createSession(model, { threads: 1, graphOptimization: 'basic' });
    try {
      const out = (await s.run({ x: f32([1, 4, 1, 1], [1, 2, 3, 4]) }))[y];
      const block = out.dims[1];
      return block === 8 || block === 16 ? block : null;
    } finally {
      await s.release();
    }
  } catch {
    return null;
  }
}

interface Depthwise {
  kind: 'depthwise';
  channels: number;
  kernel: [number, number];
}

interface Dense {
  kind: 'dense';
  channels: number;
  outChannels: number;
  kernel: [number, number];
}

/**
 * Dense convs whose kernel is larger than this are left alone: they are weight gradients in the
 * convolution form (rules/conv.ts), whose "kernel" is an activation map.
 */
const DENSE_MAX_KERNEL = 7;

/** A plain 2-D Conv's static geometry (weights [O, C/group, kh, kw], C input channels; whether X is one position), or null. */
function staticConv(node: Node, shapes: Map<string, ShapeInfo>, model: Model): { group: number; o: number; perGroup: number; c: number; kh: number; kw: number; onePosition: boolean } | null {
  if (node.opType !== 'Conv' || (node.domain ?? '') !== '' || getString(node, 'auto_pad', 'NOTSET') !== 'NOTSET') return null;
  const w = model.graph.initializers.get(node.inputs[1])?.dims ?? shapes.get(node.inputs[1])?.shape;
  const x = shapes.get(node.inputs[0])?.shape;
  if (!w || w.length !== 4 || !x || x.length !== 4) return null;
  const [o, perGroup, kh, kw] = w;
  const [, c, h, wd] = x;
  if (typeof o !== 'number' || typeof perGroup !== 'number' || typeof kh !== 'number' || typeof kw !== 'number' || typeof c !== 'number') return null;
  const onePosition = typeof h === 'number' && typeof wd === 'number' && h * wd <= 1;
  return { group: getInt(node, 'group', 1), o, perGroup, c, kh, kw, onePosition };
}

/** One input channel per group and as many outputs as groups; channels a multiple of 4 (ReorderInput's own condition). */
function depthwiseOf(node: Node, shapes: Map<string, ShapeInfo>, model: Model): Depthwise | null {
  const g = staticConv(node, shapes, model);
  if (!g || g.group < 2 || g.o !== g.group || g.perGroup !== 1 || g.c !== g.group || g.group % 4 !== 0) return null;
  return { kind: 'depthwise', channels: g.group, kernel: [g.kh, g.kw] };
}

/**
 * Below this many input channels (RGB or grey stems) the NCHWc kernel reads X as NCHW itself, no
 * ReorderInput, with the weights as [O/B, C, kh, kw, B_out]: ResNet-18's 3→64 7×7/2 stem (batch
 * 32, 224 px, 2 threads) 48.4 → 40.1 ms, MobileNetV3-Small's 3→16 3×3/2 6.3 → 3.9 ms.
 */
const STEM_MAX_CHANNELS = 4;

/**
 * Ungrouped, input channels a multiple of 4 (ReorderInput's condition) or fewer than 4, a kernel
 * of at most DENSE_MAX_KERNEL, and not 1×1 stride 1: that is one GEMM for the plain Conv already,
 * with no im2col to save, and on MobileNetV3's pointwise convs (24, 40, 72, 88, 120 channels padded
 * to the block) the NCHWc form measured no faster. Strided 1×1 convs (ResNet's downsampling) gain.
 */
function denseOf(node: Node, shapes: Map<string, ShapeInfo>, model: Model): Dense | null {
  const g = staticConv(node, shapes, model);
  if (!g || g.group !== 1 || g.perGroup !== g.c || (g.c % 4 !== 0 && g.c >= STEM_MAX_CHANNELS) || g.kh > DENSE_MAX_KERNEL || g.kw > DENSE_MAX_KERNEL) return null;
  if (g.kh * g.kw === 1 && (getInts(node, 'strides') ?? [1, 1]).every((v) => v === 1)) return null;
  // a map of one position (a late stage on a small input) is left to the plain Conv
  if (g.onePosition) return null;
  return { kind: 'dense', channels: g.c, outChannels: g.o, kernel: [g.kh, g.kw] };
}

/** `identity()`: the block×block identity initializer, made once per graph on first use. */
function emit(b: GraphBuilder, node: Node, d: Depthwise | Dense, block: number, identity: () => string): void {
  const pad = (n: number) => Math.ceil(n / block) * block;
  const [kh, kw] = d.kernel;
  const ints = (v: number[]) => b.initializer(b.fresh(`${node.name}_nchwc_shape`), i64([v.length], v));
  const nchwc = (opType: string, inputs: string[], attrs: Node['attrs'], output?: string): string => {
    const [out] = b.opN(opType, inputs, attrs, output ? [output] : 1, `${node.name}_nchwc_${opType}`);
    b.graph.nodes[b.graph.nodes.length - 1].domain = NCHWC_DOMAIN;
    return out;
  };
  const [x, w, bias = ''] = node.inputs;
  // Output channels (and the weights' first axis) padded to the block with zeros, cropped on the way out.
  const outChannels = d.kind === 'depthwise' ? d.channels : d.outChannels;
  const outPadded = pad(outChannels);
  let wr: string;
  // zero filters up to outPadded, and (dense) zero input channels up to inPadded
  const padWeights = (inExtra = 0) => (outPadded > outChannels || inExtra > 0 ? b.op('Pad', [w, ints([0, 0, 0, 0, outPadded - outChannels, inExtra, 0, 0])]) : w);
  if (d.kind === 'depthwise') {
    const wPadded = padWeights();
    // [C, 1, kh, kw] → [C/B, B, kh, kw] → [C/B, kh, kw, B], read back as [C, 1, kh, kw]
    const blocked = b.op('Transpose', [b.op('Reshape', [wPadded, ints([outPadded / block, block, kh, kw])])], { perm: attr.ints([0, 2, 3, 1]) });
    wr = b.op('Reshape', [blocked, ints([outPadded, 1, kh, kw])]);
  } else if (d.channels < STEM_MAX_CHANNELS) {
    const wPadded = padWeights();
    // [O, C, kh, kw] → [O/B, B_out, C, kh, kw] → [O/B, C, kh, kw, B_out], read back as [O, C, kh, kw]
    const five = b.op('Reshape', [wPadded, ints([outPadded / block, block, d.channels, kh, kw])]);
    wr = b.op('Reshape', [b.op('Transpose', [five], { perm: attr.ints([0, 2, 3, 4, 1]) }), ints([outPadded, d.channels, kh, kw])]);
  } else {
    const inPadded = pad(d.channels);
    const wPadded = padWeights(inPadded - d.channels);
    // To [O/B, C/B, kh, kw, B_in, B_out], read back as [O, C, kh, kw]: ReorderInput blocks the input
    // channels of W read as [O, C, kh·kw, 1] ([O/B, B_out, C/B, kh·kw, B_in] in memory), then a
    // MatMul per output block with the B×B identity moves B_out innermost: [O/B, B_out, K]ᵀ · I =
    // [O/B, K, B_out], K = C·kh·kw; onnxruntime fuses the Transpose into the GEMM. The 6-D Transpose
    // this replaces runs element by element on one thread (512×512×3×3: 11.6 against 7.0 ms);
    // ResNet-18's step −3.5 % and −6.7 % (two A/Bs). Exact for finite weights (each output is one
    // weight times 1 plus zeros). Its peak stayed under PyTorch's only once the stem's ReLU ran
    // after the pool (training/pool-before-relu.ts): alone it grew the arena by ~250 MB.
    const [blocked] = b.opN('ReorderInput', [b.op('Reshape', [wPadded, ints([outPadded, inPadded, kh * kw, 1])])], {}, 1, `${node.name}_nchwc_weights_ReorderInput`);
    b.graph.nodes[b.graph.nodes.length - 1].domain = NCHWC_DOMAIN;
    const rows = b.op('Reshape', [blocked, ints([outPadded / block, block, inPadded * kh * kw])]);
    const moved = b.op('MatMul', [b.op('Transpose', [rows], { perm: attr.ints([0, 2, 1]) }), identity()]);
    wr = b.op('Reshape', [moved, ints([outPadded, inPadded, kh, kw])]);
  }
  const br = bias !== '' && outPadded > outChannels ? b.op('Pad', [bias, ints([0, outPadded - outChannels])]) : bias;
  const input = d.kind === 'dense' && d.channels < STEM_MAX_CHANNELS ? x : nchwc('ReorderInput', [x], {});
  const conv = nchwc('Conv', [input, wr, ...(br !== '' ? [br] : [])], {
    kernel_shape: attr.ints([kh, kw]),
    strides: attr.ints(getInts(node, 'strides') ?? [1, 1]),
    pads: attr.ints(getInts(node, 'pads') ?? [0, 0, 0, 0]),
    dilations: attr.ints(getInts(node, 'dilations') ?? [1, 1]),
    group: attr.int(d.kind === 'depthwise' ? outPadded : 1),
  });
  nchwc('ReorderOutput', [conv], { channels: attr.int(outChannels) }, node.outputs[0]);
}

/**
 * Rewrites the depthwise and dense Convs of `model` (see the header) in place, each at its own
 * position in the node list, its output keeping its name (`dense: false`: the depthwise ones only).
 * Returns how many of each were rewritten.
 */
export function lowerConvsToNchwc(model: Model, block: number, opts: { dense?: boolean } = {}): { depthwise: number; dense: number } {
  const g = model.graph;
  const shapes = inferShapes(g);
  const b = new GraphBuilder(g);
  let eye: string | undefined;
  const identity = () => (eye ??= b.initializer(b.fresh('nchwc_identity'), f32([block, block], Float32Array.from({ length: block * block }, (_, i) => (i % (block + 1) === 0 ? 1 : 0)))));
  const nodes: Node[] = [];
  const count = { depthwise: 0, dense: 0 };
  for (const node of [...g.nodes]) {
    const d = depthwiseOf(node, shapes, model) ?? (opts.dense === false ? null : denseOf(node, shapes, model));
    if (!d) {
      nodes.push(node);
      continue;
    }
    const start = g.nodes.length;
    emit(b, node, d, block, identity);
    nodes.push(...g.nodes.splice(start));
    count[d.kind] += 1;
  }
  g.nodes.splice(0, g.nodes.length, ...nodes);
  if (count.depthwise + count.dense > 0 && !model.opsetImports.some((o) => o.domain === NCHWC_DOMAIN)) model.opsetImports.push({ domain: NCHWC_DOMAIN, version: 1 });
  return count;
}
