import { type Attr, type DataType, type Dim, type Graph, type Model, type Node, type TensorData, WRITE_IR_VERSION, WRITE_OPSET } from './ir.ts';

/**
 * Builds a graph node by node. Names are made unique with a counter so that builders can be
 * composed (a model, then a loss, then the backward pass) without collisions.
 * Typed op helpers (conv, gemm, …) live in ops.ts on top of `op`/`opN`.
 */
export class GraphBuilder {
  readonly graph: Graph;
  private counter = 0;
  private readonly taken = new Set<string>();

  constructor(graph?: Graph, name = 'main') {
    this.graph = graph ?? { name, nodes: [], inputs: [], outputs: [], initializers: new Map(), valueInfo: [] };
    for (const v of this.graph.inputs) this.taken.add(v.name);
    for (const k of this.graph.initializers.keys()) this.taken.add(k);
    for (const n of this.graph.nodes) {
      this.taken.add(n.name);
      for (const o of n.outputs) this.taken.add(o);
    }
  }

  /** A fresh value or node name starting with `prefix`. */
  fresh(prefix: string): string {
    let name = prefix;
    while (this.taken.has(name)) name = `${prefix}_${++this.counter}`;
    this.taken.add(name);
    return name;
  }

  input(name: string, dtype: DataType, shape: Dim[]): string {
    this.taken.add(name);
    this.graph.inputs.push({ name, dtype, shape });
    return name;
  }

  output(name: string, dtype: DataType, shape?: Dim[]): string {
    this.graph.outputs.push({ name, dtype, shape });
    return name;
  }

  initializer(name: string, value: TensorData): string {
    const n = this.taken.has(name) && !this.graph.initializers.has(name) ? this.fresh(name) : name;
    this.taken.add(n);
    this.graph.initializers.set(n, value);
    return n;
  }

  /** Adds a node with `nOutputs` fresh outputs (or the given output names) and returns them. */
  opN(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, outputs: number | string[] = 1, name?: string): string[] {
    const nodeName = this.fresh(name ?? opType);
    const outs = typeof outputs === 'number'
      ? Array.from({ length: outputs }, (_, i) => this.fresh(`${nodeName}_out${i === 0 ? '' : i}`))
      : outputs.map((o) => (o === '' ? '' : (this.taken.add(o), o)));
    const node: Node = { name: nodeName, opType, inputs, outputs: outs, attrs };
    this.graph.nodes.push(node);
    return outs;
  }

  /** Adds a single-output node and returns its output name. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, name?: string): string {
    return this.opN(opType, inputs, attrs, 1, name)[0];
  }

  toModel(metadata: Record<string, string> = {}): Model {
    return {
      irVersion: WRITE_IR_VERSION,
      opsetImports: [{ domain: '', version: WRITE_OPSET }],
      producerName: 'ai-studio',
      graph: this.graph,
      metadata,
    };
  }
}
