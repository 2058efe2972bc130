import type { FastifyReply } from 'fastify';
import { AppError } from '../kernel/errors.ts';
import { sniffImage, toBrowserImage } from '../datasets/image.ts';

const SNIFF_BYTES = 64;
const BROWSER_NATIVE = new Set(['jpeg', 'png', 'webp', 'gif']);

/**
 * Sends an image file that storage resolved inside the dataset. The content type comes from the
 * bytes, never from the name, and anything that is not one of our raster formats is refused, so
 * an SVG or HTML file named `.jpg` can never be served as markup. `nosniff` and a sandboxing CSP
 * keep the browser from second-guessing. With `browserSafe`, TIFF and BMP are converted to PNG.
 * The bytes are read through the workspace (the only code that touches its folder).
 */
export async function sendImageFile(reply: FastifyReply, file: string, opts: { browserSafe: boolean }): Promise<FastifyReply> {
  const { store } = reply.server.studio;
  const head = await store.readHead(file, SNIFF_BYTES, 'image file');
  const sniffed = sniffImage(head);
  if (!sniffed) throw new AppError('UNSUPPORTED_MEDIA', 'the stored file is not an image this studio serves');
  reply
    .header('X-Content-Type-Options', 'nosniff')
    .header('Content-Security-Policy', "default-src 'none'; sandbox")
    .header('Cache-Control', 'private, max-age=3600');
  if (opts.browserSafe && !BROWSER_NATIVE.has(sniffed.format)) {
    const converted = await toBrowserImage(await store.readFile(file, 'image file'));
    return reply.type(converted.mime).send(converted.buffer);
  }
  return reply.type(sniffed.mime).send(await store.openReadStream(file, 'image file'));
}
