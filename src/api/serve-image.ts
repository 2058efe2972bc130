import { createReadStream, promises as fs } from 'node:fs';
import type { FastifyReply } from 'fastify';
import { AppError } from '../core/errors.ts';
import { sniffImage, toBrowserImage } from '../datasets/image.ts';

const SNIFF_BYTES = 64;
const BROWSER_NATIVE = new Set(['jpeg', 'png', 'webp', 'gif']);

/**
 * Sends an image file that storage resolved inside the dataset. The content type comes from the
 * bytes, never from the name, and anything that is not one of our raster formats is refused, so
 * an SVG or HTML file named `.jpg` can never be served as markup. `nosniff` and a sandboxing CSP
 * keep the browser from second-guessing. With `browserSafe`, TIFF and BMP are converted to PNG.
 */
export async function sendImageFile(reply: FastifyReply, file: string, opts: { browserSafe: boolean }): Promise<FastifyReply> {
  const head = await readHead(file);
  const sniffed = sniffImage(head);
  if (!sniffed) throw new AppError('UNSUPPORTED_MEDIA', 'the stored file is not an image this studio serves');
  reply
    .header('X-Content-Type-Options', 'nosniff')
    .header('Content-Security-Policy', "default-src 'none'; sandbox")
    .header('Cache-Control', 'private, max-age=3600');
  if (opts.browserSafe && !BROWSER_NATIVE.has(sniffed.format)) {
    const converted = await toBrowserImage(await fs.readFile(file));
    return reply.type(converted.mime).send(converted.buffer);
  }
  return reply.type(sniffed.mime).send(createReadStream(file));
}

async function readHead(file: string): Promise<Buffer> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(file, 'r');
    const buf = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await fh.read(buf, 0, SNIFF_BYTES, 0);
    return buf.subarray(0, bytesRead);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new AppError('NOT_FOUND', 'image file not found');
    throw e;
  } finally {
    await fh?.close();
  }
}
