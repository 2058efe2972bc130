import {
  DatasetCreateSchema,
  DatasetUpdateSchema,
  ImageQuerySchema,
  ImageUpdateSchema,
  SplitNameSchema,
  SplitRequestSchema,
  type ClassHistogram,
  type DatasetCreate,
  type DatasetManifest,
  type DatasetSummary,
  type DatasetUpdate,
  type ImageDetail,
  type ImageItem,
  type ImagePage,
  type ImageQuery,
  type SplitFile,
  type StoredImage,
  type ImageUpdate,
  type ImportReport,
  ImportReportSchema,
  type SplitRequest,
  type SplitSummary,
  type Subset,
  type SubsetCounts,
  type TargetStats,
} from '../schemas/dataset.ts';
import { ProjectDoc } from '../schemas/project.ts';
// Registers the built-in tasks: a dataset's task is checked against them (DatasetTaskSchema).
import '../tasks/index.ts';
import { computeMultilabelSplit, computeRegressionSplit, computeSplit, type SplitResult } from '../datasets/splits.ts';
import { labelShape, type LabelShape } from '../datasets/types.ts';
import { newId } from '../storage/ids.ts';
import { applyImportReport, normalizeLabel, normalizeLabels } from '../storage/import-sink.ts';
import { NONE_CODE, SUBSET_CODES, idAt, stemAt, type DatasetIndex, type ImageRef } from '../storage/dataset-index.ts';
import type { DatasetTx } from '../storage/datasets.ts';
import type { Workspace } from '../storage/workspace.ts';
import { conflict, notFound, validation } from '../kernel/errors.ts';
import { parseInput } from './projects.ts';

const SUBSETS: Subset[] = ['train', 'val', 'test', 'none'];
const zeroCounts = (): SubsetCounts => ({ train: 0, val: 0, test: 0, none: 0 });

/** How many equal-width bins a target histogram gets: about √n, 1 to 20. */
const histogramBins = (n: number) => Math.max(1, Math.min(20, Math.ceil(Math.sqrt(n))));

/** A target's distribution over its values (all finite: the schema refuses others). */
export function targetStats(values: readonly number[]): TargetStats {
  const count = values.length;
  if (count === 0) return { count, min: null, max: null, mean: null, std: null, histogram: { edges: [], counts: [] } };
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  const mean = sum / count;
  let sq = 0;
  for (const v of values) sq += (v - mean) ** 2;
  const std = Math.sqrt(sq / count);
  // A constant target gets one bin of width 1 around its value, so the chart still shows a bar.
  const [lo, hi] = min === max ? [min - 0.5, max + 0.5] : [min, max];
  const bins = min === max ? 1 : histogramBins(count);
  const width = (hi - lo) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, i) => (i === bins ? hi : lo + i * width));
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.max(0, Math.floor((v - lo) / width)))] += 1;
  return { count, min, max, mean, std, histogram: { edges, counts } };
}

/** The names an image counts under: its class, its labels, or (regression) every target name when it has targets. */
function countedNames(ix: DatasetIndex, ref: ImageRef, shape: LabelShape, targetNames: readonly string[]): string[] {
  const { shard, i } = ref;
  if (shape === 'single') return shard.label[i] < 0 ? [] : [ix.className(shard.label[i])];
  if (shape === 'multi') {
    const codes = shard.labels?.[i];
    return codes ? Array.from(codes, (c) => ix.className(c)) : [];
  }
  return shard.targets?.[i] === undefined ? [] : [...targetNames];
}

/** Regression's target distributions, from the index (cached per index version). */
const targetStatsCache = new WeakMap<DatasetIndex, { version: number; stats: Record<string, TargetStats> }>();
function targetStatsOf(ix: DatasetIndex): Record<string, TargetStats> {
  const hit = targetStatsCache.get(ix);
  if (hit && hit.version === ix.version) return hit.stats;
  const names = ix.manifest.target_names;
  const values: number[][] = names.map(() => []);
  for (const s of ix.shards) for (const t of s.targets ?? []) if (t) t.forEach((v, j) => values[j]?.push(v));
  const stats = Object.fromEntries(names.map((n, j) => [n, targetStats(values[j])]));
  targetStatsCache.set(ix, { version: ix.version, stats });
  return stats;
}

/** Target name → value, for the API (names are the dataset's; values in stored order). */
function targetRecord(names: readonly string[], values: readonly number[]): Record<string, number> {
  return Object.fromEntries(names.map((n, j) => [n, values[j]]));
}

