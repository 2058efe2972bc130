import { backward, decomposeBatchNormForTraining, RULES } from '../autodiff/index.ts';
import { AppError, badInput } from '../kernel/errors.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { attr, type DataType, getFloat, getInt, getInts, getString, type Graph, type Model, type Node, type TensorData, WRITE_OPSET } from '../onnx/ir.ts';
import { dtypeFromOnnx } from '../onnx/dtypes.ts';
import { inferShapes, SHAPE_OPS } from '../onnx/shape-inference.ts';
import { valueNames } from './graph-edit.ts';

/**
 * Opset upgrade of an imported ONNX graph: every node is rewritten from the form its op had at the
 * file's opset (7–21) into the form at WRITE_OPSET (17), as the ONNX operator changelog and the
 * ONNX version converter's adapters define, so that the graph trains with the engine's opset-17
 * rules (and the step graph, whose own nodes are opset-17 forms, is valid). Attributes that became
 * inputs become int64/float initializers; semantics that changed (Softmax's 2-D coercion before
 * 13, Upsample → Resize, Resize-10's coordinates) are rewritten to compute the same values. Ops
 * whose form did not change between the file's opset and 17 are kept as they are. What cannot be
 * expressed at 17 is refused with UNSUPPORTED_OP naming the op, the node and the file's opset;
 * `assertTrainable` then refuses what the engine could not train. plan/engine.md "Importing older
 * (and newer) opsets" lists every rewrite.
 */

/** The oldest default-domain opset an import accepts (the ONNX model zoo's oldest files are 7). */
export const MIN_IMPORT_OPSET = 7;
/** The newest the codec reads. */
export const MAX_IMPORT_OPSET = 21;

const isDefault = (domain: string | undefined) => domain === undefined || domain === '' || domain === 'ai.onnx';

/** The model's default-domain opset; refuses versions outside MIN_IMPORT_OPSET..MAX_IMPORT_OPSET. */
export function defaultOpset(m: Model): number {
  const entries = m.opsetImports.filter((o) => isDefault(o.domain));
  if (entries.length === 0) throw badInput('the model declares no default-domain (ai.onnx) opset');
  const version = Math.max(...entries.map((o) => o.version));
  if (version < MIN_IMPORT_OPSET) {
    throw new AppError('UNSUPPORTED_OP', `the model uses opset ${version}; imports need opset ${MIN_IMPORT_OPSET} or later (re-export it with a newer opset, or convert it with onnx.version_converter)`);
  }
  if (version > MAX_IMPORT_OPSET) throw new AppError('UNSUPPORTED_OP', `the model uses opset ${version}; imports read opsets ${MIN_IMPORT_OPSET}–${MAX_IMPORT_OPSET}`);
  return version;
}

/** Default-domain ops introduced after opset 17 that have no opset-17 form here (Gelu is written out). */
const NEWER_THAN_17: ReadonlySet<string> = new Set([
  'BitwiseAnd', 'BitwiseNot', 'BitwiseOr', 'BitwiseXor', 'CenterCropPad', 'Col2Im', 'GroupNormalization', 'Mish',
  'DeformConv', 'AffineGrid', 'ImageDecoder', 'RegexFullMatch', 'StringConcat', 'StringSplit',
]);

/** Clip-6's default min (and, negated, max): the lowest float32. */
const FLOAT_MIN = -3.4028234663852886e38;

class Upgrader {
  private readonly taken: Set<string>;
  /** Softmax-family nodes whose axis must be re-expressed (they need ranks, known after the others). */
  private readonly coerced: Node[] = [];
  /** Resize nodes made from Upsample/Resize-10 in nearest mode: their rounding depends on the scales. */
  private readonly nearest: Node[] = [];

  constructor(private readonly g: Graph, private readonly opset: number) {
    this.taken = valueNames(g);
    for (const n of g.nodes) this.taken.add(n.name);
  }

  fresh(prefix: string): string {
    let name = prefix;
    for (let i = 1; this.taken.has(name); i++) name = `${prefix}_${i}`;
    this.taken.add(name);
    return name;
  }

  constant(owner: Node, what: string, t: TensorData): string {
    const name = this.fresh(`${owner.name || owner.opType}.${what}`);
    this.g.initializers.set(name, t);
    return name;
  }

  ints(owner: Node, what: string, values: number[]): string {
    return this.constant(owner, what, { dtype: 'int64', dims: [values.length], data: BigInt64Array.from(values.map((v) => BigInt(v))) });
  }

  /** A float32 scalar: the images' tensors (the import takes only float32 inputs). */
  scalar(owner: Node, what: string, value: number): string {
    return this.constant(owner, what, { dtype: 'float32', dims: [], data: Float32Array.of(value) });
  }

  refuse(n: Node, why: string): AppError {
    return new AppError('UNSUPPORTED_OP', `op ${n.opType} (node '${n.name}') at opset ${this.opset}: ${why}`);
  }

