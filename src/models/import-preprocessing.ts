import { z } from 'zod';
import { IMAGENET_MEAN, IMAGENET_STD } from './spec.ts';

/**
 * Normalisation of an imported model, from its metadata_props where an exporter left it there
 * (our own `studio.*` keys, or the `mean`/`std`/`preprocessing` conventions of other tools), else
 * ImageNet's, which is what torchvision and timm weights expect.
 */

type Triple = [number, number, number];

const Numbers = z.array(z.number().finite()).length(3);
const Preprocessing = z.object({
  mean: Numbers.optional(),
  std: Numbers.optional(),
  size: z.union([z.number().int().positive(), z.array(z.number().int().positive()).min(1)]).optional(),
}).loose();

function parseTriple(text: string | undefined): Triple | undefined {
  if (text === undefined) return undefined;
  let values: unknown;
  try {
    values = JSON.parse(text);
  } catch {
    values = text.split(/[\s,;]+/).filter(Boolean).map(Number);
  }
  const r = Numbers.safeParse(values);
  return r.success ? (r.data as Triple) : undefined;
}

function parsePreprocessing(text: string | undefined): z.infer<typeof Preprocessing> | undefined {
  if (text === undefined) return undefined;
  try {
    const r = Preprocessing.safeParse(JSON.parse(text));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

/** Values given on the 0–255 scale are brought to the 0–1 scale the studio feeds. */
const unitScale = (t: Triple): Triple => (t.every((v) => v > 1) ? (t.map((v) => v / 255) as Triple) : t);

export function readNormalisation(meta: Record<string, string>): { mean: Triple; std: Triple; size?: number } {
  const pre = parsePreprocessing(meta['preprocessing']);
  const mean = parseTriple(meta['studio.mean'] ?? meta['mean'] ?? meta['image_mean']) ?? (pre?.mean as Triple | undefined);
  const std = parseTriple(meta['studio.std'] ?? meta['std'] ?? meta['image_std']) ?? (pre?.std as Triple | undefined);
  const sizeText = meta['studio.input_size'] ?? meta['input_size'];
  const parsedSize = sizeText !== undefined ? z.coerce.number().int().positive().safeParse(sizeText) : undefined;
  const size = parsedSize?.success ? parsedSize.data : Array.isArray(pre?.size) ? pre.size[0] : pre?.size;
  return {
    mean: mean ? unitScale(mean) : IMAGENET_MEAN,
    std: std ? unitScale(std) : IMAGENET_STD,
    ...(size !== undefined ? { size } : {}),
  };
}