/** An image's task-specific truth for the grid and the detail: `labels` or `targets`, when present. */
function truthFields(ds: DatasetManifest, img: StoredImage): { labels?: string[]; targets?: Record<string, number> } {
  const shape = labelShape(ds.task);
  if (shape === 'multi' && img.labels !== undefined) return { labels: [...img.labels] };
  if (shape === 'targets' && img.targets !== undefined) return { targets: targetRecord(ds.target_names, img.targets) };
  return {};
}

/** The summary from the header's counts (regression's target distributions need the index). */
function summarize(projectId: string, ds: DatasetManifest, ix: DatasetIndex | null): DatasetSummary {
  const shape = labelShape(ds.task);
  // Null prototype: a class may be called `__proto__`.
  const classCounts = Object.create(null) as Record<string, number>;
  for (const c of shape === 'targets' ? ds.target_names : ds.classes) classCounts[c] = 0;
  for (const [k, v] of ds.counts.class_counts) if (shape !== 'targets' || ds.target_names.includes(k)) classCounts[k] = v;
  const cardinality = ds.counts.cardinality.length > 0 ? [...ds.counts.cardinality] : [0];
  return {
    id: ds.id,
    project_id: projectId,
    name: ds.name,
    task: ds.task,
    status: ds.status,
    classes: [...ds.classes],
    target_names: [...ds.target_names],
    image_count: ds.counts.images,
    class_counts: { ...classCounts },
    unlabeled_count: ds.counts.unlabeled,
    ...(shape === 'multi' ? { label_cardinality: cardinality } : {}),
    ...(shape === 'targets' && ix ? { target_stats: structuredClone(targetStatsOf(ix)) } : {}),
    split_names: ds.splits.map((s) => s.name),
    import_report: ds.import_report,
    error: ds.error,
    created_at: ds.created_at,
    updated_at: ds.updated_at,
  };
}

function detail(ix: DatasetIndex, ref: ImageRef, img: StoredImage): ImageDetail {
  const ds = ix.manifest;
  const splits = Object.create(null) as Record<string, Subset>;
  for (const s of ds.splits) splits[s.name] = ix.subset(ref, s.name);
  return {
    id: img.id,
    file: img.file,
    width: img.width,
    height: img.height,
    hash: img.hash,
    label: img.label,
    ...truthFields(ds, img),
    annotations: img.annotations ? structuredClone(img.annotations) : [],
    source: img.source ?? null,
    splits,
  };
}

/**
 * Counts of one split: per class, per label (multi-label: an image counts under each of its
 * labels) or per target name (regression). `subsetOf` gives each image's subset.
 */
function splitSummary(name: string, ix: DatasetIndex, subsetOf: (ref: ImageRef) => Subset): SplitSummary {
  const ds = ix.manifest;
  const shape = labelShape(ds.task);
  const counts = zeroCounts();
  // Null prototype: a class may be called `__proto__`.
  const per_class = Object.create(null) as Record<string, SubsetCounts>;
  for (const shard of ix.shards) {
    for (let i = 0; i < shard.ids.length; i++) {
      const ref = { shard, i };
      const subset = subsetOf(ref);
      counts[subset] += 1;
      for (const label of countedNames(ix, ref, shape, ds.target_names)) (per_class[label] ??= zeroCounts())[subset] += 1;
    }
  }
  return { name, counts, per_class };
}

/** The split of a dataset's images by its task: per class, iteratively per label, or by target quantile bins. */
function splitImages(ix: DatasetIndex, opts: { ratios: SplitRequest['ratios']; stratify: boolean; seed: number }): SplitResult {
  const shape = labelShape(ix.manifest.task);
  // One item per image, made straight from the index's columns (a million images: one pass).
  const items = <T>(make: (ref: ImageRef, id: string, key: string) => T): T[] => {
    const out: T[] = [];
    for (const shard of ix.shards) {
      for (let i = 0; i < shard.ids.length; i++) {
        const ref = { shard, i };
        out.push(make(ref, idAt(ref), stemAt(ref)));
      }
    }
    return out;
  };
  if (shape === 'multi') {
    return computeMultilabelSplit(
      items((r, id, key) => {
        const codes = r.shard.labels?.[r.i];
        return { id, labels: codes ? Array.from(codes, (c) => ix.className(c)) : null, key };
      }),
      opts,
    );
  }
  if (shape === 'targets') return computeRegressionSplit(items((r, id, key) => ({ id, value: r.shard.targets?.[r.i]?.[0] ?? null, key })), opts);
  return computeSplit(items((r, id, key) => ({ id, label: r.shard.label[r.i] < 0 ? null : ix.className(r.shard.label[r.i]), key })), opts);
}