  /** The constant float values of `name` (an initializer), or undefined. */
  floatsOf(name: string | undefined): number[] | undefined {
    const t = name ? this.g.initializers.get(name) : undefined;
    if (!t || (t.dtype !== 'float32' && t.dtype !== 'float64')) return undefined;
    return Array.from(t.data as Float32Array | Float64Array);
  }

  /**
   * Attributes to inputs first; then constant subgraphs are folded (torch's exports compute pads
   * and scales with small Shape/Concat/Slice chains when not folded), so that what depends on
   * constant values (nearest rounding) and on ranks (Softmax coercion) sees them.
   */
  run(): void {
    if (this.opset > WRITE_OPSET) {
      this.runDowngrade();
      return;
    }
    const consumed = new Set(this.g.nodes.flatMap((n) => n.inputs));
    for (const n of this.g.nodes) {
      if (!isDefault(n.domain)) continue;
      this.upgrade(n, consumed);
    }
    foldConstants(this.g);
    for (const n of this.nearest) this.nearestMode(n);
    if (this.coerced.length > 0) this.coerceAxes();
  }

  private upgrade(n: Node, consumed: Set<string>): void {
    const v = this.opset;
    const a = n.attrs;
    switch (n.opType) {
      case 'Clip':
        // Clip-6: min/max attributes (defaults ±FLT_MAX); Clip-11: optional inputs.
        if (v < 11) {
          const min = a['min'] ? this.scalar(n, 'min', getFloat(n, 'min', FLOAT_MIN)) : '';
          const max = a['max'] ? this.scalar(n, 'max', getFloat(n, 'max', -FLOAT_MIN)) : '';
          n.inputs = max ? [n.inputs[0], min, max] : min ? [n.inputs[0], min] : [n.inputs[0]];
          delete a['min'];
          delete a['max'];
        }
        return;
      case 'Pad':
        // Pad-2: pads and value attributes; Pad-11: pads (int64) and constant_value inputs.
        if (v < 11) {
          const pads = getInts(n, 'pads');
          if (!pads) throw this.refuse(n, 'no pads attribute');
          const mode = getString(n, 'mode', 'constant');
          const value = getFloat(n, 'value', 0);
          n.inputs = [n.inputs[0], this.ints(n, 'pads', pads), ...(mode === 'constant' && value !== 0 ? [this.scalar(n, 'value', value)] : [])];
          delete a['pads'];
          delete a['value'];
        }
        return;
      case 'Squeeze':
      case 'Unsqueeze':
        // Squeeze/Unsqueeze-1/11: axes attribute; 13: axes input (optional for Squeeze).
        if (v < 13) {
          const axes = getInts(n, 'axes');
          if (!axes && n.opType === 'Unsqueeze') throw this.refuse(n, 'no axes attribute');
          n.inputs = axes ? [n.inputs[0], this.ints(n, 'axes', axes)] : [n.inputs[0]];
          delete a['axes'];
        }
        return;
      case 'ReduceSum':
        // ReduceSum-1/11: axes attribute; 13: axes input (the other reductions keep theirs until 18).
        if (v < 13) {
          const axes = getInts(n, 'axes');
          n.inputs = axes ? [n.inputs[0], this.ints(n, 'axes', axes)] : [n.inputs[0]];
          delete a['axes'];
        }
        return;
      case 'Split':
        // Split-2/11: split attribute; 13: split input.
        if (v < 13) {
          const split = getInts(n, 'split');
          n.inputs = split ? [n.inputs[0], this.ints(n, 'split', split)] : [n.inputs[0]];
          delete a['split'];
        }
        return;
      case 'Slice':
        // Slice-1: starts/ends/axes attributes; 10: inputs (and steps).
        if (v < 10) {
          const starts = getInts(n, 'starts');
          const ends = getInts(n, 'ends');
          if (!starts || !ends) throw this.refuse(n, 'no starts/ends attributes');
          const axes = getInts(n, 'axes');
          n.inputs = [n.inputs[0], this.ints(n, 'starts', starts), this.ints(n, 'ends', ends), ...(axes ? [this.ints(n, 'axes', axes)] : [])];
          delete a['starts'];
          delete a['ends'];
          delete a['axes'];
        }
        return;
      case 'Upsample':
        this.upsampleToResize(n);
        return;
      case 'Resize':
        if (v < 11) this.upsampleToResize(n);
        return;
      case 'Softmax':
      case 'LogSoftmax':
      case 'Hardmax':
        // Before 13 the input is coerced to 2-D at `axis` (default 1) and normalized over the
        // flattened trailing dims; from 13 over `axis` alone (default -1).
        if (v < 13) this.coerced.push(n);
        return;
      case 'BatchNormalization':
        // BN-7: spatial (default 1) — 0 normalizes per activation, which BN-9 and later cannot.
        if (getInt(n, 'spatial', 1) !== 1) throw this.refuse(n, 'spatial=0 (per-activation statistics) has no form at opset 9 or later');
        delete a['spatial'];
        delete a['is_test'];
        delete a['consumed_inputs'];
        return;
      case 'Dropout':
        // Dropout-7/10: ratio attribute (default 0.5), mask output float (7) or bool (10);
        // 12: ratio and training_mode inputs.
        if (v < 12) {
          const mask = n.outputs[1] ?? '';
          if (mask !== '' && consumed.has(mask)) {
            if (v < 10) throw this.refuse(n, 'its float mask output is read (a bool mask from opset 10)');
          } else n.outputs = [n.outputs[0]];
          n.inputs = [n.inputs[0], this.scalar(n, 'ratio', getFloat(n, 'ratio', 0.5))];
          delete a['ratio'];
          delete a['is_test'];
        }
        return;
      default:
    }
  }

