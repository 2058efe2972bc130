import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { threadId } from 'node:worker_threads';
import type { DocType } from '../schemas/common.ts';
import { DatasetIdSchema, JobIdSchema, ProjectIdSchema } from '../schemas/common.ts';
import { StudioDoc, type StudioFile } from '../schemas/studio.ts';
import { JobDoc, type JobFile } from '../schemas/job.ts';
import type { DatasetFile } from '../schemas/dataset.ts';
import { DatasetStore } from './datasets.ts';
import { AppError, notFound } from '../kernel/errors.ts';
import { writeFileAtomic } from './atomic.ts';
import { removeOrphanTemps } from './cleanup.ts';
import { openRead, readHead, readWhole, writeNewFrom } from './files.ts';
import { DocCache } from './json-doc.ts';
import { DEFAULT_LOCK_OPTIONS, withFileLock, type LockOptions } from './lock.ts';
import { isInside, realpathInside, resolveInside } from './safe-path.ts';

export interface WorkspaceOptions {
  lock?: LockOptions;
}

type Versioned = { schema_version: number };

/** Ids are checked against their pattern before any path join: an id can never carry `/` or `..`. */
function checkId(schema: typeof ProjectIdSchema, id: string, what: string): string {
  if (!schema.safeParse(id).success) throw notFound(what, id);
  return id;
}

/**
 * The workspace folder, and the only object that touches it. Layout (plan/storage.md):
 *   studio.json · projects/<pid>/project.json · projects/<pid>/datasets/<did>/{dataset.json, images/, .thumbs/}
 *   jobs/<job-id>.json · tmp/ (uploads and scratch folders)
 * JSON goes through `read`/`write`/`update` (atomic, versioned, validated, locked, cached).
 */
export class Workspace {
  readonly root: string;
  private readonly cache = new DocCache();
  /** Datasets: header, shards, splits and the in-memory index (src/storage/datasets.ts). */
  readonly datasets: DatasetStore = new DatasetStore(this);
  private readonly lockOptions: LockOptions;
  /** The workspace's real location, resolved on first need (see `insideReal`). */
  private realRoot: Promise<string> | undefined;

  constructor(root: string, opts: WorkspaceOptions = {}) {
    this.root = path.resolve(root);
    this.lockOptions = opts.lock ?? DEFAULT_LOCK_OPTIONS;
  }

  // ── paths ────────────────────────────────────────────────────────────────────────────────
  studioFile(): string {
    return path.join(this.root, 'studio.json');
  }
  projectsDir(): string {
    return path.join(this.root, 'projects');
  }
  projectDir(projectId: string): string {
    return path.join(this.projectsDir(), checkId(ProjectIdSchema, projectId, 'project'));
  }
  projectFile(projectId: string): string {
    return path.join(this.projectDir(projectId), 'project.json');
  }
  datasetsDir(projectId: string): string {
    return path.join(this.projectDir(projectId), 'datasets');
  }
  datasetDir(projectId: string, datasetId: string): string {
    return path.join(this.datasetsDir(projectId), checkId(DatasetIdSchema, datasetId, 'dataset'));
  }
  datasetFile(projectId: string, datasetId: string): string {
    return path.join(this.datasetDir(projectId, datasetId), 'dataset.json');
  }
  imagesDir(projectId: string, datasetId: string): string {
    return path.join(this.datasetDir(projectId, datasetId), 'images');
  }
  thumbsDir(projectId: string, datasetId: string): string {
    return path.join(this.datasetDir(projectId, datasetId), '.thumbs');
  }
  jobsDir(): string {
    return path.join(this.root, 'jobs');
  }
  jobFile(jobId: string): string {
    return path.join(this.jobsDir(), `${checkId(JobIdSchema, jobId, 'job')}.json`);
  }
  tmpDir(): string {
    return path.join(this.root, 'tmp');
  }

  // ── JSON documents ───────────────────────────────────────────────────────────────────────
  /** The parsed document, or null when the file does not exist. The value is shared: do not mutate it. */
  async read<T extends Versioned>(doc: DocType<T>, file: string): Promise<T | null> {
    return this.cache.read(doc, this.inside(file));
  }

  /** As `read`, not kept in the document cache (the caller keeps what it needs). */
  async readUncached<T extends Versioned>(doc: DocType<T>, file: string): Promise<T | null> {
    return this.cache.readUncached(doc, this.inside(file));
  }

