import {
  DatasetCreateSchema,
  DatasetDoc,
  DatasetUpdateSchema,
  ImageQuerySchema,
  ImageUpdateSchema,
  SplitNameSchema,
  SplitRequestSchema,
  type ClassHistogram,
  type DatasetCreate,
  type DatasetFile,
  type DatasetSummary,
  type DatasetUpdate,
  type ImageDetail,
  type ImageItem,
  type ImagePage,
  type ImageQuery,
  type ImageRecord,
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
import { applyImportReport, normalizeLabels } from '../storage/import-sink.ts';
import type { Workspace } from '../storage/workspace.ts';
import { conflict, notFound, validation } from '../kernel/errors.ts';
import { parseInput } from './projects.ts';

const SUBSETS: Subset[] = ['train', 'val', 'test', 'none'];
const zeroCounts = (): SubsetCounts => ({ train: 0, val: 0, test: 0, none: 0 });

/**
 * What every page request needs but no file stores: counts per class and an id → index map.
 * Keyed by the parsed document, which the workspace cache keeps until the file changes, so a
 * 10,000-image dataset is counted once per change rather than once per request.
 */
interface Derived {
  classCounts: Record<string, number>;
  unlabeled: number;
  byId: Map<string, number>;
  /** Multi-label: index k = labeled images with k labels. */
  cardinality?: number[];
  /** Regression: per target name. */
  targetStats?: Record<string, TargetStats>;
}
const derivedCache = new WeakMap<DatasetFile, Derived>();

/** Whether an image is labeled, the way its dataset's task labels images. */
function isLabeled(img: ImageRecord, shape: LabelShape): boolean {
  return shape === 'single' ? img.label !== null : shape === 'multi' ? img.labels !== undefined : img.targets !== undefined;
}

/** The names an image counts under: its class, its labels, or (regression) every target name when it has targets. */
function countedNames(img: ImageRecord, shape: LabelShape, targetNames: readonly string[]): readonly string[] {
  if (shape === 'single') return img.label === null ? [] : [img.label];
  if (shape === 'multi') return img.labels ?? [];
  return img.targets === undefined ? [] : targetNames;
}

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

function derive(ds: DatasetFile): Derived {
  let d = derivedCache.get(ds);
  if (d) return d;
  const shape = labelShape(ds.task);
  const classCounts: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const c of shape === 'targets' ? ds.target_names : ds.classes) classCounts[c] = 0;
  let unlabeled = 0;
  const byId = new Map<string, number>();
  const cardinality: number[] = [0];
  const values: number[][] = ds.target_names.map(() => []);
  ds.images.forEach((img, i) => {
    byId.set(img.id, i);
    if (!isLabeled(img, shape)) {
      unlabeled += 1;
      return;
    }
    for (const name of countedNames(img, shape, ds.target_names)) classCounts[name] = (classCounts[name] ?? 0) + 1;
    if (shape === 'multi') {
      const k = img.labels?.length ?? 0;
      while (cardinality.length <= k) cardinality.push(0);
      cardinality[k] += 1;
    }
    if (shape === 'targets') img.targets?.forEach((v, j) => values[j]?.push(v));
  });
  d = { classCounts: { ...classCounts }, unlabeled, byId };
  if (shape === 'multi') d.cardinality = cardinality;
  if (shape === 'targets') d.targetStats = Object.fromEntries(ds.target_names.map((n, j) => [n, targetStats(values[j])]));
  derivedCache.set(ds, d);
  return d;
}

/** Target name → value, for the API (names are the dataset's; values in stored order). */
function targetRecord(names: readonly string[], values: readonly number[]): Record<string, number> {
  return Object.fromEntries(names.map((n, j) => [n, values[j]]));
}

/** An image's task-specific truth for the grid and the detail: `labels` or `targets`, when present. */
function truthFields(ds: DatasetFile, img: ImageRecord): { labels?: string[]; targets?: Record<string, number> } {
  const shape = labelShape(ds.task);
  if (shape === 'multi' && img.labels !== undefined) return { labels: [...img.labels] };
  if (shape === 'targets' && img.targets !== undefined) return { targets: targetRecord(ds.target_names, img.targets) };
  return {};
}

function summarize(projectId: string, ds: DatasetFile): DatasetSummary {
  const d = derive(ds);
  return {
    id: ds.id,
    project_id: projectId,
    name: ds.name,
    task: ds.task,
    status: ds.status,
    classes: [...ds.classes],
    target_names: [...ds.target_names],
    image_count: ds.images.length,
    class_counts: { ...d.classCounts },
    unlabeled_count: d.unlabeled,
    ...(d.cardinality ? { label_cardinality: [...d.cardinality] } : {}),
    ...(d.targetStats ? { target_stats: structuredClone(d.targetStats) } : {}),
    split_names: [...ds.split_names],
    import_report: ds.import_report,
    error: ds.error,
    created_at: ds.created_at,
    updated_at: ds.updated_at,
  };
}

