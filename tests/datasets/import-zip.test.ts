import fs from 'node:fs/promises';
import path from 'node:path';
import yazl from 'yazl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runImport } from '../../src/datasets/import.ts';
import { wrapperPrefix } from '../../src/datasets/sources/zip.ts';
import { MemorySink, rawZip, solid, tempDir } from './helpers.ts';

let dir: string;
const png = (color: string) => solid(8, 8, color).png().toBuffer();

function yazlZip(entries: { name: string; data: Buffer }[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const e of entries) zip.addBuffer(e.data, e.name);
  zip.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    zip.outputStream.on('error', reject);
  });
}

async function zipFile(name: string, data: Buffer): Promise<string> {
  const file = path.join(dir, name);
  await fs.writeFile(file, data);
  return file;
}

beforeAll(async () => {
  dir = await tempDir();
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('runImport from a zip', () => {
  it('unwraps a single top-level folder and labels by class folder', async () => {
    const file = await zipFile(
      'wrapped.zip',
      await yazlZip([
        { name: 'shapes/circle/1.png', data: await png('#f00') },
        { name: 'shapes/circle/nested/2.png', data: await png('#0f0') },
        { name: 'shapes/square/3.png', data: await png('#00f') },
        { name: '__MACOSX/shapes/._3.png', data: Buffer.from('junk') },
        { name: 'shapes/.DS_Store', data: Buffer.from('junk') },
      ]),
    );
    const sink = new MemorySink();
    const report = await runImport({ kind: 'zip', path: file }, sink);
    expect(report.imported).toBe(3);
    expect(report.skipped).toEqual([]);
    expect(report.classes).toEqual(['circle', 'square']);
    expect(sink.bySource('shapes/circle/nested/2.png')?.label).toBe('circle');
  });

  it('refuses traversal, absolute and symlink entries one by one and imports the rest', async () => {
    const file = await zipFile(
      'evil.zip',
      rawZip([
        { name: 'cat/ok.png', data: await png('#123') },
        { name: '../escape.png', data: await png('#456') },
        { name: 'cat/../../escape2.png', data: await png('#789') },
        { name: '/etc/abs.png', data: await png('#abc') },
        { name: 'C:/win.png', data: await png('#def') },
        { name: 'cat/link.png', data: Buffer.from('/etc/passwd'), mode: 0o120777 },
      ]),
    );
    const sink = new MemorySink();
    const report = await runImport({ kind: 'zip', path: file }, sink);
    expect(sink.images.map((i) => i.source_path)).toEqual(['cat/ok.png']);
    expect(report.skipped.map((s) => [s.file, s.reason]).sort()).toEqual(
      [
        ['../escape.png', 'outside_root'],
        ['cat/../../escape2.png', 'outside_root'],
        ['/etc/abs.png', 'outside_root'],
        ['C:/win.png', 'outside_root'],
        ['cat/link.png', 'outside_root'],
      ].sort(),
    );
  });

  it('refuses a zip bomb by its declared size and by its entry count', async () => {
    const bomb = await zipFile('bomb.zip', await yazlZip([{ name: 'a/zeros.png', data: Buffer.alloc(8 * 1024 * 1024) }]));
    expect((await fs.stat(bomb)).size).toBeLessThan(64 * 1024);
    await expect(runImport({ kind: 'zip', path: bomb }, new MemorySink(), { limits: { maxUncompressedBytes: 1024 * 1024 } })).rejects.toMatchObject({
      code: 'BAD_ARCHIVE',
    });
    const many = await zipFile('many.zip', rawZip(Array.from({ length: 20 }, (_, i) => ({ name: `a/${i}.txt`, data: Buffer.from('x') }))));
    await expect(runImport({ kind: 'zip', path: many }, new MemorySink(), { limits: { maxZipEntries: 10 } })).rejects.toMatchObject({
      code: 'BAD_ARCHIVE',
    });
  });

  it('refuses a file that is not a zip, and a truncated zip, as BAD_ARCHIVE', async () => {
    const notZip = await zipFile('not.zip', Buffer.from('this is not an archive at all'));
    await expect(runImport({ kind: 'zip', path: notZip }, new MemorySink())).rejects.toMatchObject({ code: 'BAD_ARCHIVE' });
    const good = await yazlZip([{ name: 'a/1.png', data: await png('#111') }]);
    const cut = await zipFile('cut.zip', good.subarray(0, good.length - 30));
    await expect(runImport({ kind: 'zip', path: cut }, new MemorySink())).rejects.toMatchObject({ code: 'BAD_ARCHIVE' });
  });

  it('closes the archive file whether the import succeeds or the archive is refused; never reads through a symlink', async () => {
    const openFds = async () => (await fs.readdir('/proc/self/fd')).length;
    const good = await zipFile('fd-good.zip', await yazlZip([{ name: 'a/1.png', data: await png('#123') }]));
    const bad = await zipFile('fd-bad.zip', Buffer.from('PK\x03\x04 but nothing after'));
    const before = await openFds();
    for (let i = 0; i < 5; i++) {
      expect((await runImport({ kind: 'zip', path: good }, new MemorySink())).imported).toBe(1);
      await expect(runImport({ kind: 'zip', path: bad }, new MemorySink())).rejects.toMatchObject({ code: 'BAD_ARCHIVE' });
    }
    // yauzl closes its descriptor asynchronously after close().
    await new Promise((r) => setTimeout(r, 50));
    expect(await openFds()).toBeLessThanOrEqual(before);
    const link = path.join(dir, 'link.zip');
    await fs.symlink(good, link);
    await expect(runImport({ kind: 'zip', path: link }, new MemorySink())).rejects.toMatchObject({ code: 'BAD_ARCHIVE' });
    await expect(runImport({ kind: 'zip', path: path.join(dir, 'missing.zip') }, new MemorySink())).rejects.toMatchObject({ code: 'BAD_ARCHIVE' });
  });

  it('reports an entry whose data is corrupt and goes on', async () => {
    const zip = rawZip([
      { name: 'a/good.png', data: await png('#111') },
      { name: 'a/bad.png', data: Buffer.concat([(await png('#222')).subarray(0, 40)]) },
    ]);
    const report = await runImport({ kind: 'zip', path: await zipFile('partial.zip', zip) }, new MemorySink());
    expect(report.imported).toBe(1);
    expect(report.skipped).toMatchObject([{ file: 'a/bad.png', reason: 'corrupt' }]);
  });
});

describe('wrapperPrefix', () => {
  it('strips only a folder that wraps class folders', () => {
    expect(wrapperPrefix(['d/a/1.png', 'd/b/2.png'])).toBe('d/');
    expect(wrapperPrefix(['cats/1.png', 'cats/2.png'])).toBe('');
    expect(wrapperPrefix(['d/a/1.png', 'top.png'])).toBe('');
    expect(wrapperPrefix([])).toBe('');
  });
});
