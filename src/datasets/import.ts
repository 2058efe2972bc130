import { AppError } from '../kernel/errors.ts';
import { contentHash } from './hash.ts';
import { probeImage, type ProbeResult } from './image.ts';
import { scanSource } from './sources/index.ts';
import { checkSourceFitsTask } from './task-fit.ts';
import { makeThumbnail, NEAR_CONSTANT_STDEV, thumbnailSpread } from './thumbnail.ts';
import {
  DEFAULT_IMPORT_LIMITS,
  ImportSourceSchema,
  SkipError,
  labelShape,
  type Annotation,
  type DatasetTask,
  type ImportLimits,
  type ImportProgress,
  type ImportReport,
  type ImportSink,
  type ImportSource,
  type ScanItem,
  type SkippedFile,
  type FlaggedFile,
} from './types.ts';

export {
  DEFAULT_IMPORT_LIMITS,
  ImportSourceSchema,
  type ImportLimits,
  type ImportProgress,
  type ImportReport,
  type ImportSink,
  type ImportSource,
  type ImportedImage,
  type SkippedFile,
  type SkipReason,
} from './types.ts';

export interface ImportOptions {
  signal?: AbortSignal;
  onProgress?(p: ImportProgress): void;
  limits?: Partial<ImportLimits>;
  /**
   * The dataset's task: what an image's truth is (a label, a set of labels, target values; see
   * `labelShape`) and so what a many-category COCO/YOLO image is (`ambiguous` for classification).
   * Default classification.
   */
  task?: DatasetTask;
}

function scaleAnnotations(annotations: Annotation[], width: number, height: number): Annotation[] {
  return annotations.map((a) => {
    const out: Annotation = { category: a.category };
    if (a.bbox) out.bbox = [a.bbox[0] * width, a.bbox[1] * height, a.bbox[2] * width, a.bbox[3] * height];
    if (a.segmentation) out.segmentation = a.segmentation.map((poly) => poly.map((v, i) => v * (i % 2 === 0 ? width : height)));
    return out;
  });
}

/**
 * Imports every image a source yields into the sink: scan, then a few images at a time (sharp is
 * multi-threaded itself) read → sniff/probe → hash (duplicates by content) → thumbnail (a full
 * decode, which catches truncated files) → sink. A bad file is skipped with its reason; only a bad
 * source as a whole (not a zip, a bomb, a missing folder) or a sink failure throws. The signal
 * stops the import between images.
 */
export async function runImport(source: ImportSource, sink: ImportSink, opts: ImportOptions = {}): Promise<ImportReport> {
  const started = performance.now();
  const checked = ImportSourceSchema.safeParse(source);
  if (!checked.success) throw new AppError('VALIDATION_ERROR', `invalid import source: ${checked.error.message}`);
  const parsed = checked.data;
  const limits: ImportLimits = { ...DEFAULT_IMPORT_LIMITS, ...opts.limits };
  const signal = opts.signal;
  signal?.throwIfAborted();
  const task = opts.task ?? 'classification';
  // The service checked the source kind against the registry; the options are checked again here.
  checkSourceFitsTask(task, parsed, null);
  const shape = labelShape(task);
  const scan = await scanSource(parsed, { task, limits, signal, openUpload: (file, adopt) => sink.openUpload(file, adopt) });
  try {
    const skipped: SkippedFile[] = [...scan.skipped];
    // hash → the file that claimed it and whether it made it in: only a copy of an imported file is
    // a duplicate; a copy of a file that failed to import is tried (and reported) on its own.
    const claims = new Map<string, { file: string; ok: Promise<boolean> }>();
    const labels = new Set<string>();
    let imported = 0;
    const flagged: FlaggedFile[] = [];
    let duplicates = 0;
    let done = 0;
    const total = scan.items.length + scan.skipped.length;
    const report = () => opts.onProgress?.({ done: done + scan.skipped.length, total, imported, skipped: skipped.length });
    report();

    // Claims are made in scan order (each item waits for the one before it to claim), so which of
    // two identical files is kept does not depend on which one a thread happened to finish first.
    let claimGate: Promise<void> = Promise.resolve();

    const processOne = async (item: ScanItem): Promise<void> => {
      const previous = claimGate;
      let openGate: () => void = () => {};
      claimGate = new Promise<void>((r) => (openGate = r));
      try {
        const buffer = await item.read();
        const probe = await probeImage(buffer, { maxPixels: limits.maxPixels });
        const hash = contentHash(buffer);
        await previous;
        const prior = claims.get(hash);
        let settle: (ok: boolean) => void = () => {};
        const mine = { file: item.file, ok: new Promise<boolean>((r) => (settle = r)) };
        if (prior === undefined) claims.set(hash, mine);
        openGate();
        if (prior !== undefined) {
          if (await prior.ok) {
            duplicates += 1;
            throw new SkipError('duplicate', `same content as ${prior.file}`);
          }
          claims.set(hash, mine);
        }
        try {
          await addOne(item, buffer, probe, hash);
          settle(true);
        } catch (e) {
          settle(false);
          throw e;
        }
      } catch (e) {
        if (!(e instanceof SkipError)) throw e;
        skipped.push({ file: item.file, reason: e.reason, ...(e.detail !== undefined ? { detail: e.detail } : {}) });
      } finally {
        openGate();
        done += 1;
        report();
      }
    };

    const addOne = async (item: ScanItem, buffer: Buffer, probe: ProbeResult, hash: string): Promise<void> => {
      const thumbnail = await makeThumbnail(buffer, probe.format, { maxPixels: limits.maxPixels });
      // Imported, but worth a look: an image of one flat colour (a "not found" placeholder, a
      // blank frame) teaches nothing and often is not what the person meant to import.
      const spread = await thumbnailSpread(thumbnail);
      if (spread < NEAR_CONSTANT_STDEV) flagged.push({ file: item.file, reason: 'near_constant', detail: `every pixel about the same colour (σ ${spread.toFixed(1)} of 255)` });
      const annotations =
        item.annotations && item.normalized ? scaleAnnotations(item.annotations, probe.width, probe.height) : item.annotations;
      await sink.addImage({
        hash,
        ext: probe.ext,
        buffer,
        thumbnail,
        width: probe.width,
        height: probe.height,
        format: probe.format,
        label: shape === 'single' ? item.label : null,
        ...(shape === 'multi' && item.labels !== undefined ? { labels: item.labels } : {}),
        ...(shape === 'targets' && item.targets !== undefined ? { targets: item.targets } : {}),
        ...(annotations && annotations.length > 0 ? { annotations } : {}),
        source_path: item.file,
      });
      imported += 1;
      if (shape === 'single' && item.label !== null) labels.add(item.label);
      if (shape === 'multi') for (const l of item.labels ?? []) labels.add(l);
    };

    let next = 0;
    let failed = false;
    const worker = async () => {
      try {
        while (next < scan.items.length && !failed) {
          signal?.throwIfAborted();
          await processOne(scan.items[next++]);
        }
      } catch (e) {
        failed = true;
        throw e;
      }
    };
    const concurrency = Math.max(1, Math.min(limits.concurrency, scan.items.length));
    // allSettled: the scan is closed only once no worker still reads from it.
    const outcomes = await Promise.allSettled(Array.from({ length: concurrency }, worker));
    const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failure !== undefined) throw failure.reason;

    skipped.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
    return {
      imported,
      skipped,
      duplicates,
      flagged: flagged.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0)),
      classes: shape === 'targets' ? [] : (scan.classes ?? [...labels].sort()),
      elapsed_ms: Math.round(performance.now() - started),
    };
  } finally {
    await scan.close();
  }
}