  /**
   * Opsets 18–21 → 17: constants folded first (axes arrive as inputs), then each changed form
   * back to 17's where it has one (reductions' axes input → attribute, Split's num_outputs →
   * sizes, Pad's axes → full-rank pads, Resize/AveragePool/Cast attributes at their defaults
   * dropped, Gelu written out with Erf or Tanh as torch's opset-17 exports do); refused otherwise.
   */
  private runDowngrade(): void {
    foldConstants(this.g);
    const types = inferShapes(this.g);
    const replaced = new Map<Node, Node[]>();
    for (const n of this.g.nodes) {
      if (!isDefault(n.domain)) continue;
      const out = this.downgrade(n, types);
      if (out) replaced.set(n, out);
    }
    if (replaced.size > 0) this.g.nodes = this.g.nodes.flatMap((n) => replaced.get(n) ?? [n]);
  }

  private intsOf(name: string | undefined): number[] | undefined {
    const t = name ? this.g.initializers.get(name) : undefined;
    if (!t || (t.dtype !== 'int64' && t.dtype !== 'int32')) return undefined;
    return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
  }

  private downgrade(n: Node, types: ReturnType<typeof inferShapes>): Node[] | undefined {
    const a = n.attrs;
    const atDefault = (name: string, value: number | string) => {
      const v = a[name];
      if (v && v.value !== value) throw this.refuse(n, `${name}=${JSON.stringify(v.value)} has no form at opset ${WRITE_OPSET}`);
      delete a[name];
    };
    if (NEWER_THAN_17.has(n.opType)) throw this.refuse(n, `the op has no form at opset ${WRITE_OPSET}`);
    switch (n.opType) {
      case 'ReduceMean':
      case 'ReduceMax':
      case 'ReduceMin':
      case 'ReduceProd':
      case 'ReduceL1':
      case 'ReduceL2':
      case 'ReduceLogSum':
      case 'ReduceLogSumExp':
      case 'ReduceSumSquare': {
        // 18: axes input and noop_with_empty_axes; 13: axes attribute (absent: every axis).
        const noop = getInt(n, 'noop_with_empty_axes', 0) === 1;
        delete a['noop_with_empty_axes'];
        const axes = n.inputs[1] ? this.intsOf(n.inputs[1]) : [];
        if (!axes) throw this.refuse(n, 'axes that are not constant');
        if (axes.length === 0 && noop) return [{ ...n, opType: 'Identity', inputs: [n.inputs[0]], attrs: {} }];
        n.inputs = [n.inputs[0]];
        if (axes.length > 0) a['axes'] = attr.ints(axes);
        return undefined;
      }
      case 'Split': {
        // 18: num_outputs (the last part may be smaller); 13: equal parts or a split input.
        const parts = a['num_outputs'];
        if (!parts) return undefined;
        delete a['num_outputs'];
        const shape = types.get(n.inputs[0])?.shape;
        const axis = getInt(n, 'axis', 0);
        const d = shape?.[axis < 0 ? axis + shape.length : axis];
        if (typeof d !== 'number') return undefined; // equal parts, as 13 splits when sizes are free
        const k = Math.ceil(d / Number(parts.value));
        const sizes = n.outputs.map((_, i) => Math.max(0, Math.min(k, d - i * k)));
        n.inputs = [n.inputs[0], this.ints(n, 'split', sizes)];
        return undefined;
      }
      case 'Pad': {
        // 18: axes input; 19: wrap mode.
        if (getString(n, 'mode', 'constant') === 'wrap') throw this.refuse(n, `mode 'wrap' has no form at opset ${WRITE_OPSET}`);
        const axesName = n.inputs[3] ?? '';
        if (axesName === '') return undefined;
        const axes = this.intsOf(axesName);
        const pads = this.intsOf(n.inputs[1]);
        const rank = types.get(n.inputs[0])?.shape.length;
        if (!axes || !pads || rank === undefined) throw this.refuse(n, 'axes or pads that are not constant, or an input of unknown rank');
        const full = new Array<number>(2 * rank).fill(0);
        axes.forEach((ax, i) => {
          const k = ax < 0 ? ax + rank : ax;
          full[k] = pads[i];
          full[k + rank] = pads[i + axes.length];
        });
        n.inputs = [n.inputs[0], this.ints(n, 'pads', full), n.inputs[2] ?? ''];
        if (n.inputs[2] === '') n.inputs.pop();
        return undefined;
      }
      case 'Resize':
        // 18: antialias, axes, keep_aspect_ratio_policy; 19: half_pixel_symmetric.
        atDefault('antialias', 0);
        atDefault('keep_aspect_ratio_policy', 'stretch');
        if (a['axes']) throw this.refuse(n, `axes has no form at opset ${WRITE_OPSET}`);
        if (getString(n, 'coordinate_transformation_mode', 'half_pixel') === 'half_pixel_symmetric') {
          throw this.refuse(n, `coordinate_transformation_mode 'half_pixel_symmetric' has no form at opset ${WRITE_OPSET}`);
        }
        return undefined;
      case 'AveragePool': {
        // 19: dilations.
        const dil = getInts(n, 'dilations');
        if (dil && dil.some((v) => v !== 1)) throw this.refuse(n, `dilations have no form at opset ${WRITE_OPSET}`);
        delete a['dilations'];
        return undefined;
      }
      case 'Cast':
      case 'CastLike':
        // 19: saturate, which only float8 targets read.
        delete a['saturate'];
        return undefined;
      case 'Gelu':
        return this.gelu(n);
      default:
        return undefined;
    }
  }

