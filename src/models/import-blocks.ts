import type { Node } from '../onnx/ir.ts';

/** Ops that carry their own weights; a group made only of others (BN, bias Add) joins the one before. */
const WEIGHT_OPS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);

/**
 * The module a node came from, from the scope path exporters put in node names
 * (torch: `/layer1/layer1.0/conv1/Conv` → `layer1.0`): the first two scope levels, which are a
 * network's stages or blocks (`layer1.0`, `features.3`, `blocks.2`). Names without scopes give
 * each node its own key.
 */
function moduleKey(n: Node): string {
  const parts = n.name.split('/').filter(Boolean);
  if (parts.length < 2) return `#${n.name}`;
  const scopes = parts.slice(0, -1);
  return scopes.slice(0, 2).join('/');
}

function blockName(key: string): string {
  if (key.startsWith('#')) return key.slice(1);
  const parts = key.split('/');
  return parts[parts.length - 1];
}

/**
 * Groups param-bearing nodes, in graph (topological) order, into blocks: consecutive nodes of one
 * module form a block, and a block with no weight op (a lone BatchNormalization) joins the block
 * before it, so `conv1` + `bn1` make one stem block.
 */
export function groupBlocks(nodes: Node[], paramsOf: (n: Node) => string[]): { names: string[]; blocks: string[][] } {
  const groups: { key: string; params: string[]; hasWeightOp: boolean }[] = [];
  for (const n of nodes) {
    const params = paramsOf(n);
    if (params.length === 0) continue;
    const key = moduleKey(n);
    const last = groups[groups.length - 1];
    const weightOp = WEIGHT_OPS.has(n.opType);
    if (last && last.key === key) {
      last.params.push(...params);
      last.hasWeightOp ||= weightOp;
    } else {
      groups.push({ key, params: [...params], hasWeightOp: weightOp });
    }
  }
  const merged: typeof groups = [];
  for (const g of groups) {
    const prev = merged[merged.length - 1];
    if (prev && !g.hasWeightOp) prev.params.push(...g.params);
    else merged.push(g);
  }
  return { names: merged.map((g) => blockName(g.key)), blocks: merged.map((g) => g.params) };
}