/** The label/labels/targets (and annotations) of an image update, checked against the dataset's task and names. */
function applyTruth(ds: DatasetManifest, img: StoredImage, body: ReturnType<typeof ImageUpdateSchema.parse>): void {
  if (body.annotations !== undefined) {
    if (body.annotations.length === 0) delete img.annotations;
    else img.annotations = body.annotations.map((a) => ({ ...a, category: normalizeLabel(a.category) ?? 'unnamed' }));
  }
  if (body.label === undefined && body.labels === undefined && body.targets === undefined) return;
  const shape = labelShape(ds.task);
  const wants = shape === 'single' ? 'label' : shape === 'multi' ? 'labels' : 'targets';
  const given = body.label !== undefined ? 'label' : body.labels !== undefined ? 'labels' : 'targets';
  if (given !== wants) throw validation(`${given}: a ${ds.task} dataset takes ${wants}, not ${given}`);
  if (body.label !== undefined) {
    img.label = body.label;
    if (body.label !== null && !ds.classes.includes(body.label)) ds.classes = [...ds.classes, body.label].sort();
  } else if (body.labels !== undefined) {
    if (body.labels === null) {
      delete img.labels;
      return;
    }
    const labels = normalizeLabels(body.labels);
    const unknown = labels.find((l) => !ds.classes.includes(l));
    if (unknown !== undefined) throw validation(`labels: '${unknown}' is not a class of this dataset (${ds.classes.join(', ')})`);
    // Stored in the classes' order, so the same set always reads the same.
    img.labels = ds.classes.filter((c) => labels.includes(c));
  } else if (body.targets !== undefined) {
    if (body.targets === null) {
      delete img.targets;
      return;
    }
    const t = body.targets;
    const extra = Object.keys(t).find((k) => !ds.target_names.includes(k));
    if (extra !== undefined) throw validation(`targets.${extra}: not a target of this dataset (${ds.target_names.join(', ')})`);
    const missing = ds.target_names.find((n) => !Object.hasOwn(t, n));
    if (missing !== undefined) throw validation(`targets.${missing}: missing; every target needs a value`);
    img.targets = ds.target_names.map((n) => t[n]);
  }
}

/**
 * Positions matching a filter, the last few filters per index, for the index's version: paging
 * through a filtered list, or switching between a few filters, scans once each.
 */
const filterCache = new WeakMap<DatasetIndex, { version: number; found: Map<string, Int32Array> }>();
const FILTERS_KEPT = 8;

/** Thumbnails are `.thumbs/<stem>.webp` beside `images/<stem>.<ext>` (see storage/import-sink.ts). */
export function thumbnailRel(file: string): string {
  const stem = file.slice('images/'.length).replace(/\.[^.]+$/, '');
  return `.thumbs/${stem}.webp`;
}

