import type { ImportSource, ScanItem, Scanner } from '../types.ts';
import { readBounded, realDirectory } from './fsutil.ts';
import { walkFolder } from './walk.ts';

type FolderSource = Extract<ImportSource, { kind: 'folder' }>;

/** The top-level folder names the class; images right under the root are unlabeled. */
export function labelFromRelativePath(rel: string): string | null {
  const parts = rel.split('/');
  return parts.length >= 2 ? parts[0] : null;
}

/** ImageNet style: one sub-folder per class, images nested any depth below it. */
export const scanFolder: Scanner<FolderSource> = async (source, ctx) => {
  const root = await realDirectory(source.path, 'source folder');
  const { files, skipped } = await walkFolder(root, root, ctx.signal);
  const items: ScanItem[] = files.map((f) => ({
    file: f.rel,
    label: labelFromRelativePath(f.rel),
    read: () => readBounded(f.real, ctx.limits.maxFileBytes),
  }));
  return { items, skipped, close: async () => {} };
};
