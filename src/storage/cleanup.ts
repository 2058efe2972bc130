import { promises as fs } from 'node:fs';
import path from 'node:path';
import { DatasetIdSchema, ProjectIdSchema } from '../schemas/common.ts';
import type { DatasetManifest } from '../schemas/dataset.ts';
import { TEMP_FILE_RE } from './atomic.ts';
import type { Workspace } from './workspace.ts';

/** Whether a process with this pid exists on this machine (EPERM: it does, as another user's). */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temp files and temp folders whose process is gone (a crash between write and rename
 * leaves one; so does a crash during an upload). Those of live processes, ours included, are
 * work in flight and stay, so this is safe to run from any process or thread.
 * Walks the JSON folders and the image folders of every dataset; `maxDepth` bounds the walk.
 */
export async function removeOrphanTemps(root: string, maxDepth = 8): Promise<string[]> {
  const removed: string[] = [];
  async function walk(dir: string, depth: number): Promise<void> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const full = path.join(dir, e.name);
      const m = TEMP_FILE_RE.exec(e.name);
      if (m && (e.isFile() || e.isDirectory())) {
        if (!processAlive(Number(m[1]))) {
          await fs.rm(full, { recursive: true, force: true });
          removed.push(full);
        }
        continue;
      }
      if (e.isDirectory()) {
        // Lock folders (`x.json.lock`) are proper-lockfile's; it handles their staleness itself.
        if (depth < maxDepth && !e.name.endsWith('.lock')) await walk(full, depth + 1);
        continue;
      }
    }
  }
  await walk(root, 0);
  return removed;
}

/** What the import sink writes (`import-sink.ts`): `images/<hash16>.<ext>`, `.thumbs/<hash16>.webp`. */
const IMAGE_NAME_RE = /^([0-9a-f]{16})\.[a-z0-9]{2,5}$/;
const THUMB_NAME_RE = /^([0-9a-f]{16})\.webp$/;

export interface UnrecordedSweep {
  /** Datasets that had unrecorded files, with the dataset-relative paths removed. */
  removed: { project_id: string; dataset_id: string; files: string[] }[];
  /** Datasets left untouched, and why (unreadable dataset.json, import in progress, no dataset.json). */
  untouched: { project_id: string; dataset_id: string; reason: string }[];
}

function defaultLog(line: string): void {
  console.warn(`[studio] ${line}`);
}

/** A real folder (not a symlink, which could lead out of the workspace), or null. */
async function realDirEntries(dir: string): Promise<import('node:fs').Dirent[] | null> {
  try {
    if (!(await fs.lstat(dir)).isDirectory()) return null;
    return await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return null;
  }
}

/**
 * Removes the image and thumbnail files of each dataset that its dataset.json does not record.
 * An import writes a file before the batch that records it reaches dataset.json (storage/import-sink.ts),
 * and an image delete drops the record before the files, so a process killed in between leaves
 * files that nothing lists and nothing would ever remove.
 *
 * Run at start-up only, after interrupted imports were settled, on the datasets they left (`only`;
 * without it, every dataset — a walk whose cost grows with the workspace, for tests and repairs).
 * An image delete needs no sweep: its files are unlinked after its commit, and named in the
 * header's `trash` until then (src/storage/datasets.ts). A dataset still `importing` may be
 * filling in another process, so it is left alone. Only regular files whose names have the exact
 * shape the sink writes, directly in a real `images/` or `.thumbs/` folder, are candidates; symlinks
 * are never followed nor removed, and anything else is left alone.
 */
export async function removeUnrecordedImages(
  store: Workspace,
  log: (line: string) => void = defaultLog,
  only?: readonly { project_id: string; dataset_id: string }[],
): Promise<UnrecordedSweep> {
  const out: UnrecordedSweep = { removed: [], untouched: [] };
  const projectIds = (await realDirEntries(store.projectsDir())) ?? [];
  const wanted = only ? new Set(only.map((r) => `${r.project_id}/${r.dataset_id}`)) : null;
  for (const p of projectIds) {
    if (!p.isDirectory() || !ProjectIdSchema.safeParse(p.name).success) continue;
    const datasetIds = (await realDirEntries(store.datasetsDir(p.name))) ?? [];
    for (const d of datasetIds) {
      if (!d.isDirectory() || !DatasetIdSchema.safeParse(d.name).success) continue;
      if (wanted && !wanted.has(`${p.name}/${d.name}`)) continue;
      const ref = { project_id: p.name, dataset_id: d.name };
      const leave = (reason: string) => {
        out.untouched.push({ ...ref, reason });
        log(`dataset ${d.name} of project ${p.name}: ${reason}; its files were left alone`);
      };
      let ds: DatasetManifest | null;
      try {
        ds = await store.datasets.header(p.name, d.name);
      } catch (e) {
        leave(`dataset.json is unreadable (${e instanceof Error ? e.message.slice(0, 200) : String(e)})`);
        continue;
      }
      if (ds === null) {
        leave('no dataset.json');
        continue;
      }
      if (ds.status === 'importing') {
        leave('its import is still in progress');
        continue;
      }
      // Files are named by the first 16 hex digits of their hash, which the index keeps per image.
      const index = await store.datasets.index(p.name, d.name);
      const files = [
        ...(await sweepFolder(store.imagesDir(p.name, d.name), 'images', IMAGE_NAME_RE, (_n, stem) => index.hasStem(stem), log)),
        ...(await sweepFolder(store.thumbsDir(p.name, d.name), '.thumbs', THUMB_NAME_RE, (_n, stem) => index.hasStem(stem), log)),
      ];
      if (files.length === 0) continue;
      out.removed.push({ ...ref, files });
      const nImages = files.filter((f) => f.startsWith('images/')).length;
      log(`dataset ${d.name} of project ${p.name}: removed ${files.length} unrecorded files (${nImages} images, ${files.length - nImages} thumbnails)`);
    }
  }
  return out;
}