  /** Gelu-20 as torch's opset-17 exports write it: x·½·(1 + erf(x/√2)), or the tanh form. */
  private gelu(n: Node): Node[] {
    const [x] = n.inputs;
    const [y] = n.outputs;
    const base = n.name || 'Gelu';
    const v = (what: string) => this.fresh(`${base}.${what}`);
    const node = (opType: string, inputs: string[], output: string): Node => ({ name: this.fresh(`${base}.${opType}`), opType, inputs, outputs: [output], attrs: {} });
    const half = this.scalar(n, 'half', 0.5);
    const one = this.scalar(n, 'one', 1);
    const [inner, t, onePlus, xHalf] = [v('inner'), v('t'), v('one_plus'), v('x_half')];
    const nodes: Node[] = [];
    if (getString(n, 'approximate', 'none') === 'tanh') {
      const [sq, cube, poly, sum] = [v('sq'), v('cube'), v('poly'), v('sum')];
      nodes.push(
        node('Mul', [x, x], sq),
        node('Mul', [sq, x], cube),
        node('Mul', [cube, this.scalar(n, 'c', 0.044715)], poly),
        node('Add', [x, poly], sum),
        node('Mul', [sum, this.scalar(n, 'k', Math.sqrt(2 / Math.PI))], inner),
        node('Tanh', [inner], t),
      );
    } else {
      nodes.push(node('Mul', [x, this.scalar(n, 'rsqrt2', Math.SQRT1_2)], inner), node('Erf', [inner], t));
    }
    nodes.push(node('Add', [t, one], onePlus), node('Mul', [x, half], xHalf), node('Mul', [xHalf, onePlus], y));
    return nodes;
  }

  /**
   * Upsample-7 (scales attribute), Upsample-9 and Resize-10 (scales input) → Resize-13. All three
   * map output coordinate o to input o / scale ("asymmetric"); nearest takes that coordinate's
   * integer part when upsampling and rounds it up when downsampling (onnxruntime's rule for these
   * versions), which is nearest_mode floor or ceil. Linear (bilinear) interpolates there.
   */
  private upsampleToResize(n: Node): void {
    const rawMode = getString(n, 'mode', 'nearest');
    const mode = rawMode === 'bilinear' || rawMode === 'trilinear' ? 'linear' : rawMode;
    if (mode !== 'nearest' && mode !== 'linear') throw this.refuse(n, `mode '${rawMode}'`);
    let scales: string;
    if (n.opType === 'Upsample' && n.inputs.length < 2) {
      const s = n.attrs['scales'];
      if (!s || s.kind !== 'floats') throw this.refuse(n, 'no scales');
      scales = this.constant(n, 'scales', { dtype: 'float32', dims: [s.value.length], data: Float32Array.from(s.value) });
    } else scales = n.inputs[1];
    n.opType = 'Resize';
    n.inputs = [n.inputs[0], '', scales];
    n.attrs = { mode: attr.string(mode), coordinate_transformation_mode: attr.string('asymmetric') };
    if (mode === 'nearest') this.nearest.push(n);
  }

