import { notFound, validation } from '../kernel/errors.ts';
import { CreateOptionsSchema, type CreateOptions, type ModelSpec } from './spec.ts';

/** What a factory receives: the caller's options with every default filled in. */
export interface ResolvedOptions {
  numClasses: number;
  inputSize: number;
  seed: number;
}

export type ModelFactory = (opts: ResolvedOptions) => ModelSpec;

export interface ModelMeta {
  family: string;
  description: string;
  /** The input side the architecture was designed for (and torchvision's weights were trained at). */
  defaultInputSize: number;
  /** torchvision's parameter count with 1000 classes, where the model has a torchvision twin. */
  torchvisionParams1000?: number;
}

interface Entry {
  factory: ModelFactory;
  meta: ModelMeta;
}

// As timm's register_model: each family file registers its variants when imported (see index.ts).
const registry = new Map<string, Entry>();

export function registerModel(name: string, factory: ModelFactory, meta: ModelMeta): void {
  if (registry.has(name)) throw new Error(`model '${name}' registered twice`);
  registry.set(name, { factory, meta });
}

export function listModels(): string[] {
  return [...registry.keys()].sort();
}

export function modelMeta(name: string): ModelMeta {
  const e = registry.get(name);
  if (!e) throw notFound('model', name);
  return e.meta;
}

export function createModel(name: string, options: CreateOptions): ModelSpec {
  const e = registry.get(name);
  if (!e) throw notFound('model', name);
  const o = CreateOptionsSchema.safeParse(options);
  if (!o.success) throw validation(`invalid options for model '${name}'`, o.error.issues);
  return e.factory({
    numClasses: o.data.numClasses,
    inputSize: o.data.inputSize ?? e.meta.defaultInputSize,
    seed: o.data.seed ?? 0,
  });
}