  /** As `write`, not kept in the document cache; returns the stored value. */
  async writeUncached<T extends Versioned>(doc: DocType<T>, file: string, value: T): Promise<T> {
    const full = this.inside(file);
    await fs.mkdir(path.dirname(full), { recursive: true });
    return this.cache.writeUncached(doc, full, value);
  }

  /** As `read`, but a missing file is NOT_FOUND(`what`, `id`). */
  async get<T extends Versioned>(doc: DocType<T>, file: string, what: string, id?: string): Promise<T> {
    const v = await this.read(doc, file);
    if (v === null) throw notFound(what, id);
    return v;
  }

  /** Atomic replace (temp → fsync → rename → fsync folder), validated against the schema first. */
  async write<T extends Versioned>(doc: DocType<T>, file: string, value: T): Promise<T> {
    const full = this.inside(file);
    await fs.mkdir(path.dirname(full), { recursive: true });
    return this.cache.write(doc, full, value);
  }

  /**
   * Read-modify-write under the file's lock: `fn` gets a private copy of the current document
   * (null when there is none) and returns the new one. Concurrent updates — from this process,
   * a worker thread or another process — are serialized, so none is lost.
   */
  async update<T extends Versioned>(doc: DocType<T>, file: string, fn: (current: T | null) => T | Promise<T>): Promise<T> {
    const full = this.inside(file);
    await fs.mkdir(path.dirname(full), { recursive: true });
    return this.locked(doc, full, fn);
  }

  /**
   * As `update`, but a missing file is NOT_FOUND(`what`, `id`) and `fn` never sees null. Creates
   * no folder: modifying a dataset deleted a moment ago must not bring its folder back.
   */
  async modify<T extends Versioned>(doc: DocType<T>, file: string, what: string, id: string | undefined, fn: (current: T) => T | Promise<T>): Promise<T> {
    const full = this.inside(file);
    try {
      return await this.locked(doc, full, (cur) => {
        if (cur === null) throw notFound(what, id);
        return fn(cur);
      });
    } catch (e) {
      // The lock folder could not be made: the file's folder is gone.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(what, id);
      throw e;
    }
  }