  private nearestMode(n: Node): void {
    const values = this.floatsOf(n.inputs[2]);
    if (!values) throw this.refuse(n, 'nearest mode with scales that are not constant (its rounding depends on them)');
    if (values.every((s) => s >= 1)) n.attrs['nearest_mode'] = attr.string('floor');
    else if (values.every((s) => s <= 1)) n.attrs['nearest_mode'] = attr.string('ceil');
    else throw this.refuse(n, `nearest mode with scales [${values.join(', ')}] both above and below 1`);
  }

  /**
   * Softmax/LogSoftmax/Hardmax before opset 13 on input rank r at axis k: where k is the last axis
   * the two definitions agree (axis -1); otherwise Flatten(k) → op over axis 1 → Reshape back to
   * the input's shape, as the version converter's Softmax 12→13 adapter does.
   */
  private coerceAxes(): void {
    const types = inferShapes(this.g);
    const out: Node[] = [];
    const todo = new Set(this.coerced);
    for (const n of this.g.nodes) {
      if (!todo.has(n)) {
        out.push(n);
        continue;
      }
      const axis = getInt(n, 'axis', 1);
      const rank = types.get(n.inputs[0])?.shape.length;
      if (rank !== undefined && (axis === rank - 1 || axis === -1)) {
        n.attrs = { ...n.attrs, axis: attr.int(-1) };
        out.push(n);
        continue;
      }
      const base = n.name || n.opType;
      const flat = this.fresh(`${base}.flat`);
      const inner = this.fresh(`${base}.2d`);
      const shape = this.fresh(`${base}.shape`);
      const [x] = n.inputs;
      const [y] = n.outputs;
      out.push(
        { name: this.fresh(`${base}.flatten`), opType: 'Flatten', inputs: [x], outputs: [flat], attrs: { axis: attr.int(axis) } },
        { ...n, inputs: [flat], outputs: [inner], attrs: { ...n.attrs, axis: attr.int(1) } },
        { name: this.fresh(`${base}.shape_of`), opType: 'Shape', inputs: [x], outputs: [shape], attrs: {} },
        { name: this.fresh(`${base}.reshape`), opType: 'Reshape', inputs: [inner, shape], outputs: [y], attrs: {} },
      );
    }
    this.g.nodes = out;
  }
}

/**
 * Rewrites the default-domain nodes of `g` (a graph of a model at default-domain opset `opset`) in
 * place into their form at WRITE_OPSET: opsets 7–12 upgraded, 18–21 brought back. Graphs at 13–17
 * only have their constant subgraphs folded (the ops a model uses changed between 13 and 17 only
 * by gaining types; BatchNormalization's training form is normalised by the import).
 */
export function upgradeGraph(g: Graph, opset: number): void {
  if (opset < MIN_IMPORT_OPSET) throw new AppError('UNSUPPORTED_OP', `the model uses opset ${opset}; imports need opset ${MIN_IMPORT_OPSET} or later`);
  // 'ai.onnx' is the default domain's other name; the engine knows it as ''.
  for (const n of g.nodes) if (n.domain === 'ai.onnx') delete n.domain;
  if (opset >= 13 && opset <= WRITE_OPSET) foldConstants(g);
  else new Upgrader(g, opset).run();
}

/**
 * Refuses, at import, a backbone the training step could not be built for: a node outside the
 * default domain, an op without a gradient rule or a shape rule, a Dropout whose ratio is not a
 * constant, and anything the gradient rules themselves refuse (found by differentiating a copy
 * of the graph with every parameter trainable and every batch norm in training mode, as a run
 * does). `opset` is the file's own, named in the message.
 */
