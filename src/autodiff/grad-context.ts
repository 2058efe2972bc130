import { AppError } from '../kernel/errors.ts';
import type { GraphBuilder } from '../onnx/builder.ts';
import { type DataType, type Node, type TensorData, tensor } from '../onnx/ir.ts';
import type { GradContext, ValueType } from './context.ts';
import { unbroadcast } from './unbroadcast.ts';

/** The GradContext handed to each rule, and the constants the backward pass emits. */

const FLOAT_TYPES: ReadonlySet<DataType> = new Set(['float32', 'float64', 'float16']);

export function typeOf(types: Map<string, ValueType>, value: string): ValueType {
  const t = types.get(value);
  if (!t) throw new AppError('INTERNAL', `autodiff: no type known for value '${value}'`);
  return t;
}

/** A float constant in the dtype of `like`: typed directly where shape inference knows it,
 *  else cast at run time. */
export function constLike(b: GraphBuilder, consts: ConstantPool, types: Map<string, ValueType>, values: ArrayLike<number>, dims: number[], like: string): string {
  const t = types.get(like);
  if (t) return consts.tensor(values, dims, t.dtype);
  return b.op('CastLike', [consts.tensor(values, dims, 'float32'), like], {}, 'grad_const_like');
}

/** Deduplicated constants emitted by the backward pass. */
export class ConstantPool {
  private readonly cache = new Map<string, string>();
  constructor(private readonly b: GraphBuilder) {}

  get(key: string, make: () => TensorData, prefix: string): string {
    let name = this.cache.get(key);
    if (!name) {
      name = this.b.initializer(this.b.fresh(prefix), make());
      this.cache.set(key, name);
    }
    return name;
  }
  tensor(values: ArrayLike<number>, dims: number[], dtype: DataType): string {
    if (!FLOAT_TYPES.has(dtype)) throw new AppError('INTERNAL', `autodiff: constant of non-float type ${dtype}`);
    const arr = Array.from(values);
    const key = `${dtype}|${dims.join(',')}|${arr.join(',')}`;
    return this.get(key, () => {
      if (dtype === 'float64') return tensor('float64', dims, Float64Array.from(arr));
      if (dtype === 'float32') return tensor('float32', dims, Float32Array.from(arr));
      throw new AppError('UNSUPPORTED_OP', 'autodiff: float16 graphs are not differentiated; train in float32');
    }, 'grad_const');
  }
  ints(values: number[], scalar = false): string {
    const dims = scalar ? [] : [values.length];
    return this.get(`int64|${dims.join(',')}|${values.join(',')}`, () => tensor('int64', dims, BigInt64Array.from(values.map(BigInt))), 'grad_ints');
  }
}

export function makeContext(
  b: GraphBuilder,
  node: Node,
  dY: (string | null)[],
  types: Map<string, ValueType>,
  consts: ConstantPool,
  needsGrad: (v: string) => boolean,
): GradContext {
  const prefix = `${node.name}_grad_`;
  const constOf = (value: string): TensorData | undefined => {
    const init = b.graph.initializers.get(value);
    if (init) return init;
    const producer = b.graph.nodes.find((n) => n.opType === 'Constant' && n.outputs[0] === value);
    const a = producer?.attrs.value;
    return a?.kind === 'tensor' ? a.value : undefined;
  };
  const ctx: GradContext = {
    b,
    node,
    dY,
    x: (i) => node.inputs[i] ?? '',
    y: (i) => node.outputs[i] ?? '',
    needs: (i) => needsGrad(node.inputs[i] ?? ''),
    type: (v) => typeOf(types, v),
    typeIfKnown: (v) => types.get(v),
    rank: (v) => typeOf(types, v).shape.length,
    staticShape: (v) => {
      const s = typeOf(types, v).shape;
      if (!s.every((d): d is number => typeof d === 'number')) {
        throw new AppError('UNSUPPORTED_OP', `autodiff: ${node.opType} gradient needs a static shape for '${v}', got [${s.join(',')}] (node ${node.name})`);
      }
      return s;
    },
    op: (opType, inputs, attrs = {}) => b.op(opType, inputs, attrs, prefix + opType),
    opN: (opType, inputs, attrs, n) => b.opN(opType, inputs, attrs, n, prefix + opType),
    scalar: (value, like) => constLike(b, consts, types, [value], [], like),
    constant: (values, dims, like) => constLike(b, consts, types, values, dims, like),
    ints: (values) => consts.ints(values),
    intScalar: (value) => consts.ints([value], true),
    constInts: (v) => {
      const t = constOf(v);
      if (!t || (t.dtype !== 'int64' && t.dtype !== 'int32')) return undefined;
      return Array.from(t.data as ArrayLike<number | bigint>, Number);
    },
    constFloats: (v) => {
      const t = constOf(v);
      if (!t || !FLOAT_TYPES.has(t.dtype) || t.dtype === 'float16') return undefined;
      return Array.from(t.data as ArrayLike<number>);
    },
    requireOutput: (i) => {
      while (node.outputs.length <= i) node.outputs.push('');
      if (node.outputs[i] === '') node.outputs[i] = b.fresh(`${node.name}_out${i}`);
      return node.outputs[i];
    },
    unbroadcast: (grad, toInput, from) => unbroadcast(ctx, grad, toInput, from),
  };
  return ctx;
}
