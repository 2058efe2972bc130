import type { Annotation, DatasetManifest, ImportReport, StoredImage } from '../schemas/dataset.ts';
import { AppError, notFound } from '../kernel/errors.ts';
import { newId } from './ids.ts';
import type { Workspace } from './workspace.ts';
import { openUpload } from './uploads.ts';

/** One accepted image as the import pipeline hands it over (src/datasets/types.ts `ImportedImage`). */
export interface SinkImage {
  /** sha256 of the original bytes, hex. */
  hash: string;
  /** Extension of the sniffed format, without the dot. */
  ext: string;
  buffer: Uint8Array;
  /** WebP thumbnail. */
  thumbnail: Uint8Array;
  width: number;
  height: number;
  label: string | null;
  /** Multi-label: the labels present, when labeled. */
  labels?: string[];
  /** Regression: the target values, when the image has them. */
  targets?: number[];
  annotations?: Annotation[];
  source_path: string;
}

export interface DatasetImportSink {
  addImage(rec: SinkImage): Promise<void>;
  /** The uploaded archive, opened as uploads.ts `openUpload` does. */
  openUpload<T>(file: string, adopt: (fd: number) => Promise<T>): Promise<T>;
  /** Commits the images received so far to the dataset (also done every `flushEvery` images). */
  flush(): Promise<void>;
  /** Same as flush: the worker's last call, after which the main thread finishes the dataset. */
  close(): Promise<void>;
  /** Last flush; the dataset becomes 'ready' with its report and classes. */
  finish(report: ImportReport): Promise<DatasetManifest>;
  /** Last flush; the dataset becomes 'failed' with the error (images stored so far stay). */
  fail(error: { code: string; message: string }): Promise<DatasetManifest>;
}

export interface ImportSinkOptions {
  /** One commit per image would rewrite the last shard per image; batches keep the writes few. */
  flushEvery?: number;
  flushIntervalMs?: number;
}

/**
 * Labels come from folder names, CSV cells and annotation files; dataset.json only stores names a
 * person could have typed (trimmed, no control characters, ≤200), so they are brought into that shape here.
 */
export function normalizeLabel(raw: string | null): string | null {
  if (raw === null) return null;
  const s = raw.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim().slice(0, 200).trim();
  return s === '' ? null : s;
}

/** A multi-label image's labels in stored shape: each normalized, empties dropped, each once. */
export function normalizeLabels(raw: readonly string[]): string[] {
  return [...new Set(raw.map(normalizeLabel).filter((l): l is string => l !== null))];
}

/**
 * Marks an import done: status 'ready', the report stored, and the classes set — the source's
 * declared order first (COCO/YOLO category order matters to users), then any other label present
 * (the header's counts name every label and class an image has; regression's target names aside).
 */
export function applyImportReport(ds: DatasetManifest, report: ImportReport): void {
  const present = ds.counts.class_counts.map(([n]) => n).filter((n) => !ds.target_names.includes(n));
  const declared = report.classes.map(normalizeLabel).filter((c): c is string => c !== null);
  const classes = [...new Set([...declared, ...ds.classes])];
  for (const l of present.sort()) if (!classes.includes(l)) classes.push(l);
  ds.classes = classes;
  ds.status = 'ready';
  ds.import_report = { ...report, classes };
  ds.error = null;
}

/**
 * Where an import job's images land: originals as `images/<hash16>.<ext>`, thumbnails as
 * `.thumbs/<hash16>.webp`, and records appended to the dataset's last shard in batches (one
 * commit per batch: src/storage/datasets.ts). A hash already in the dataset is not added twice.
 */
export function createImportSink(store: Workspace, projectId: string, datasetId: string, opts: ImportSinkOptions = {}): DatasetImportSink {
  const flushEvery = opts.flushEvery ?? 500;
  const flushIntervalMs = opts.flushIntervalMs ?? 2000;
  const file = store.datasetFile(projectId, datasetId);
  let pending: StoredImage[] = [];
  let lastFlush = Date.now();

  /** Appends the pending records (those whose file is not in the dataset yet), then applies `final` to the header. */
  async function commit(final?: (ds: DatasetManifest) => void): Promise<DatasetManifest> {
    const batch = pending;
    pending = [];
    lastFlush = Date.now();
    if (batch.length > 0) {
      await store.datasets.transact(projectId, datasetId, (tx) => {
        const known = new Set<string>();
        const fresh: StoredImage[] = [];
        for (const rec of batch) {
          const stem = rec.hash.slice(0, 16);
          if (known.has(stem) || tx.index.hasStem(stem)) continue;
          known.add(stem);
          fresh.push(rec);
        }
        tx.append(fresh);
      });
    }
    // A second commit: the header's counts include the batch by now, and `final` reads them.
    if (final) await store.datasets.transact(projectId, datasetId, (tx) => final(tx.header));
    const header = await store.datasets.header(projectId, datasetId);
    if (header === null) throw notFound('dataset', datasetId);
    return header;
  }

  return {
    openUpload,
    async addImage(rec) {
      if (!/^[0-9a-f]{16,128}$/.test(rec.hash)) throw new AppError('INTERNAL', `bad image hash: ${rec.hash}`);
      if (!/^[a-z0-9]{2,5}$/.test(rec.ext)) throw new AppError('INTERNAL', `bad image extension: ${rec.ext}`);
      const stem = rec.hash.slice(0, 16);
      // The dataset may have been deleted while importing: stop instead of recreating its folder.
      if (!(await store.exists(file))) throw notFound('dataset', datasetId);
      const rel = await store.writeImage(projectId, datasetId, `${stem}.${rec.ext}`, rec.buffer);
      await store.writeThumb(projectId, datasetId, `${stem}.webp`, rec.thumbnail);
      pending.push({
        id: newId('img'),
        file: rel,
        width: rec.width,
        height: rec.height,
        hash: rec.hash,
        label: normalizeLabel(rec.label),
        ...(rec.labels !== undefined ? { labels: normalizeLabels(rec.labels) } : {}),
        ...(rec.targets !== undefined ? { targets: [...rec.targets] } : {}),
        ...(rec.annotations && rec.annotations.length
          ? { annotations: rec.annotations.map((a) => ({ ...a, category: normalizeLabel(a.category) ?? 'unnamed' })) }
          : {}),
        source: rec.source_path,
      });
      if (pending.length >= flushEvery || Date.now() - lastFlush >= flushIntervalMs) await commit();
    },

    async flush() {
      if (pending.length) await commit();
    },

    async close() {
      if (pending.length) await commit();
    },

    async finish(report) {
      return commit((ds) => applyImportReport(ds, report));
    },

    async fail(error) {
      return commit((ds) => {
        ds.status = 'failed';
        ds.error = { code: error.code, message: error.message };
      });
    },
  };
}