/** Unlinks the candidates of one folder that `recorded` does not claim; returns them dataset-relative. */
async function sweepFolder(
  dir: string,
  sub: 'images' | '.thumbs',
  re: RegExp,
  recorded: (name: string, stem: string) => boolean,
  log: (line: string) => void,
): Promise<string[]> {
  const entries = await realDirEntries(dir);
  if (!entries) return [];
  const removed: string[] = [];
  for (const e of entries) {
    const m = re.exec(e.name);
    // Dirent.isFile() is false for a symlink: one is never a candidate.
    if (!m || !e.isFile() || recorded(e.name, m[1])) continue;
    try {
      await fs.unlink(path.join(dir, e.name));
      removed.push(`${sub}/${e.name}`);
    } catch (err) {
      // A file that cannot be removed stays an orphan; not worth failing start-up over.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log(`could not remove ${sub}/${e.name}: ${(err as Error).message}`);
    }
  }
  return removed.sort();
}

/** A project or dataset folder whose own JSON file is missing, moved aside at start-up. */
export interface QuarantinedFolder {
  project_id: string;
  dataset_id?: string;
  /** Where it went, relative to the workspace. */
  to: string;
}

/**
 * Folders a crash left half made — a project folder without project.json (hidden from the API,
 * its datasets with it), a dataset folder without dataset.json — are moved to `quarantine/` at
 * start-up (no studio works in the workspace then: it is locked), each named with the time, and
 * reported in the log: nothing is deleted, and nothing stays invisible in `projects/` for ever.
 */
export async function quarantineOrphanFolders(store: Workspace, log: (line: string) => void = defaultLog): Promise<QuarantinedFolder[]> {
  const out: QuarantinedFolder[] = [];
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const target = path.join(store.root, 'quarantine');
  const move = async (from: string, name: string): Promise<string> => {
    await fs.mkdir(target, { recursive: true });
    const to = path.join(target, `${stamp}-${name}`);
    await fs.rename(from, to);
    return path.relative(store.root, to);
  };
  for (const p of (await realDirEntries(store.projectsDir())) ?? []) {
    if (!p.isDirectory() || !ProjectIdSchema.safeParse(p.name).success) continue;
    const dir = path.join(store.projectsDir(), p.name);
    if (!(await exists(path.join(dir, 'project.json')))) {
      const to = await move(dir, p.name);
      out.push({ project_id: p.name, to });
      log(`project folder ${p.name} has no project.json (a crash while it was made or deleted): moved to ${to}`);
      continue;
    }
    for (const d of (await realDirEntries(store.datasetsDir(p.name))) ?? []) {
      if (!d.isDirectory() || !DatasetIdSchema.safeParse(d.name).success) continue;
      const ddir = path.join(store.datasetsDir(p.name), d.name);
      if (await exists(path.join(ddir, 'dataset.json'))) continue;
      const to = await move(ddir, `${p.name}-${d.name}`);
      out.push({ project_id: p.name, dataset_id: d.name, to });
      log(`dataset folder ${d.name} of project ${p.name} has no dataset.json: moved to ${to}`);
    }
  }
  return out;
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

/** Datasets whose dataset.json says `importing` (at start-up: an import that died unrecorded). */
export async function importingDatasets(store: Workspace): Promise<{ project_id: string; dataset_id: string }[]> {
  const out: { project_id: string; dataset_id: string }[] = [];
  for (const p of (await realDirEntries(store.projectsDir())) ?? []) {
    if (!p.isDirectory() || !ProjectIdSchema.safeParse(p.name).success) continue;
    for (const d of (await realDirEntries(store.datasetsDir(p.name))) ?? []) {
      if (!d.isDirectory() || !DatasetIdSchema.safeParse(d.name).success) continue;
      const ds = await store.datasets.header(p.name, d.name).catch(() => null);
      if (ds?.status === 'importing') out.push({ project_id: p.name, dataset_id: d.name });
    }
  }
  return out;
}