export function assertTrainable(model: Model, params: string[], opset: number): void {
  const g = model.graph;
  const where = (n: Node) => `op ${isDefault(n.domain) ? '' : `${n.domain}.`}${n.opType} (node '${n.name}') at opset ${opset}`;
  for (const n of g.nodes) {
    if (!isDefault(n.domain)) throw new AppError('UNSUPPORTED_OP', `${where(n)} cannot be trained: only ai.onnx ops can`);
    if (!(n.opType in RULES)) throw new AppError('UNSUPPORTED_OP', `${where(n)} cannot be trained: the engine has no gradient rule for it`);
    if (!SHAPE_OPS.has(n.opType)) throw new AppError('UNSUPPORTED_OP', `${where(n)} cannot be trained: the engine has no shape rule for it`);
  }
  const types = inferShapes(g, { strict: true });
  for (const n of g.nodes) {
    if (n.opType !== 'Dropout') continue;
    const ratio = n.inputs[1] ? g.initializers.get(n.inputs[1]) : undefined;
    if (n.inputs[1] && (!ratio || ratio.data.length !== 1 || (ratio.dtype !== 'float32' && ratio.dtype !== 'float64'))) {
      throw new AppError('UNSUPPORTED_OP', `${where(n)} cannot be trained: its ratio is not a constant float scalar`);
    }
    const shape = types.get(n.inputs[0])?.shape;
    if (!shape || shape.slice(1).some((d) => typeof d !== 'number')) {
      throw new AppError('UNSUPPORTED_OP', `${where(n)} cannot be trained: the shape of its input is not known past the batch axis`);
    }
  }
  // A dry run of the step's backward pass.
  const graph: Graph = {
    ...g,
    nodes: g.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } })),
    inputs: g.inputs.map((v) => ({ ...v })),
    outputs: g.outputs.map((v) => ({ ...v })),
    initializers: new Map(g.initializers),
    valueInfo: [],
  };
  const b = new GraphBuilder(graph);
  for (const p of params) {
    const t = graph.initializers.get(p)!;
    graph.initializers.delete(p);
    graph.inputs.push({ name: p, dtype: t.dtype, shape: [...t.dims] });
  }
  for (const n of graph.nodes) if (n.opType === 'BatchNormalization') n.attrs['training_mode'] = attr.int(1);
  try {
    decomposeBatchNormForTraining(b);
    const loss = b.op('ReduceSum', [graph.outputs[0].name], { keepdims: attr.int(0) });
    backward(b, { loss, wrt: params });
  } catch (e) {
    if (e instanceof AppError && (e.code === 'UNSUPPORTED_OP' || e.code === 'BAD_INPUT')) {
      throw new AppError('UNSUPPORTED_OP', `the model (opset ${opset}) cannot be trained: ${e.message}`);
    }
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Constant folding of small tensors (opset-17 forms).

/** Folded values larger than this stay computed (this is for shape arithmetic, not weights). */
const FOLD_MAX_ELEMENTS = 4096;

interface Val {
  dtype: DataType;
  dims: number[];
  data: number[];
}

const FOLD_DTYPES: ReadonlySet<DataType> = new Set(['float32', 'float64', 'int64', 'int32', 'int8', 'uint8', 'bool']);
const INT64_MAX = 9223372036854775807n;

function toVal(t: TensorData | undefined): Val | undefined {
  if (!t || !FOLD_DTYPES.has(t.dtype) || t.data.length > FOLD_MAX_ELEMENTS) return undefined;
  return { dtype: t.dtype, dims: [...t.dims], data: Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v)) };
}

function fromVal(v: Val): TensorData {
  const d = v.data;
  switch (v.dtype) {
    case 'float32': return { dtype: v.dtype, dims: v.dims, data: Float32Array.from(d) };
    case 'float64': return { dtype: v.dtype, dims: v.dims, data: Float64Array.from(d) };
    case 'int32': return { dtype: v.dtype, dims: v.dims, data: Int32Array.from(d) };
    case 'int8': return { dtype: v.dtype, dims: v.dims, data: Int8Array.from(d) };
    case 'uint8':
    case 'bool': return { dtype: v.dtype, dims: v.dims, data: Uint8Array.from(d) };
    default: {
      // Clamped: INT64_MAX as a double is 2^63, which would wrap.
      const big = d.map((x) => (x >= 2 ** 63 ? INT64_MAX : x <= -(2 ** 63) ? -INT64_MAX - 1n : BigInt(Math.trunc(x))));
      return { dtype: 'int64', dims: v.dims, data: BigInt64Array.from(big) };
    }
  }
}

const size = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
const stridesOf = (dims: number[]) => {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1] * dims[i + 1];
  return s;
};
const norm = (a: number, rank: number) => (a < 0 ? a + rank : a);
const isInt = (t: DataType) => t !== 'float32' && t !== 'float64';

/** Visits every multi-index of `dims` in row-major order. */
function eachIndex(dims: number[], f: (idx: number[], flat: number) => void): void {
  const n = size(dims);
  const idx = new Array<number>(dims.length).fill(0);
  for (let k = 0; k < n; k++) {
    f(idx, k);
    for (let a = dims.length - 1; a >= 0; a--) {
      if (++idx[a] < dims[a]) break;
      idx[a] = 0;
    }
  }
}

function broadcast(a: Val, b: Val, f: (x: number, y: number) => number, dtype = a.dtype): Val | undefined {
  const rank = Math.max(a.dims.length, b.dims.length);
  const pa = [...new Array<number>(rank - a.dims.length).fill(1), ...a.dims];
  const pb = [...new Array<number>(rank - b.dims.length).fill(1), ...b.dims];
  if (pa.some((d, i) => d !== pb[i] && d !== 1 && pb[i] !== 1)) return undefined;
  const dims = pa.map((d, i) => Math.max(d, pb[i]));
  const sa = stridesOf(pa);
  const sb = stridesOf(pb);
  const data: number[] = [];
  eachIndex(dims, (idx) => {
    let ia = 0;
    let ib = 0;
    for (let i = 0; i < rank; i++) {
      if (pa[i] !== 1) ia += idx[i] * sa[i];
      if (pb[i] !== 1) ib += idx[i] * sb[i];
    }
    data.push(f(a.data[ia], b.data[ib]));
  });
  return { dtype, dims, data };
}