function detail(ds: DatasetFile, img: ImageRecord): ImageDetail {
  const splits = Object.create(null) as Record<string, Subset>;
  ds.split_names.forEach((n, i) => (splits[n] = img.split[i]));
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
 * Counts of one split (by its column in the images' split lists): per class, per label
 * (multi-label: an image counts under each of its labels) or per target name (regression).
 */
function splitSummary(name: string, ds: DatasetFile, images: readonly { img: ImageRecord; subset: Subset }[]): SplitSummary {
  const shape = labelShape(ds.task);
  const counts = zeroCounts();
  // Null prototype: a class may be called `__proto__`.
  const per_class = Object.create(null) as Record<string, SubsetCounts>;
  for (const { img, subset } of images) {
    counts[subset] += 1;
    for (const label of countedNames(img, shape, ds.target_names)) (per_class[label] ??= zeroCounts())[subset] += 1;
  }
  return { name, counts, per_class };
}

/** The split of a dataset's images by its task: per class, iteratively per label, or by target quantile bins. */
function splitImages(ds: DatasetFile, opts: { ratios: SplitRequest['ratios']; stratify: boolean; seed: number }): SplitResult {
  const shape = labelShape(ds.task);
  if (shape === 'multi') return computeMultilabelSplit(ds.images.map((i) => ({ id: i.id, labels: i.labels ?? null, key: i.hash })), opts);
  if (shape === 'targets') return computeRegressionSplit(ds.images.map((i) => ({ id: i.id, value: i.targets?.[0] ?? null, key: i.hash })), opts);
  return computeSplit(ds.images.map((i) => ({ id: i.id, label: i.label, key: i.hash })), opts);
}

/** The one split column of every image, for splitSummary. */
const column = (ds: DatasetFile, col: number) => ds.images.map((img) => ({ img, subset: img.split[col] }));

/** The label/labels/targets of an image update, checked against the dataset's task and names. */
function applyTruth(ds: DatasetFile, img: ImageRecord, body: ReturnType<typeof ImageUpdateSchema.parse>): void {
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

/** Thumbnails are `.thumbs/<stem>.webp` beside `images/<stem>.<ext>` (see storage/import-sink.ts). */
export function thumbnailRel(file: string): string {
  const stem = file.slice('images/'.length).replace(/\.[^.]+$/, '');
  return `.thumbs/${stem}.webp`;
}

/** Datasets of a project: the summary, the image list with filters, relabel/delete, and splits. */
export function createDatasetsService(store: Workspace) {
  const fileOf = (projectId: string, datasetId: string) => store.datasetFile(projectId, datasetId);

  async function requireProject(projectId: string): Promise<void> {
    if ((await store.read(ProjectDoc, store.projectFile(projectId))) === null) throw notFound('project', projectId);
  }

  async function load(projectId: string, datasetId: string): Promise<DatasetFile> {
    const ds = await store.read(DatasetDoc, fileOf(projectId, datasetId));
    if (ds === null) {
      await requireProject(projectId);
      throw notFound('dataset', datasetId);
    }
    return ds;
  }

  /** Read-modify-write of dataset.json under its lock; `fn` mutates its private copy. */
  async function modify(projectId: string, datasetId: string, fn: (ds: DatasetFile) => void): Promise<DatasetFile> {
    await requireProject(projectId);
    return store.modify(DatasetDoc, fileOf(projectId, datasetId), 'dataset', datasetId, (ds) => {
      fn(ds);
      ds.updated_at = new Date().toISOString();
      return ds;
    });
  }

  function findImage(ds: DatasetFile, imageId: string): ImageRecord {
    const i = derive(ds).byId.get(imageId);
    if (i === undefined) throw notFound('image', imageId);
    return ds.images[i];
  }

  function splitIndex(ds: DatasetFile, name: string): number {
    const i = ds.split_names.indexOf(name);
    if (i < 0) throw notFound('split', name);
    return i;
  }

  const service = {
    async list(projectId: string): Promise<DatasetSummary[]> {
      await requireProject(projectId);
      const out: DatasetSummary[] = [];
      for (const id of await store.listDirs(store.datasetsDir(projectId))) {
        let ds: DatasetFile | null;
        try {
          ds = await store.read(DatasetDoc, fileOf(projectId, id));
        } catch {
          continue;
        }
        if (ds) out.push(summarize(projectId, ds));
      }
      return out.sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
    },

    async get(projectId: string, datasetId: string): Promise<DatasetSummary> {
      return summarize(projectId, await load(projectId, datasetId));
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
      const ds: DatasetFile = {
        schema_version: 1,
        id: newId('ds'),
        name: body.name,
        task: body.task,
        status: 'importing',
        classes: [],
        target_names: targetNames,
        split_names: [],
        images: [],
        import_report: null,
        error: null,
        created_at: now,
        updated_at: now,
      };
      return summarize(projectId, await store.write(DatasetDoc, fileOf(projectId, ds.id), ds));
    },

    async update(projectId: string, datasetId: string, input: DatasetUpdate): Promise<DatasetSummary> {
      const body = parseInput(DatasetUpdateSchema, input, 'dataset update');
      const ds = await modify(projectId, datasetId, (d) => {
        if (body.name !== undefined) d.name = body.name;
      });
      return summarize(projectId, ds);
    },

    /** Deletes the dataset folder: dataset.json, images and thumbnails. */
    async remove(projectId: string, datasetId: string): Promise<void> {
      await load(projectId, datasetId);
      await store.removeTree(store.datasetDir(projectId, datasetId));
    },

    /** Marks an import done (status 'ready', report, classes); the images came through the import sink. */
    async finishImport(projectId: string, datasetId: string, report: ImportReport): Promise<DatasetSummary> {
      const r = parseInput(ImportReportSchema, report, 'import report');
      return summarize(projectId, await modify(projectId, datasetId, (d) => applyImportReport(d, r)));
    },

    /** Marks an import as failed (the job died or was cancelled); images already stored stay. */
    async markFailed(projectId: string, datasetId: string, error: { code: string; message: string }): Promise<DatasetSummary> {
      const ds = await modify(projectId, datasetId, (d) => {
        d.status = 'failed';
        d.error = { code: error.code, message: error.message };
      });
      return summarize(projectId, ds);
    },

    /**
     * One page of images in stored order. `split` picks the split whose subset is reported per
     * image and filtered by `subset` (default: the first split); `label` filters by class (multi-label:
     * images that have that label among theirs; a regression dataset has no labels to filter by).
     */
    async listImages(projectId: string, datasetId: string, query: ImageQuery): Promise<ImagePage> {
      const q = parseInput(ImageQuerySchema, query, 'image query');
      const ds = await load(projectId, datasetId);
      let col = -1;
      if (q.split !== undefined) col = splitIndex(ds, q.split);
      else if (ds.split_names.length > 0) col = 0;
      if (q.subset !== undefined && col < 0) throw validation('subset filter needs a split, and this dataset has none');
      const shape = labelShape(ds.task);
      if (q.label !== undefined && shape === 'targets') throw validation(`label: a ${ds.task} dataset has no labels to filter by`);
      const hasLabel = (img: ImageRecord, label: string) => (shape === 'multi' ? (img.labels?.includes(label) ?? false) : img.label === label);
      const keep = (img: ImageRecord) =>
        (q.label === undefined || hasLabel(img, q.label)) && (q.subset === undefined || img.split[col] === q.subset);
      const filtered = q.label === undefined && q.subset === undefined ? ds.images : ds.images.filter(keep);
      const start = (q.page - 1) * q.page_size;
      const items: ImageItem[] = filtered.slice(start, start + q.page_size).map((img) => ({
        id: img.id,
        file: img.file,
        width: img.width,
        height: img.height,
        label: img.label,
        ...truthFields(ds, img),
        split: col >= 0 ? img.split[col] : null,
      }));
      return { items, page: q.page, page_size: q.page_size, total: filtered.length };
    },

    async getImage(projectId: string, datasetId: string, imageId: string): Promise<ImageDetail> {
      const ds = await load(projectId, datasetId);
      return detail(ds, findImage(ds, imageId));
    },

    /** The images before and after one in the dataset's order (the viewer's previous and next). */
    async neighbours(projectId: string, datasetId: string, imageId: string): Promise<{ prev: string | null; next: string | null }> {
      const ds = await load(projectId, datasetId);
      const i = ds.images.findIndex((img) => img.id === imageId);
      if (i < 0) throw notFound('image', imageId);
      return { prev: ds.images[i - 1]?.id ?? null, next: ds.images[i + 1]?.id ?? null };
    },

    /**
     * Sets (or clears, with null) an image's truth, the field its dataset's task takes: `label`
     * (classification; a new label becomes a class), `labels` (multi-label; each must be a class)
     * or `targets` (regression; a finite value for every target). A field another task takes is a
     * VALIDATION_ERROR naming it.
     */
    async relabelImage(projectId: string, datasetId: string, imageId: string, input: ImageUpdate): Promise<ImageDetail> {
      const body = parseInput(ImageUpdateSchema, input, 'image update');
      let out: ImageDetail | undefined;
      await modify(projectId, datasetId, (ds) => {
        const img = ds.images.find((i) => i.id === imageId);
        if (!img) throw notFound('image', imageId);
        applyTruth(ds, img, body);
        out = detail(ds, img);
      });
      if (!out) throw notFound('image', imageId);
      return out;
    },

    /** Removes the image from the dataset and deletes its file and thumbnail. */
    async deleteImage(projectId: string, datasetId: string, imageId: string): Promise<void> {
      let removed: ImageRecord | undefined;
      await modify(projectId, datasetId, (ds) => {
        const i = ds.images.findIndex((img) => img.id === imageId);
        if (i < 0) throw notFound('image', imageId);
        [removed] = ds.images.splice(i, 1);
      });
      // Files go after the record, so no record ever points at a missing file.
      if (removed) {
        await store.removeDatasetFile(projectId, datasetId, removed.file);
        await store.removeDatasetFile(projectId, datasetId, thumbnailRel(removed.file));
      }
    },

    /** Absolute path of the image's original file, checked to be inside the dataset's images/. */
    async imageFilePath(projectId: string, datasetId: string, imageId: string): Promise<string> {
      const ds = await load(projectId, datasetId);
      return store.datasetFilePath(projectId, datasetId, findImage(ds, imageId).file);
    },

    /** Absolute path of the image's thumbnail (WebP), checked to be inside the dataset's .thumbs/. */
    async thumbnailPath(projectId: string, datasetId: string, imageId: string): Promise<string> {
      const ds = await load(projectId, datasetId);
      return store.datasetFilePath(projectId, datasetId, thumbnailRel(findImage(ds, imageId).file));
    },

    /**
     * Counts per class for the chart (multi-label: images per label; regression: images with
     * targets per target name), optionally per subset of one split.
     */
    async classHistogram(projectId: string, datasetId: string, split?: string): Promise<ClassHistogram> {
      const ds = await load(projectId, datasetId);
      const d = derive(ds);
      const shape = labelShape(ds.task);
      const labels = Object.keys(d.classCounts).sort();
      const counts = labels.map((l) => d.classCounts[l]);
      if (split === undefined) return { labels, counts, unlabeled: d.unlabeled, split: null, subsets: null };
      const col = splitIndex(ds, split);
      const at = new Map(labels.map((l, i) => [l, i]));
      const subsets = Object.fromEntries(SUBSETS.map((s) => [s, labels.map(() => 0)])) as Record<Subset, number[]>;
      for (const img of ds.images) for (const name of countedNames(img, shape, ds.target_names)) subsets[img.split[col]][at.get(name) ?? 0] += 1;
      return { labels, counts, unlabeled: d.unlabeled, split, subsets };
    },

    /** Computes a split without saving it (or saves it, unless `preview`), and reports its counts. */
    async createSplit(projectId: string, datasetId: string, input: SplitRequest): Promise<SplitSummary> {
      const req = parseInput(SplitRequestSchema, input, 'split');
      const assign = (ds: DatasetFile) => {
        if (ds.status === 'importing') throw conflict('the dataset is still importing; split it when the import is done');
        if (ds.split_names.includes(req.name)) throw conflict(`a split named '${req.name}' already exists`);
        const r = splitImages(ds, { ratios: req.ratios, stratify: req.stratify, seed: req.seed });
        return ds.images.map((img) => ({ img, subset: r.assignment.get(img.id) ?? ('none' as const) }));
      };
      if (req.preview) {
        const ds = await load(projectId, datasetId);
        return splitSummary(req.name, ds, assign(ds));
      }
      let summary: SplitSummary | undefined;
      await modify(projectId, datasetId, (ds) => {
        const rows = assign(ds);
        ds.split_names.push(req.name);
        for (const { img, subset } of rows) img.split.push(subset);
        summary = splitSummary(req.name, ds, rows);
      });
      if (!summary) throw notFound('dataset', datasetId);
      return summary;
    },

    /** Same as createSplit with `preview: true`. */
    async previewSplit(projectId: string, datasetId: string, input: SplitRequest): Promise<SplitSummary> {
      return service.createSplit(projectId, datasetId, { ...input, preview: true });
    },

    async listSplits(projectId: string, datasetId: string): Promise<SplitSummary[]> {
      const ds = await load(projectId, datasetId);
      return ds.split_names.map((name, col) => splitSummary(name, ds, column(ds, col)));
    },

    async getSplit(projectId: string, datasetId: string, name: string): Promise<SplitSummary> {
      const ds = await load(projectId, datasetId);
      const col = splitIndex(ds, name);
      return splitSummary(name, ds, column(ds, col));
    },

    async deleteSplit(projectId: string, datasetId: string, name: string): Promise<void> {
      if (!SplitNameSchema.safeParse(name).success) throw notFound('split', name);
      await modify(projectId, datasetId, (ds) => {
        const col = splitIndex(ds, name);
        ds.split_names.splice(col, 1);
        for (const img of ds.images) img.split.splice(col, 1);
      });
    },
  };
  return service;
}

export type DatasetsService = ReturnType<typeof createDatasetsService>;
