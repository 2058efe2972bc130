import { createHash } from 'node:crypto';
import yazl from 'yazl';
// the manifest's task is checked against the registered tasks
import '../tasks/index.ts';
import { FORMAT_NAMES, MODEL_FILES } from './formats/index.ts';
import { buildManifest, type Manifest, type ManifestFile, type ManifestInput } from './manifest.ts';
import { readmeText } from './readme.ts';
import type { Variant } from './validate.ts';

/**
 * The downloadable package, built in memory: model files, labels.txt, README.md, manifest.json
 * (which lists the others with their sha256) and SHA256SUMS (`sha256sum -c` format, covering the
 * manifest too). No disk access: src/storage writes what this returns.
 */

/** Each variant's model file (from the format registry, src/export/formats/). */
export const MODEL_FILE: Record<Variant, string> = MODEL_FILES;

export interface PackageFile {
  name: string;
  bytes: Uint8Array;
}

export interface ExportPackage {
  manifest: Manifest;
  /** Every file of the package, manifest.json and SHA256SUMS included, in zip order. */
  files: PackageFile[];
}

export const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function describe(name: string, bytes: Uint8Array, role: ManifestFile['role'], variant?: Variant): ManifestFile {
  return { name, role, ...(variant ? { variant } : {}), size_bytes: bytes.length, sha256: sha256Hex(bytes) };
}

export const labelsText = (labels: readonly string[]) => labels.map((l) => `${l.replace(/[\r\n]+/g, ' ')}\n`).join('');

export const checksumsText = (files: readonly PackageFile[]) =>
  files.map((f) => `${sha256Hex(f.bytes)}  ${f.name}\n`).join('');

const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

export function buildPackage(models: Partial<Record<Variant, Uint8Array>>, input: Omit<ManifestInput, 'files'>): ExportPackage {
  const modelFiles = FORMAT_NAMES
    .filter((v) => models[v] !== undefined)
    .map((v) => ({ variant: v, name: MODEL_FILE[v], bytes: models[v]! }));
  const labels = utf8(labelsText(input.labels));
  const described = [
    ...modelFiles.map((f) => describe(f.name, f.bytes, 'model', f.variant)),
    describe('labels.txt', labels, 'labels'),
  ];
  // the README shows the file table, so it is written from a manifest without itself, then listed
  const readme = utf8(readmeText(buildManifest({ ...input, files: described })));
  const manifest = buildManifest({ ...input, files: [...described, describe('README.md', readme, 'readme')] });
  const listed: PackageFile[] = [
    ...modelFiles.map(({ name, bytes }) => ({ name, bytes })),
    { name: 'labels.txt', bytes: labels },
    { name: 'README.md', bytes: readme },
    { name: 'manifest.json', bytes: utf8(`${JSON.stringify(manifest, null, 2)}\n`) },
  ];
  return { manifest, files: [...listed, { name: 'SHA256SUMS', bytes: utf8(checksumsText(listed)) }] };
}

/** The zip of `files`, in memory. Models barely deflate, so they are stored; text is compressed. */
export function zipPackage(files: readonly PackageFile[], mtime = new Date()): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const f of files) zip.addBuffer(Buffer.from(f.bytes), f.name, { mtime, compress: !f.name.endsWith('.onnx') });
  zip.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('error', reject);
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
  });
}