/** Output values of node `n` from constant inputs, or undefined when it is not folded. */
function evaluate(n: Node, ins: (Val | undefined)[]): Val | undefined {
  const [x, y] = ins;
  const ints = (v: Val | undefined) => v?.data;
  switch (n.opType) {
    case 'Identity':
      return x;
    case 'Cast': {
      const to = dtypeFromOnnx(getInt(n, 'to', 1));
      if (!x || !to || !FOLD_DTYPES.has(to)) return undefined;
      const conv = (v: number) => (to === 'bool' ? (v !== 0 ? 1 : 0) : isInt(to) ? Math.trunc(v) : to === 'float32' ? Math.fround(v) : v);
      return { dtype: to, dims: x.dims, data: x.data.map(conv) };
    }
    case 'Shape': {
      if (!x) return undefined;
      const r = x.dims.length;
      const clamp = (a: number) => Math.min(Math.max(norm(a, r), 0), r);
      const dims = x.dims.slice(clamp(getInt(n, 'start', 0)), clamp(getInt(n, 'end', r)));
      return { dtype: 'int64', dims: [dims.length], data: dims };
    }
    case 'ConstantOfShape': {
      const shape = ints(x);
      if (!shape || size(shape) > FOLD_MAX_ELEMENTS) return undefined;
      const v = n.attrs['value'];
      const fill = v?.kind === 'tensor' ? toVal(v.value) : { dtype: 'float32' as DataType, dims: [1], data: [0] };
      if (!fill) return undefined;
      return { dtype: fill.dtype, dims: [...shape], data: new Array<number>(size(shape)).fill(fill.data[0]) };
    }
    case 'Unsqueeze': {
      const axes = ints(y);
      if (!x || !axes) return undefined;
      const r = x.dims.length + axes.length;
      const at = new Set(axes.map((a) => norm(a, r)));
      const dims: number[] = [];
      for (let i = 0, k = 0; i < r; i++) dims.push(at.has(i) ? 1 : x.dims[k++]);
      return { ...x, dims };
    }
    case 'Squeeze': {
      if (!x) return undefined;
      const axes = y ? ints(y)!.map((a) => norm(a, x.dims.length)) : x.dims.flatMap((d, i) => (d === 1 ? [i] : []));
      return { ...x, dims: x.dims.filter((_, i) => !axes.includes(i)) };
    }
    case 'Reshape': {
      const shape = ints(y);
      if (!x || !shape || getInt(n, 'allowzero', 0) !== 0) return undefined;
      const dims = shape.map((d, i) => (d === 0 ? x.dims[i] : d));
      const known = size(dims.filter((d) => d !== -1));
      return { ...x, dims: dims.map((d) => (d === -1 ? x.data.length / known : d)) };
    }
    case 'Flatten': {
      if (!x) return undefined;
      const axis = norm(getInt(n, 'axis', 1), x.dims.length);
      return { ...x, dims: [size(x.dims.slice(0, axis)), size(x.dims.slice(axis))] };
    }
    case 'Transpose': {
      if (!x) return undefined;
      const r = x.dims.length;
      const perm = getInts(n, 'perm') ?? Array.from({ length: r }, (_, i) => r - 1 - i);
      const dims = perm.map((p) => x.dims[p]);
      const st = stridesOf(x.dims);
      const data: number[] = [];
      eachIndex(dims, (idx) => data.push(x.data[idx.reduce((acc, v, i) => acc + v * st[perm[i]], 0)]));
      return { dtype: x.dtype, dims, data };
    }
    case 'Concat': {
      if (ins.some((v) => !v)) return undefined;
      const vals = ins as Val[];
      const r = vals[0].dims.length;
      const axis = norm(getInt(n, 'axis', 0), r);
      const outer = size(vals[0].dims.slice(0, axis));
      const data: number[] = [];
      for (let o = 0; o < outer; o++) {
        for (const v of vals) {
          const chunk = size(v.dims.slice(axis));
          data.push(...v.data.slice(o * chunk, (o + 1) * chunk));
        }
      }
      const dims = [...vals[0].dims];
      dims[axis] = vals.reduce((acc, v) => acc + v.dims[axis], 0);
      return { dtype: vals[0].dtype, dims, data };
    }
    case 'Gather': {
      const idx = y;
      if (!x || !idx) return undefined;
      const axis = norm(getInt(n, 'axis', 0), x.dims.length);
      const outer = size(x.dims.slice(0, axis));
      const inner = size(x.dims.slice(axis + 1));
      const data: number[] = [];
      for (let o = 0; o < outer; o++) {
        for (const i of idx.data) {
          const k = norm(i, x.dims[axis]);
          data.push(...x.data.slice((o * x.dims[axis] + k) * inner, (o * x.dims[axis] + k + 1) * inner));
        }
      }
      return { dtype: x.dtype, dims: [...x.dims.slice(0, axis), ...idx.dims, ...x.dims.slice(axis + 1)], data };
    }
    case 'Slice': {
      const [, s, e, ax, st] = ins;
      if (!x || !s || !e || (n.inputs[3] && !ax) || (n.inputs[4] && !st)) return undefined;
      const r = x.dims.length;
      const starts = new Array<number>(r).fill(0);
      const steps = new Array<number>(r).fill(1);
      const ends = [...x.dims];
      const axes = ax ? ax.data.map((a) => norm(a, r)) : s.data.map((_, i) => i);
      if (st?.data.includes(0)) return undefined;
      axes.forEach((a, i) => {
        const d = x.dims[a];
        const step = st ? st.data[i] : 1;
        const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + d : v, lo), hi);
        starts[a] = step > 0 ? clamp(s.data[i], 0, d) : clamp(s.data[i], 0, d - 1);
        ends[a] = step > 0 ? clamp(e.data[i], 0, d) : clamp(e.data[i], -1, d - 1);
        steps[a] = step;
      });
      const dims = x.dims.map((_, a) => Math.max(0, Math.ceil((ends[a] - starts[a]) / steps[a])));
      const stx = stridesOf(x.dims);
      const data: number[] = [];
      eachIndex(dims, (idx) => data.push(x.data[idx.reduce((acc, v, a) => acc + (starts[a] + v * steps[a]) * stx[a], 0)]));
      return { dtype: x.dtype, dims, data };
    }
    case 'Range': {
      const [start, limit, delta] = ins.map((v) => v?.data[0]);
      if (start === undefined || limit === undefined || delta === undefined || delta === 0 || !x) return undefined;
      const count = Math.max(Math.ceil((limit - start) / delta), 0);
      if (count > FOLD_MAX_ELEMENTS) return undefined;
      return { dtype: x.dtype, dims: [count], data: Array.from({ length: count }, (_, i) => start + i * delta) };
    }
    case 'Neg':
      return x && { ...x, data: x.data.map((v) => -v) };
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div': {
      if (!x || !y || x.dtype !== y.dtype) return undefined;
      const int = isInt(x.dtype);
      const r32 = (v: number) => (x.dtype === 'float32' ? Math.fround(v) : v);
      const f = {
        Add: (a: number, b: number) => r32(a + b),
        Sub: (a: number, b: number) => r32(a - b),
        Mul: (a: number, b: number) => r32(a * b),
        Div: (a: number, b: number) => (int ? Math.trunc(a / b) : r32(a / b)),
      }[n.opType];
      return broadcast(x, y, f);
    }
    default:
      return undefined;
  }
}