/** Datasets of a project: the summary, the image list with filters, relabel/delete, and splits. */
export function createDatasetsService(store: Workspace) {
  const datasets = store.datasets;

  async function requireProject(projectId: string): Promise<void> {
    if ((await store.read(ProjectDoc, store.projectFile(projectId))) === null) throw notFound('project', projectId);
  }

  async function header(projectId: string, datasetId: string): Promise<DatasetManifest> {
    const ds = await datasets.header(projectId, datasetId);
    if (ds === null) {
      await requireProject(projectId);
      throw notFound('dataset', datasetId);
    }
    return ds;
  }

  async function index(projectId: string, datasetId: string): Promise<DatasetIndex> {
    await header(projectId, datasetId);
    return datasets.index(projectId, datasetId);
  }

  /** A change under the dataset's lock (src/storage/datasets.ts `transact`). */
  async function change<R>(projectId: string, datasetId: string, fn: (tx: DatasetTx) => R | Promise<R>): Promise<R> {
    await requireProject(projectId);
    return datasets.transact(projectId, datasetId, fn);
  }

  /** Summary; regression's target distributions come from the index. */
  async function summary(projectId: string, ds: DatasetManifest): Promise<DatasetSummary> {
    const ix = labelShape(ds.task) === 'targets' ? await datasets.index(projectId, ds.id) : null;
    return summarize(projectId, ds, ix);
  }

  function locate(ix: DatasetIndex, imageId: string): ImageRef {
    const ref = ix.locate(imageId);
    if (!ref) throw notFound('image', imageId);
    return ref;
  }



  function requireSplit(ds: DatasetManifest, name: string): void {
    if (!ds.splits.some((s) => s.name === name)) throw notFound('split', name);
  }

  /** The positions of every image matching the grid's filters, in the dataset's order. */
  function filtered(ix: DatasetIndex, label: string | undefined, split: string | null, subset: Subset | undefined): Int32Array | null {
    if (label === undefined && subset === undefined) return null;
    const key = JSON.stringify([label ?? null, split, subset ?? null]);
    let kept = filterCache.get(ix);
    if (!kept || kept.version !== ix.version) filterCache.set(ix, (kept = { version: ix.version, found: new Map() }));
    const hit = kept.found.get(key);
    if (hit) return hit;
    const shape = labelShape(ix.manifest.task);
    const code = label === undefined ? -2 : ix.codeIfKnown(label);
    const want = subset === undefined ? -1 : SUBSET_CODES.indexOf(subset);
    let found = new Int32Array(1024);
    let count = 0;
    let pos = 0;
    for (const shard of ix.shards) {
      const col = split === null ? undefined : shard.subsets.get(split);
      for (let i = 0; i < shard.ids.length; i++, pos++) {
        if (want >= 0 && (col ? col[i] : NONE_CODE) !== want) continue;
        if (label !== undefined) {
          if (code < 0) continue;
          if (shape === 'multi' ? !(shard.labels?.[i]?.includes(code) ?? false) : shard.label[i] !== code) continue;
        }
        if (count === found.length) {
          const grown = new Int32Array(found.length * 2);
          grown.set(found);
          found = grown;
        }
        found[count++] = pos;
      }
    }
    const positions = found.slice(0, count);
    kept.found.set(key, positions);
    if (kept.found.size > FILTERS_KEPT) kept.found.delete(kept.found.keys().next().value!);
    return positions;
  }

  const service = {
    async list(projectId: string): Promise<DatasetSummary[]> {
      await requireProject(projectId);
      const out: DatasetSummary[] = [];
      for (const id of await store.listDirs(store.datasetsDir(projectId))) {
        let ds: DatasetManifest | null;
        try {
          ds = await datasets.header(projectId, id);
          if (ds) out.push(await summary(projectId, ds));
        } catch {
          continue;
        }
      }
      return out.sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
    },

    async get(projectId: string, datasetId: string): Promise<DatasetSummary> {
      return summary(projectId, await header(projectId, datasetId));
    },

    /** A new, empty dataset in status 'importing'; an import job fills it through an import sink. */
    async create(projectId: string, input: DatasetCreate): Promise<DatasetSummary> {
      const body = parseInput(DatasetCreateSchema, input, 'dataset');
      const targetNames = body.target_names ?? [];
      if (labelShape(body.task) === 'targets') {
        if (targetNames.length === 0) throw validation(`target_names: a ${body.task} dataset needs at least one target name`);
        if (new Set(targetNames).size !== targetNames.length) throw validation('target_names: a target is named twice');
      } else if (targetNames.length > 0) throw validation('target_names: only a regression dataset has target names');
      await requireProject(projectId);
      const now = new Date().toISOString();
      const ds = await datasets.create(projectId, {
        id: newId('ds'),
        name: body.name,
        task: body.task,
        status: 'importing',
        classes: [],
        target_names: targetNames,
        import_report: null,
        error: null,
        created_at: now,
        updated_at: now,
      });
      return summarize(projectId, ds, null);
    },

    async update(projectId: string, datasetId: string, input: DatasetUpdate): Promise<DatasetSummary> {
      const body = parseInput(DatasetUpdateSchema, input, 'dataset update');
      await change(projectId, datasetId, (tx) => {
        if (body.name !== undefined) tx.header.name = body.name;
      });
      return service.get(projectId, datasetId);
    },

    /** Deletes the dataset folder: header, shards, splits, images and thumbnails. */
    async remove(projectId: string, datasetId: string): Promise<void> {
      await header(projectId, datasetId);
      datasets.forget(projectId, datasetId);
      await store.removeTree(store.datasetDir(projectId, datasetId));
    },

    /** Marks an import done (status 'ready', report, classes); the images came through the import sink. */
    async finishImport(projectId: string, datasetId: string, report: ImportReport): Promise<DatasetSummary> {
      const r = parseInput(ImportReportSchema, report, 'import report');
      await change(projectId, datasetId, (tx) => applyImportReport(tx.header, r));
      return service.get(projectId, datasetId);
    },

    /** Marks an import as failed (the job died or was cancelled); images already stored stay. */
    async markFailed(projectId: string, datasetId: string, error: { code: string; message: string }): Promise<DatasetSummary> {
      await change(projectId, datasetId, (tx) => {
        tx.header.status = 'failed';
        tx.header.error = { code: error.code, message: error.message };
      });
      return service.get(projectId, datasetId);
    },

    /**
     * One page of images in stored order. `split` picks the split whose subset is reported per
     * image and filtered by `subset` (default: the first split); `label` filters by class (multi-label:
     * images that have that label among theirs; a regression dataset has no labels to filter by).
     */
    async listImages(projectId: string, datasetId: string, query: ImageQuery): Promise<ImagePage> {
      const q = parseInput(ImageQuerySchema, query, 'image query');
      const ix = await index(projectId, datasetId);
      const ds = ix.manifest;
      let split: string | null = null;
      if (q.split !== undefined) {
        requireSplit(ds, q.split);
        split = q.split;
      } else if (ds.splits.length > 0) split = ds.splits[0].name;
      if (q.subset !== undefined && split === null) throw validation('subset filter needs a split, and this dataset has none');
      const shape = labelShape(ds.task);
      if (q.label !== undefined && shape === 'targets') throw validation(`label: a ${ds.task} dataset has no labels to filter by`);
      const positions = filtered(ix, q.label, split, q.subset);
      const total = positions ? positions.length : ix.size;
      const start = (q.page - 1) * q.page_size;
      const items: ImageItem[] = [];
      for (let k = start; k < Math.min(total, start + q.page_size); k++) {
        const ref = ix.at(positions ? positions[k] : k);
        if (!ref) break;
        const img = await datasets.record(projectId, datasetId, ref);
        items.push({
          id: img.id,
          file: img.file,
          width: img.width,
          height: img.height,
          label: img.label,
          ...truthFields(ds, img),
          split: split === null ? null : ix.subset(ref, split),
        });
      }
      return { items, page: q.page, page_size: q.page_size, total };
    },

    async getImage(projectId: string, datasetId: string, imageId: string): Promise<ImageDetail> {
      const ix = await index(projectId, datasetId);
      const ref = locate(ix, imageId);
      return detail(ix, ref, await datasets.record(projectId, datasetId, ref));
    },

    /** The images before and after one in the dataset's order (the viewer's previous and next). */
    async neighbours(projectId: string, datasetId: string, imageId: string): Promise<{ prev: string | null; next: string | null }> {
      const ix = await index(projectId, datasetId);
      const pos = ix.position(locate(ix, imageId));
      const at = (p: number) => {
        const r = ix.at(p);
        return r ? idAt(r) : null;
      };
      return { prev: at(pos - 1), next: at(pos + 1) };
    },

    /**
     * Sets (or clears, with null) an image's truth, the field its dataset's task takes: `label`
     * (classification; a new label becomes a class), `labels` (multi-label; each must be a class)
     * or `targets` (regression; a finite value for every target); and/or replaces its
     * `annotations`. A truth field another task takes is a VALIDATION_ERROR naming it. One shard
     * and the header are written, whatever the dataset's size.
     */
    async relabelImage(projectId: string, datasetId: string, imageId: string, input: ImageUpdate): Promise<ImageDetail> {
      const body = parseInput(ImageUpdateSchema, input, 'image update');
      await change(projectId, datasetId, async (tx) => {
        const ref = locate(tx.index, imageId);
        const slot = tx.index.shards.indexOf(ref.shard);
        const records = await tx.records(slot);
        applyTruth(tx.header, records[ref.i], body);
        tx.replace(slot, records);
      });
      return service.getImage(projectId, datasetId, imageId);
    },

    /** Removes the image from the dataset and deletes its file and thumbnail. */
    async deleteImage(projectId: string, datasetId: string, imageId: string): Promise<void> {
      await change(projectId, datasetId, async (tx) => {
        const ref = locate(tx.index, imageId);
        const slot = tx.index.shards.indexOf(ref.shard);
        const records = await tx.records(slot);
        const [removed] = records.splice(ref.i, 1);
        tx.replace(slot, records);
        // Files go after the record (the commit), so no record ever points at a missing file.
        tx.trash([removed.file, thumbnailRel(removed.file)]);
      });
    },

    /** Absolute path of the image's original file, checked to be inside the dataset's images/. */
    async imageFilePath(projectId: string, datasetId: string, imageId: string): Promise<string> {
      const ix = await index(projectId, datasetId);
      const img = await datasets.record(projectId, datasetId, locate(ix, imageId));
      return store.datasetFilePath(projectId, datasetId, img.file);
    },

    /** Absolute path of the image's thumbnail (WebP), checked to be inside the dataset's .thumbs/. */
    async thumbnailPath(projectId: string, datasetId: string, imageId: string): Promise<string> {
      const ix = await index(projectId, datasetId);
      const img = await datasets.record(projectId, datasetId, locate(ix, imageId));
      return store.datasetFilePath(projectId, datasetId, thumbnailRel(img.file));
    },

    /**
     * Counts per class for the chart (multi-label: images per label; regression: images with
     * targets per target name), optionally per subset of one split.
     */
    async classHistogram(projectId: string, datasetId: string, split?: string): Promise<ClassHistogram> {
      const ds = await header(projectId, datasetId);
      const s = summarize(projectId, ds, null);
      const labels = Object.keys(s.class_counts).sort();
      const counts = labels.map((l) => s.class_counts[l]);
      if (split === undefined) return { labels, counts, unlabeled: s.unlabeled_count, split: null, subsets: null };
      requireSplit(ds, split);
      const ix = await datasets.index(projectId, datasetId);
      const per = splitSummary(split, ix, (ref) => ix.subset(ref, split)).per_class;
      const subsets = Object.fromEntries(SUBSETS.map((sub) => [sub, labels.map((l) => per[l]?.[sub] ?? 0)])) as Record<Subset, number[]>;
      return { labels, counts, unlabeled: s.unlabeled_count, split, subsets };
    },

    /** Computes a split without saving it (or saves it, unless `preview`), and reports its counts. */
    async createSplit(projectId: string, datasetId: string, input: SplitRequest): Promise<SplitSummary> {
      const req = parseInput(SplitRequestSchema, input, 'split');
      const assign = (ix: DatasetIndex) => {
        const ds = ix.manifest;
        if (ds.status === 'importing') throw conflict('the dataset is still importing; split it when the import is done');
        if (ds.splits.some((s) => s.name === req.name)) throw conflict(`a split named '${req.name}' already exists`);
        const r = splitImages(ix, { ratios: req.ratios, stratify: req.stratify, seed: req.seed });
        const subsetOf = (ref: ImageRef): Subset => r.assignment.get(idAt(ref)) ?? 'none';
        return { r, subsetOf, summary: splitSummary(req.name, ix, subsetOf) };
      };
      if (req.preview) return assign(await index(projectId, datasetId)).summary;
      return change(projectId, datasetId, (tx) => {
        const { r, summary: out } = assign(tx.index);
        const file: SplitFile = { schema_version: 1, name: req.name, train: [], val: [], test: [] };
        for (const [id, sub] of r.assignment) if (sub !== 'none') file[sub].push(id);
        tx.addSplit(file);
        return out;
      });
    },

    /** Same as createSplit with `preview: true`. */
    async previewSplit(projectId: string, datasetId: string, input: SplitRequest): Promise<SplitSummary> {
      return service.createSplit(projectId, datasetId, { ...input, preview: true });
    },

    async listSplits(projectId: string, datasetId: string): Promise<SplitSummary[]> {
      const ix = await index(projectId, datasetId);
      return ix.manifest.splits.map(({ name }) => splitSummary(name, ix, (ref) => ix.subset(ref, name)));
    },

    async getSplit(projectId: string, datasetId: string, name: string): Promise<SplitSummary> {
      const ix = await index(projectId, datasetId);
      requireSplit(ix.manifest, name);
      return splitSummary(name, ix, (ref) => ix.subset(ref, name));
    },

    async deleteSplit(projectId: string, datasetId: string, name: string): Promise<void> {
      if (!SplitNameSchema.safeParse(name).success) throw notFound('split', name);
      await change(projectId, datasetId, (tx) => {
        requireSplit(tx.header, name);
        tx.removeSplit(name);
      });
    },
  };
  return service;
}

export type DatasetsService = ReturnType<typeof createDatasetsService>;
