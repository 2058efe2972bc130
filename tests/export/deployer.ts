import { promises as fs } from 'node:fs';
import sharp from 'sharp';
import yauzl from 'yauzl';
import type { Manifest } from '../../src/export/manifest.ts';

/**
 * What a deployer outside the studio does with a package, written only from its files: unzip it,
 * and build the input tensor from the manifest's preprocessing fields with plain sharp calls.
 */

export async function preprocessFromManifest(files: string[], m: Manifest): Promise<Float32Array> {
  const p = m.preprocessing;
  const { width, height } = p.resize;
  const plane = width * height;
  const x = new Float32Array(files.length * 3 * plane);
  for (let n = 0; n < files.length; n++) {
    let img = sharp(await fs.readFile(files[n]), { pages: 1 });
    if (p.exif_orientation) img = img.autoOrient();
    const { data } = await img
      .resize(width, height, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false })
      .flatten({ background: '#000000' })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) x[(n * 3 + c) * plane + i] = (data[i * 3 + c] * p.scale - p.mean[c]) / p.std[c];
  }
  return x;
}

export function unzip(buf: Buffer): Promise<Map<string, Buffer>> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(buf, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err ?? new Error('no zip'));
      const files = new Map<string, Buffer>();
      zip.on('entry', (e: yauzl.Entry) => {
        zip.openReadStream(e, (err2, s) => {
          if (err2 || !s) return reject(err2 ?? new Error('no stream'));
          const chunks: Buffer[] = [];
          s.on('data', (c: Buffer) => chunks.push(c));
          s.on('end', () => {
            files.set(e.fileName, Buffer.concat(chunks));
            zip.readEntry();
          });
        });
      });
      zip.on('end', () => resolve(files));
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}