const FOLDABLE: ReadonlySet<string> = new Set(['Identity', 'Cast', 'Shape', 'ConstantOfShape', 'Unsqueeze', 'Squeeze', 'Reshape', 'Flatten',
  'Transpose', 'Concat', 'Gather', 'Slice', 'Range', 'Neg', 'Add', 'Sub', 'Mul', 'Div']);

/**
 * Replaces every default-domain node whose inputs are all small constants (initializers of at
 * most FOLD_MAX_ELEMENTS values) and whose op is one of FOLDABLE by initializers holding its
 * outputs, repeatedly, in graph order; initializers nothing reads any more are dropped.
 * Graph outputs are never folded away.
 */
export function foldConstants(g: Graph): void {
  const outputs = new Set(g.outputs.map((v) => v.name));
  let folded = false;
  g.nodes = g.nodes.filter((n) => {
    if (!isDefault(n.domain) || !FOLDABLE.has(n.opType) || n.outputs.length !== 1 || outputs.has(n.outputs[0])) return true;
    // Shape needs only its input's dims: a constant input of any size will do.
    const ins = n.inputs.map((i) => (i === '' ? undefined : n.opType === 'Shape' ? shapeOnly(g.initializers.get(i)) : toVal(g.initializers.get(i))));
    if (n.inputs.some((i, k) => i !== '' && !ins[k])) return true;
    const out = evaluate(n, ins);
    if (!out || out.data.length > FOLD_MAX_ELEMENTS || out.data.length !== size(out.dims)) return true;
    g.initializers.set(n.outputs[0], fromVal(out));
    folded = true;
    return false;
  });
  if (!folded) return;
  const used = new Set([...g.nodes.flatMap((n) => n.inputs), ...g.outputs.map((v) => v.name)]);
  for (const k of [...g.initializers.keys()]) if (!used.has(k)) g.initializers.delete(k);
}

function shapeOnly(t: TensorData | undefined): Val | undefined {
  return t && { dtype: t.dtype, dims: [...t.dims], data: [] };
}
