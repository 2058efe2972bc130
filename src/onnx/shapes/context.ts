import type { DataType, Dim, Node, TensorData } from '../ir.ts';

/**
 * What shape rules share: the context they read and write (types of values, and the known
 * contents of small integer tensors), and dim arithmetic.
 */

export interface ShapeInfo {
  dtype: DataType;
  shape: Dim[];
}

export class Ctx {
  readonly types = new Map<string, ShapeInfo>();
  /** Known contents of small int (or float) tensors of rank ≤ 1, row-major. */
  readonly values = new Map<string, Dim[]>();

  type(name: string): ShapeInfo | undefined {
    return name === '' ? undefined : this.types.get(name);
  }
  shape(name: string): Dim[] | undefined {
    return this.type(name)?.shape;
  }
  dtype(name: string): DataType | undefined {
    return this.type(name)?.dtype;
  }
  set(name: string | undefined, dtype: DataType | undefined, shape: Dim[] | undefined): void {
    if (name && dtype && shape) this.types.set(name, { dtype, shape });
  }
  setConst(name: string, t: TensorData): void {
    this.types.set(name, { dtype: t.dtype, shape: [...t.dims] });
    if (t.dims.length <= 1 && t.data.length <= 64 && t.dtype !== 'float16') {
      this.values.set(name, Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v)));
    }
  }
  /** Known values as plain numbers, or undefined if any entry is not a number. */
  ints(name: string): number[] | undefined {
    const v = name === '' ? undefined : this.values.get(name);
    return v && v.every((d) => typeof d === 'number') ? (v as number[]) : undefined;
  }
}

export type Rule = (n: Node, c: Ctx) => void;

export const isNum = (d: Dim | undefined): d is number => typeof d === 'number';

export const normAxis = (a: number, rank: number) => (a < 0 ? a + rank : a);

export function product(dims: Dim[]): Dim {
  let p = 1;
  for (const d of dims) {
    if (!isNum(d)) return dims.length === 1 ? d : null;
    p *= d;
  }
  return p;
}

/** Numpy broadcasting of two dims; null when it depends on unknown sizes. */
function broadcastDim(a: Dim, b: Dim): Dim {
  if (a === 1) return b;
  if (b === 1) return a;
  if (a === b) return a;
  if (isNum(a) && isNum(b)) throw new Error(`cannot broadcast ${a} with ${b}`);
  // A concrete size > 1 wins over an unknown one: the unknown must equal it or be 1.
  if (isNum(a)) return a;
  if (isNum(b)) return b;
  return null;
}

export function broadcastShapes(...shapes: Dim[][]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const k = i - (rank - s.length);
      if (k >= 0) d = broadcastDim(d, s[k]);
    }
    out.push(d);
  }
  return out;
}

export const isIntType = (d: DataType | undefined) => d === 'int64' || d === 'int32' || d === 'int8' || d === 'uint8';
