import yauzl from 'yauzl';
import { AppError } from '../../kernel/errors.ts';
import { SkipError, type ImportSource, type ScanContext, type ScanItem, type Scanner, type SkippedFile } from '../types.ts';
import { isHiddenName } from './fsutil.ts';
import { labelFromRelativePath } from './folder.ts';

type ZipSource = Extract<ImportSource, { kind: 'zip' }>;

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

function badArchive(message: string): AppError {
  return new AppError('BAD_ARCHIVE', message);
}

function listEntries(zip: yauzl.ZipFile): Promise<yauzl.Entry[]> {
  return new Promise((resolve, reject) => {
    const entries: yauzl.Entry[] = [];
    zip.on('entry', (e: yauzl.Entry) => {
      entries.push(e);
      zip.readEntry();
    });
    zip.on('end', () => resolve(entries));
    zip.on('error', (e: Error) => reject(badArchive(`corrupt archive: ${e.message}`)));
    zip.readEntry();
  });
}

async function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, maxBytes: number): Promise<Buffer> {
  if (entry.uncompressedSize > maxBytes) throw new SkipError('too_large', `${entry.uncompressedSize} bytes exceeds the ${maxBytes}-byte limit`);
  if (entry.isEncrypted()) throw new SkipError('unsupported', 'encrypted entry');
  if (!entry.canDecodeFileData()) throw new SkipError('unsupported', `compression method ${entry.compressionMethod}`);
  try {
    const stream = await zip.openReadStreamPromise(entry);
    const chunks: Buffer[] = [];
    // validateEntrySizes makes the stream fail when the data outgrows the declared size.
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  } catch (e) {
    throw new SkipError('corrupt', e instanceof Error ? e.message : String(e));
  }
}

/** The archive is the upload's temp file in the workspace, so the sink opens it and yauzl adopts the descriptor. */
function openArchive(file: string, ctx: ScanContext): Promise<yauzl.ZipFile> {
  // decodeStrings off: yauzl would abort the whole archive on one bad name; we refuse per entry.
  return ctx.openUpload(file, (fd) => yauzl.fromFdPromise(fd, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true }));
}

/**
 * A zip of an ImageNet-style folder. Bombs are bounded before anything is inflated: the entry
 * count and the declared uncompressed total (which yauzl enforces while inflating) must stay under
 * the limits, or the archive is refused whole. Entries with `..`, absolute paths or symlink mode
 * are refused one by one (`outside_root`); nothing is ever written to disk.
 */
export const scanZip: Scanner<ZipSource> = async (source, ctx) => {
  let zip: yauzl.ZipFile;
  try {
    zip = await openArchive(source.path, ctx);
  } catch (e) {
    throw badArchive(`not a zip archive: ${e instanceof Error ? e.message : String(e)}`);
  }
  const close = async () => zip.close();
  try {
    if (zip.entryCount > ctx.limits.maxZipEntries) {
      throw badArchive(`the archive has ${zip.entryCount} entries; the limit is ${ctx.limits.maxZipEntries}`);
    }
    const entries = await listEntries(zip);
    const skipped: SkippedFile[] = [];
    const accepted: { name: string; entry: yauzl.Entry }[] = [];
    let total = 0;
    for (const entry of entries) {
      total += entry.uncompressedSize;
      if (total > ctx.limits.maxUncompressedBytes) {
        throw badArchive(`the archive expands beyond ${ctx.limits.maxUncompressedBytes} bytes`);
      }
      const name = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, false);
      if (name.endsWith('/')) continue;
      const unsafe = yauzl.validateFileName(name) ?? (name.includes('\0') ? 'NUL in name' : null);
      if (unsafe !== null) {
        skipped.push({ file: name, reason: 'outside_root', detail: unsafe });
        continue;
      }
      if (((entry.externalFileAttributes >>> 16) & S_IFMT) === S_IFLNK) {
        skipped.push({ file: name, reason: 'outside_root', detail: 'symbolic link entry' });
        continue;
      }
      const parts = name.split('/').filter((p) => p !== '');
      if (parts.some(isHiddenName)) continue;
      accepted.push({ name: parts.join('/'), entry });
    }
    const strip = wrapperPrefix(accepted.map((a) => a.name));
    const items: ScanItem[] = accepted.map(({ name, entry }) => {
      const rel = name.slice(strip.length);
      return { file: name, label: labelFromRelativePath(rel), read: () => readEntry(zip, entry, ctx.limits.maxFileBytes) };
    });
    return { items, skipped, close };
  } catch (e) {
    await close();
    throw e;
  }
};

/**
 * `dataset/cats/1.jpg, dataset/dogs/2.jpg` → strip `dataset/`: a zip of a folder usually wraps it
 * in one top-level folder. Only when every file is below that one folder and some sit two levels
 * deeper (so `cats/1.jpg, cats/2.jpg` keeps its single class).
 */
export function wrapperPrefix(names: string[]): string {
  if (names.length === 0) return '';
  const first = names[0].split('/')[0];
  const prefix = `${first}/`;
  if (!names.every((n) => n.startsWith(prefix) && n.length > prefix.length)) return '';
  return names.some((n) => n.slice(prefix.length).includes('/')) ? prefix : '';
}
