import { f32 } from '../../onnx/ir.ts';
import type { ModelSpec } from '../spec.ts';
import { toCatalogNames } from './mapping.ts';
import type { LoadedTensor, SkippedTensor } from './types.ts';

/**
 * Matching a file's tensors to a catalog model: each tensor goes to the initializer of the same
 * name (after the family's name mapping) when the shapes agree. What does not fit is reported per
 * tensor — a 1000-class head against an experiment's 5 classes is the usual one, and the head then
 * keeps its fresh initialisation — and what the model has that the file lacks is listed too.
 */

export interface MatchResult {
  /** Catalog name → the tensor to load. */
  values: Map<string, LoadedTensor>;
  skipped: SkippedTensor[];
  /** The model's parameters and batch-norm statistics the file does not give (they keep their fresh values). */
  missing: string[];
}

const shape = (d: readonly number[]) => `[${d.join(', ')}]`;

export function matchWeights(spec: ModelSpec, family: string, tensors: Map<string, LoadedTensor>): MatchResult {
  const inits = spec.model.graph.initializers;
  const wanted = new Set([...spec.params, ...spec.bnStats]);
  const head = new Set(spec.head);
  const values = new Map<string, LoadedTensor>();
  const skipped: SkippedTensor[] = [];
  for (const m of toCatalogNames(family, tensors)) {
    const shown = m.from ? `${m.from} (→ ${m.name})` : m.name;
    if (!wanted.has(m.name)) {
      skipped.push({ name: shown, reason: `${spec.name} has no parameter of this name` });
      continue;
    }
    const init = inits.get(m.name)!;
    const fits = init.dims.length === m.tensor.dims.length && init.dims.every((d, i) => d === m.tensor.dims[i]);
    if (!fits) {
      const why = `shape ${shape(m.tensor.dims)} does not fit the model's ${shape(init.dims)}`;
      skipped.push({ name: shown, reason: head.has(m.name) ? `${why}: the classifier head is re-initialised for ${spec.numClasses} outputs` : why });
      continue;
    }
    if (values.has(m.name)) {
      skipped.push({ name: shown, reason: 'a second tensor for the same parameter' });
      continue;
    }
    values.set(m.name, m.tensor);
  }
  const missing = [...wanted].filter((n) => !values.has(n));
  return { values, skipped, missing };
}

/** Sets the matched tensors as the model's initializers (the graph is the spec's own copy). */
export function applyWeights(spec: ModelSpec, values: Map<string, LoadedTensor>): number {
  const inits = spec.model.graph.initializers;
  let n = 0;
  for (const [name, t] of values) {
    if (!inits.has(name)) continue;
    inits.set(name, f32(t.dims, t.data));
    n++;
  }
  return n;
}

/** The model's class count a file's head was made for (its head weight's first dimension), if it has one that fits otherwise. */
export function headClassesOf(spec: ModelSpec, family: string, tensors: Map<string, LoadedTensor>): number | null {
  // the head's output layer: a 2-D weight with one row per class
  const weight = spec.head.find((n) => n.endsWith('.weight') && spec.model.graph.initializers.get(n)?.dims.length === 2 && spec.model.graph.initializers.get(n)?.dims[0] === spec.numClasses);
  if (!weight) return null;
  for (const m of toCatalogNames(family, tensors)) {
    if (m.name === weight && m.tensor.dims.length === 2 && m.tensor.dims[1] === spec.model.graph.initializers.get(weight)!.dims[1]) return m.tensor.dims[0];
  }
  return null;
}
