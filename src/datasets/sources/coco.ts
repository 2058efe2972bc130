import { z } from 'zod';
import { AppError } from '../../kernel/errors.ts';
import { SkipError, type Annotation, type ImportSource, type ScanItem, type Scanner, type SkippedFile } from '../types.ts';
import { readBounded, readIndexFile, realDirectory, realFile, resolveInside } from './fsutil.ts';
import { truthFromAnnotations } from './labels.ts';

type CocoSource = Extract<ImportSource, { kind: 'coco' }>;

const Id = z.union([z.number().int(), z.string().min(1).max(200)]);
const CocoSchema = z.object({
  images: z.array(z.object({ id: Id, file_name: z.string().min(1).max(4096) })),
  annotations: z
    .array(
      z.object({
        image_id: Id,
        category_id: Id,
        bbox: z.tuple([z.number().finite(), z.number().finite(), z.number().finite().min(0), z.number().finite().min(0)]).optional(),
        // Polygons only; RLE masks (an object) are not kept yet.
        segmentation: z.unknown().optional(),
      }),
    )
    .default([]),
  categories: z
    .array(z.object({ id: Id, name: z.string().trim().min(1).max(200).regex(/^[^\u0000-\u001f\u007f]*$/, 'no control characters') }))
    .min(1),
});

function polygons(seg: unknown): number[][] | undefined {
  if (!Array.isArray(seg) || seg.length === 0) return undefined;
  const ok = seg.every((p) => Array.isArray(p) && p.length >= 6 && p.every((v) => typeof v === 'number' && Number.isFinite(v)));
  return ok ? (seg as number[][]) : undefined;
}

/** A COCO annotations file; `file_name`s are resolved inside images_root. */
export const scanCoco: Scanner<CocoSource> = async (source, ctx) => {
  const annPath = await realFile(source.annotations, 'COCO annotations file');
  const root = await realDirectory(source.images_root, 'images root');
  const text = await readIndexFile(annPath, ctx.limits.maxIndexFileBytes, 'COCO annotations file');
  let coco: z.infer<typeof CocoSchema>;
  try {
    coco = CocoSchema.parse(JSON.parse(text));
  } catch (e) {
    throw new AppError('VALIDATION_ERROR', `not a COCO annotations file: ${e instanceof Error ? e.message : String(e)}`);
  }
  const categoryName = new Map(coco.categories.map((c) => [String(c.id), c.name]));
  const byImage = new Map<string, Annotation[]>();
  for (const a of coco.annotations) {
    const category = categoryName.get(String(a.category_id)) ?? String(a.category_id);
    const ann: Annotation = { category };
    if (a.bbox !== undefined) ann.bbox = [a.bbox[0], a.bbox[1], a.bbox[2], a.bbox[3]];
    const seg = polygons(a.segmentation);
    if (seg !== undefined) ann.segmentation = seg;
    const key = String(a.image_id);
    const list = byImage.get(key) ?? [];
    list.push(ann);
    byImage.set(key, list);
  }
  const items: ScanItem[] = [];
  const skipped: SkippedFile[] = [];
  for (const img of coco.images) {
    ctx.signal?.throwIfAborted();
    const annotations = byImage.get(String(img.id)) ?? [];
    try {
      const truth = truthFromAnnotations(annotations, ctx.task);
      const real = await resolveInside(root, img.file_name);
      items.push({ file: img.file_name, ...truth, annotations, read: () => readBounded(real, ctx.limits.maxFileBytes) });
    } catch (e) {
      if (!(e instanceof SkipError)) throw e;
      skipped.push({ file: img.file_name, reason: e.reason, detail: e.detail });
    }
  }
  return { items, skipped, classes: [...new Set(coco.categories.map((c) => c.name))], close: async () => {} };
};
