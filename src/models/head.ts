import { badInput } from '../kernel/errors.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import type { Graph, Node } from '../onnx/ir.ts';
import { inferShapes } from '../onnx/shape-inference.ts';
import { cloneGraph, renameValue } from './graph-edit.ts';
import { Rng } from './init.ts';
import type { ModelSpec } from './spec.ts';

/**
 * A model as a backbone and a head, as timm has it: the backbone ends in `features` ([N, C] after
 * global pooling; timm's `num_features`), the head turns them into the task's K outputs. The
 * catalog and the ONNX import build a linear head; a task that wants another (src/tasks/<task>/,
 * `TaskDefinition.head`) has it replaced here, for training and for evaluation and export alike.
 */

/** What the head reads: the backbone's feature value and its width. */
export interface Features {
  value: string;
  channels: number;
}

/** A head: nodes from `features` to one [N, outputs] value, with the parameters it made (graph order). */
export type HeadBuilder = (b: GraphBuilder, features: Features, outputs: number, rng: Rng) => { output: string; params: string[] };

/** The head's nodes: those that read a head parameter, and everything downstream of them. */
function headNodes(g: Graph, headParams: readonly string[]): Set<Node> {
  const tainted = new Set<string>(headParams);
  const nodes = new Set<Node>();
  for (const n of g.nodes) {
    if (n.inputs.some((i) => tainted.has(i))) {
      nodes.add(n);
      for (const o of n.outputs) if (o) tainted.add(o);
    }
  }
  return nodes;
}

/** The backbone's features: the one value the head's nodes read that neither the head nor an initializer makes. */
export function featuresOf(spec: ModelSpec): Features {
  const g = spec.model.graph;
  const nodes = headNodes(g, spec.head);
  const made = new Set([...nodes].flatMap((n) => n.outputs));
  const read = new Set<string>();
  for (const n of nodes) for (const i of n.inputs) if (i && !made.has(i) && !g.initializers.has(i)) read.add(i);
  if (read.size !== 1) throw badInput(`the head of '${spec.name}' reads ${read.size} backbone values (${[...read].join(', ')}); expected one`);
  const value = [...read][0];
  let channels: number | undefined;
  try {
    const d = inferShapes(g).get(value)?.shape?.[1];
    if (typeof d === 'number') channels = d;
  } catch {
    // an imported graph whose shapes cannot be inferred: the head's own first weight tells
  }
  if (channels === undefined) {
    const gemm = [...nodes].find((n) => n.opType === 'Gemm');
    const w = gemm ? g.initializers.get(gemm.inputs[1]) : undefined;
    channels = w ? w.dims[1] : undefined;
  }
  if (channels === undefined) throw badInput(`the width of '${spec.name}''s features '${value}' is not known`);
  return { value, channels };
}

/**
 * The spec with its head replaced by `head` for `outputs` outputs: the old head's nodes and
 * parameters go, the new one reads the same features and ends in `logits`. Deterministic in
 * `seed`, so training, evaluation and export build the same names and initial values.
 */
export function replaceHead(spec: ModelSpec, head: HeadBuilder, outputs: number, seed: number): ModelSpec {
  const features = featuresOf(spec);
  const g = cloneGraph(spec.model.graph);
  const old = headNodes(g, spec.head);
  g.nodes = g.nodes.filter((n) => !old.has(n));
  // initializers only the old head read (its parameters, a dropout ratio) go with it
  const stillRead = new Set(g.nodes.flatMap((n) => n.inputs));
  for (const name of [...g.initializers.keys()]) if (!stillRead.has(name) && !spec.bnStats.includes(name) && !g.inputs.some((v) => v.name === name)) g.initializers.delete(name);
  const b = new GraphBuilder(g);
  const made = head(b, features, outputs, new Rng((seed ^ 0x4ead) >>> 0));
  renameValue(g, made.output, 'logits');
  g.outputs = [{ name: 'logits', dtype: 'float32', shape: ['N', outputs] }];
  g.valueInfo = [];
  const oldParams = new Set(spec.head);
  const params = [...spec.params.filter((p) => !oldParams.has(p)), ...made.params];
  return {
    ...spec,
    model: { ...spec.model, graph: g },
    params,
    blocks: [...spec.blocks.slice(0, -1), [...made.params]],
    head: [...made.params],
    numClasses: outputs,
  };
}
