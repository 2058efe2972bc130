import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TEMP_FILE_RE, tempPathFor, writeFileAtomic } from '../../src/storage/atomic.ts';
import { removeOrphanTemps } from '../../src/storage/cleanup.ts';
import { isInside, realpathInside, resolveInside } from '../../src/storage/safe-path.ts';
import { tempRoot } from './helpers.ts';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempRoot('atomic')));
afterEach(() => cleanup());

describe('writeFileAtomic', () => {
  it('replaces the content and leaves no temp file behind', async () => {
    const f = path.join(dir, 'a.json');
    await writeFileAtomic(f, 'one');
    await writeFileAtomic(f, 'two');
    expect(await fs.readFile(f, 'utf8')).toBe('two');
    expect(await fs.readdir(dir)).toEqual(['a.json']);
  });

  it('returns the identity (inode, size) of the file it put in place', async () => {
    const f = path.join(dir, 'b.json');
    const id = await writeFileAtomic(f, 'hello');
    const st = await fs.stat(f);
    expect(id).toEqual({ ino: st.ino, mtimeMs: st.mtimeMs, size: 5 });
  });

  it('cleans its temp file up when the write fails, and keeps the old file', async () => {
    const f = path.join(dir, 'c.json');
    await writeFileAtomic(f, 'old');
    // Renaming a file over a non-empty directory fails after the temp file is written.
    const target = path.join(dir, 'sub');
    await fs.mkdir(target);
    await fs.writeFile(path.join(target, 'x'), 'x');
    await expect(writeFileAtomic(target, 'new')).rejects.toThrow();
    expect((await fs.readdir(dir)).sort()).toEqual(['c.json', 'sub']);
    expect(await fs.readFile(f, 'utf8')).toBe('old');
  });

  it('names temp files so the cleanup can tell whose they are', () => {
    const name = path.basename(tempPathFor('/x/dataset.json'));
    const m = TEMP_FILE_RE.exec(name);
    expect(m?.[1]).toBe(String(process.pid));
  });
});

describe('removeOrphanTemps', () => {
  it('removes temp files and folders of dead processes, keeps live ones and real files', async () => {
    const deadPid = 2 ** 22 + 12345; // above the largest pid Linux can hand out (2^22), so never alive
    await fs.mkdir(path.join(dir, 'projects', 'p'), { recursive: true });
    const orphan = path.join(dir, 'projects', 'p', `.project.json.${deadPid}.0.aaaaaaaaaaaa.tmp`);
    const orphanDir = path.join(dir, `.scratch.${deadPid}.1.bbbbbbbbbbbb.tmp`);
    const live = path.join(dir, `.x.json.${process.pid}.0.cccccccccccc.tmp`);
    const real = path.join(dir, 'projects', 'p', 'project.json');
    await fs.writeFile(orphan, '{"half');
    await fs.mkdir(orphanDir);
    await fs.writeFile(path.join(orphanDir, 'inside.png'), 'x');
    await fs.writeFile(live, 'in flight');
    await fs.writeFile(real, '{}');
    const removed = await removeOrphanTemps(dir);
    expect(removed.sort()).toEqual([orphanDir, orphan].sort());
    expect(await fs.readFile(live, 'utf8')).toBe('in flight');
    expect(await fs.readFile(real, 'utf8')).toBe('{}');
  });
});

describe('path safety', () => {
  it('isInside is not fooled by prefixes or dot-dot names', () => {
    expect(isInside('/a/b', '/a/b')).toBe(true);
    expect(isInside('/a/b', '/a/b/c')).toBe(true);
    expect(isInside('/a/b', '/a/bc')).toBe(false);
    expect(isInside('/a/b', '/a')).toBe(false);
    expect(isInside('/a/b', '/a/b/..foo')).toBe(true);
  });

  it('resolveInside refuses absolute paths, climbing out and NUL bytes', () => {
    expect(resolveInside('/r', 'x/y.jpg')).toBe('/r/x/y.jpg');
    expect(resolveInside('/r', 'x/../y.jpg')).toBe('/r/y.jpg');
    for (const bad of ['../etc/passwd', 'x/../../y', '/etc/passwd', 'C:\\win', 'a\0b']) {
      expect(() => resolveInside('/r', bad), bad).toThrow(expect.objectContaining({ code: 'PATH_OUTSIDE_ROOT' }));
    }
  });

  it('realpathInside refuses a symlink that points out of the root', async () => {
    const root = path.join(dir, 'root');
    await fs.mkdir(root);
    await fs.writeFile(path.join(dir, 'secret.txt'), 'secret');
    await fs.writeFile(path.join(root, 'ok.txt'), 'ok');
    await fs.symlink(path.join(dir, 'secret.txt'), path.join(root, 'link.txt'));
    await fs.symlink(path.join(root, 'ok.txt'), path.join(root, 'inner-link.txt'));
    expect(await realpathInside(root, path.join(root, 'ok.txt'))).toBe(path.join(await fs.realpath(root), 'ok.txt'));
    expect(await realpathInside(root, path.join(root, 'inner-link.txt'))).toBe(path.join(await fs.realpath(root), 'ok.txt'));
    await expect(realpathInside(root, path.join(root, 'link.txt'))).rejects.toMatchObject({ code: 'PATH_OUTSIDE_ROOT' });
    await expect(realpathInside(root, path.join(root, 'missing.txt'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
