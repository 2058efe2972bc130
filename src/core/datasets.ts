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
} from '../schemas/dataset.ts';
import { ProjectDoc } from '../schemas/project.ts';
import { computeSplit } from '../datasets/splits.ts';
import { newId } from '../storage/ids.ts';
import { applyImportReport } from '../storage/import-sink.ts';
import type { Workspace } from '../storage/workspace.ts';
import { conflict, notFound, validation } from './errors.ts';
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
}
const derivedCache = new WeakMap<DatasetFile, Derived>();

function derive(ds: DatasetFile): Derived {
  let d = derivedCache.get(ds);
  if (d) return d;
  const classCounts: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const c of ds.classes) classCounts[c] = 0;
  let unlabeled = 0;
  const byId = new Map<string, number>();
  ds.images.forEach((img, i) => {
    byId.set(img.id, i);
    if (img.label === null) unlabeled += 1;
    else classCounts[img.label] = (classCounts[img.label] ?? 0) + 1;
  });
  d = { classCounts: { ...classCounts }, unlabeled, byId };
  derivedCache.set(ds, d);
  return d;
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
    image_count: ds.images.length,
    class_counts: { ...d.classCounts },
    unlabeled_count: d.unlabeled,
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
    annotations: img.annotations ? structuredClone(img.annotations) : [],
    source: img.source ?? null,
    splits,
  };
}

/** Counts of one split (by its column in the images' split lists). */
function splitSummary(name: string, images: readonly { label: string | null; subset: Subset }[]): SplitSummary {
  const counts = zeroCounts();
  // Null prototype: a class may be called `__proto__`.
  const per_class = Object.create(null) as Record<string, SubsetCounts>;
  for (const { label, subset } of images) {
    counts[subset] += 1;
    if (label === null) continue;
    (per_class[label] ??= zeroCounts())[subset] += 1;
  }
  return { name, counts, per_class };
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
      await requireProject(projectId);
      const now = new Date().toISOString();
      const ds: DatasetFile = {
        schema_version: 1,
        id: newId('ds'),
        name: body.name,
        task: body.task,
        status: 'importing',
        classes: [],
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
     * image and filtered by `subset` (default: the first split); `label` filters by class.
     */
    async listImages(projectId: string, datasetId: string, query: ImageQuery): Promise<ImagePage> {
      const q = parseInput(ImageQuerySchema, query, 'image query');
      const ds = await load(projectId, datasetId);
      let col = -1;
      if (q.split !== undefined) col = splitIndex(ds, q.split);
      else if (ds.split_names.length > 0) col = 0;
      if (q.subset !== undefined && col < 0) throw validation('subset filter needs a split, and this dataset has none');
      const keep = (img: ImageRecord) =>
        (q.label === undefined || img.label === q.label) && (q.subset === undefined || img.split[col] === q.subset);
      const filtered = q.label === undefined && q.subset === undefined ? ds.images : ds.images.filter(keep);
      const start = (q.page - 1) * q.page_size;
      const items: ImageItem[] = filtered.slice(start, start + q.page_size).map((img) => ({
        id: img.id,
        file: img.file,
        width: img.width,
        height: img.height,
        label: img.label,
        split: col >= 0 ? img.split[col] : null,
      }));
      return { items, page: q.page, page_size: q.page_size, total: filtered.length };
    },

    async getImage(projectId: string, datasetId: string, imageId: string): Promise<ImageDetail> {
      const ds = await load(projectId, datasetId);
      return detail(ds, findImage(ds, imageId));
    },

    /** Sets (or clears, with null) an image's label; a new label becomes a class. */
    async relabelImage(projectId: string, datasetId: string, imageId: string, input: ImageUpdate): Promise<ImageDetail> {
      const body = parseInput(ImageUpdateSchema, input, 'image update');
      let out: ImageDetail | undefined;
      await modify(projectId, datasetId, (ds) => {
        const img = ds.images.find((i) => i.id === imageId);
        if (!img) throw notFound('image', imageId);
        img.label = body.label;
        if (body.label !== null && !ds.classes.includes(body.label)) ds.classes = [...ds.classes, body.label].sort();
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

    /** Counts per class for the chart, optionally per subset of one split. */
    async classHistogram(projectId: string, datasetId: string, split?: string): Promise<ClassHistogram> {
      const ds = await load(projectId, datasetId);
      const d = derive(ds);
      const labels = Object.keys(d.classCounts).sort();
      const counts = labels.map((l) => d.classCounts[l]);
      if (split === undefined) return { labels, counts, unlabeled: d.unlabeled, split: null, subsets: null };
      const col = splitIndex(ds, split);
      const at = new Map(labels.map((l, i) => [l, i]));
      const subsets = Object.fromEntries(SUBSETS.map((s) => [s, labels.map(() => 0)])) as Record<Subset, number[]>;
      for (const img of ds.images) if (img.label !== null) subsets[img.split[col]][at.get(img.label) ?? 0] += 1;
      return { labels, counts, unlabeled: d.unlabeled, split, subsets };
    },

    /** Computes a split without saving it (or saves it, unless `preview`), and reports its counts. */
    async createSplit(projectId: string, datasetId: string, input: SplitRequest): Promise<SplitSummary> {
      const req = parseInput(SplitRequestSchema, input, 'split');
      const assign = (ds: DatasetFile) => {
        if (ds.status === 'importing') throw conflict('the dataset is still importing; split it when the import is done');
        if (ds.split_names.includes(req.name)) throw conflict(`a split named '${req.name}' already exists`);
        const r = computeSplit(ds.images.map((i) => ({ id: i.id, label: i.label, key: i.hash })), { ratios: req.ratios, stratify: req.stratify, seed: req.seed });
        return ds.images.map((img) => ({ img, subset: r.assignment.get(img.id) ?? 'none' }));
      };
      if (req.preview) {
        const rows = assign(await load(projectId, datasetId));
        return splitSummary(req.name, rows.map(({ img, subset }) => ({ label: img.label, subset })));
      }
      let summary: SplitSummary | undefined;
      await modify(projectId, datasetId, (ds) => {
        const rows = assign(ds);
        ds.split_names.push(req.name);
        for (const { img, subset } of rows) img.split.push(subset);
        summary = splitSummary(req.name, rows.map(({ img, subset }) => ({ label: img.label, subset })));
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
      return ds.split_names.map((name, col) => splitSummary(name, ds.images.map((img) => ({ label: img.label, subset: img.split[col] }))));
    },

    async getSplit(projectId: string, datasetId: string, name: string): Promise<SplitSummary> {
      const ds = await load(projectId, datasetId);
      const col = splitIndex(ds, name);
      return splitSummary(name, ds.images.map((img) => ({ label: img.label, subset: img.split[col] })));
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