  /** Runs `fn` holding the file's lock (as `update` does), for changes that span several files. */
  async withLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
    return withFileLock(this.inside(file), fn, this.lockOptions);
  }

  private async locked<T extends Versioned>(doc: DocType<T>, full: string, fn: (current: T | null) => T | Promise<T>): Promise<T> {
    return withFileLock(
      full,
      async () => {
        const current = await this.cache.read(doc, full);
        const next = await fn(current === null ? null : structuredClone(current));
        return this.cache.write(doc, full, next);
      },
      this.lockOptions,
    );
  }

  // ── datasets ─────────────────────────────────────────────────────────────────────────────
  /** A dataset with every image record (what training, evaluation and export read), or null. */
  async readDataset(projectId: string, datasetId: string): Promise<DatasetFile | null> {
    return this.datasets.materialize(projectId, datasetId);
  }

  /** As `readDataset`, but a missing dataset is NOT_FOUND. */
  async getDataset(projectId: string, datasetId: string): Promise<DatasetFile> {
    const ds = await this.readDataset(projectId, datasetId);
    if (ds === null) throw notFound('dataset', datasetId);
    return ds;
  }

  // ── folders and files ────────────────────────────────────────────────────────────────────
  /** Names of the sub-folders of `dir` (empty when it does not exist); hidden and temp entries left out. */
  async listDirs(dir: string): Promise<string[]> {
    try {
      const entries = await fs.readdir(this.inside(dir), { withFileTypes: true });
      return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }

  /** Deletes a folder tree inside the workspace (never the workspace itself). */
  async removeTree(dir: string): Promise<void> {
    const full = this.inside(dir);
    if (full === this.root) throw new AppError('INTERNAL', 'refusing to remove the workspace root');
    this.cache.forgetUnder(full);
    await fs.rm(full, { recursive: true, force: true });
  }

  async exists(file: string): Promise<boolean> {
    try {
      await fs.lstat(this.inside(file));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Stores an image's bytes as `images/<name>` of the dataset; returns the dataset-relative path.
   * Written atomically (a crash leaves no torn image under its final name) but without fsync:
   * the dataset.json that refers to it is fsynced after it.
   */
  async writeImage(projectId: string, datasetId: string, name: string, buffer: Uint8Array): Promise<string> {
    return this.writeDatasetFile(projectId, datasetId, 'images', name, buffer);
  }

  /** As `writeImage`, into `.thumbs/`. */
  async writeThumb(projectId: string, datasetId: string, name: string, buffer: Uint8Array): Promise<string> {
    return this.writeDatasetFile(projectId, datasetId, '.thumbs', name, buffer);
  }

  private async writeDatasetFile(projectId: string, datasetId: string, sub: 'images' | '.thumbs', name: string, buffer: Uint8Array): Promise<string> {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name)) throw new AppError('PATH_OUTSIDE_ROOT', `bad stored file name: ${name}`);
    const dir = path.join(this.datasetDir(projectId, datasetId), sub);
    await fs.mkdir(dir, { recursive: true });
    await writeFileAtomic(path.join(dir, name), buffer, { durable: false });
    return `${sub}/${name}`;
  }

  /**
   * The absolute real path of a file of the dataset named by a dataset-relative path. Refuses
   * anything outside `images/` or `.thumbs/` of that dataset, symlinks out included; a missing
   * file is NOT_FOUND.
   */
  async datasetFilePath(projectId: string, datasetId: string, rel: string): Promise<string> {
    const dsDir = this.datasetDir(projectId, datasetId);
    const full = resolveInside(dsDir, rel);
    const sub = path.relative(dsDir, full).split(path.sep)[0];
    if (sub !== 'images' && sub !== '.thumbs') throw new AppError('PATH_OUTSIDE_ROOT', 'not an image file of this dataset');
    // Checked against the dataset folder's real path joined with the sub-folder's name, so a
    // symlinked images/ folder is refused as well as a symlinked file.
    const real = await realpathInside(dsDir, full);
    let realDs: string;
    try {
      realDs = await fs.realpath(dsDir);
    } catch {
      throw notFound('file');
    }
    if (!isInside(path.join(realDs, sub), real)) throw new AppError('PATH_OUTSIDE_ROOT', 'not an image file of this dataset');
    const st = await fs.stat(real);
    if (!st.isFile()) throw notFound('file');
    return real;
  }

  /** Removes a file of the dataset (dataset-relative); a missing one is fine. */
  async removeDatasetFile(projectId: string, datasetId: string, rel: string): Promise<void> {
    const dsDir = this.datasetDir(projectId, datasetId);
    await fs.rm(resolveInside(dsDir, rel), { force: true });
  }

  // ── raw bytes of stored files ────────────────────────────────────────────────────────────
  // For paths the workspace itself handed out (`datasetFilePath`, `tempFile`, `writeTempFrom`):
  // image and thumbnail bytes, upload heads. A missing file is NOT_FOUND(`what`).

  /** The first `n` bytes of a workspace file (fewer when it is shorter). */
  async readHead(file: string, n: number, what = 'file'): Promise<Buffer> {
    return readHead(await this.insideReal(file), n, what);
  }

  /** The whole of a workspace file. */
  async readFile(file: string, what = 'file'): Promise<Buffer> {
    return readWhole(await this.insideReal(file), what);
  }

  /** A stream of a workspace file, opened before it is returned (a vanished file is NOT_FOUND here). */
  async openReadStream(file: string, what = 'file'): Promise<Readable> {
    return openRead(await this.insideReal(file), what);
  }

  /**
   * `inside`, but also accepting a path below the workspace's real location: `datasetFilePath`
   * returns real paths, which leave the configured root lexically when that root runs through a symlink.
   */
  private async insideReal(p: string): Promise<string> {
    const full = path.resolve(p);
    if (isInside(this.root, full)) return full;
    this.realRoot ??= fs.realpath(this.root);
    if (isInside(await this.realRoot, full)) return full;
    throw new AppError('PATH_OUTSIDE_ROOT', `path outside the workspace: ${p}`);
  }

  // ── temp files ───────────────────────────────────────────────────────────────────────────
  /**
   * A fresh path in `tmp/` for an upload or scratch file (not created). Its name carries our pid,
   * so the start-up cleanup removes it only once this process is gone. The caller deletes it.
   */
  async tempFile(label = 'upload'): Promise<string> {
    await fs.mkdir(this.tmpDir(), { recursive: true });
    return path.join(this.tmpDir(), this.tempName(label));
  }

  /** A fresh, created scratch folder in `tmp/`, named like `tempFile`. The caller deletes it. */
  async tempDir(label = 'scratch'): Promise<string> {
    const dir = path.join(this.tmpDir(), this.tempName(label));
    await fs.mkdir(dir, { recursive: true });
    return dir;
  }

  /**
   * Streams `source` (an upload) into a fresh temp file and returns its path; the caller deletes it
   * with `removeTemp`. Size limits are the source's (multipart's `fileSize` ends or truncates the
   * stream); when the copy fails — client abort, limit error, full disk — the partial file is
   * already gone when this rejects.
   */
  async writeTempFrom(source: Readable, label = 'upload'): Promise<string> {
    const file = await this.tempFile(label);
    await writeNewFrom(file, source);
    return file;
  }

  /** Deletes a temp file or folder made by `tempFile`/`tempDir` (and nothing outside tmp/). */
  async removeTemp(p: string): Promise<void> {
    const full = path.resolve(p);
    if (!isInside(this.tmpDir(), full) || full === this.tmpDir()) throw new AppError('PATH_OUTSIDE_ROOT', `not a temp path: ${p}`);
    await fs.rm(full, { recursive: true, force: true });
  }

  private tempName(label: string): string {
    const safe = label.replace(/[^a-z0-9-]/gi, '').slice(0, 32) || 'tmp';
    return `.${safe}.${process.pid}.${threadId}.${randomBytes(6).toString('hex')}.tmp`;
  }

  /** Removes temp files/folders of processes that are gone; returns what it removed. */
  async cleanupOrphans(): Promise<string[]> {
    return removeOrphanTemps(this.root);
  }

  // ── jobs ─────────────────────────────────────────────────────────────────────────────────
  async readJob(jobId: string): Promise<JobFile | null> {
    return this.read(JobDoc, this.jobFile(jobId));
  }
  async writeJob(job: JobFile): Promise<JobFile> {
    return this.write(JobDoc, this.jobFile(job.id), job);
  }
  async updateJob(jobId: string, fn: (job: JobFile) => JobFile): Promise<JobFile> {
    return this.modify(JobDoc, this.jobFile(jobId), 'job', jobId, fn);
  }
  /** Every job record; unreadable ones are skipped (a job file is never worth failing start-up over). */
  async listJobs(): Promise<JobFile[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.jobsDir());
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const jobs: JobFile[] = [];
    for (const n of names) {
      const id = n.endsWith('.json') ? n.slice(0, -5) : '';
      if (!JobIdSchema.safeParse(id).success) continue;
      const job = await this.readJob(id).catch(() => null);
      if (job) jobs.push(job);
    }
    return jobs.sort((a, b) => a.created_at.localeCompare(b.created_at));
  }

  // ── studio.json ──────────────────────────────────────────────────────────────────────────
  async studio(): Promise<StudioFile> {
    return this.get(StudioDoc, this.studioFile(), 'studio.json');
  }
  async updateStudio(fn: (s: StudioFile) => StudioFile): Promise<StudioFile> {
    return this.modify(StudioDoc, this.studioFile(), 'studio.json', undefined, fn);
  }

  /** Every path the workspace touches goes through here: a bug can never write outside it. */
  private inside(p: string): string {
    const full = path.resolve(p);
    if (!isInside(this.root, full)) throw new AppError('PATH_OUTSIDE_ROOT', `path outside the workspace: ${p}`);
    return full;
  }
}

/**
 * Opens (creating on first use) a workspace: its folders, `studio.json`, and the removal of temp
 * files that crashed processes left behind. Safe to call from worker threads too.
 */
export async function openWorkspace(root: string, opts: WorkspaceOptions = {}): Promise<Workspace> {
  const ws = new Workspace(root, opts);
  for (const dir of [ws.root, ws.projectsDir(), ws.jobsDir(), ws.tmpDir()]) await fs.mkdir(dir, { recursive: true });
  if ((await ws.read(StudioDoc, ws.studioFile())) === null) {
    await ws.update(StudioDoc, ws.studioFile(), (cur) => cur ?? { schema_version: 1 as const, created_at: new Date().toISOString(), example_offered: false });
  }
  await ws.cleanupOrphans();
  return ws;
}
