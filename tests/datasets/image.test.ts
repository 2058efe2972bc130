import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeBmp } from '../../src/datasets/bmp.ts';
import { contentHash } from '../../src/datasets/hash.ts';
import { probeImage, sniffImage, toBrowserImage } from '../../src/datasets/image.ts';
import { makeThumbnail } from '../../src/datasets/thumbnail.ts';
import { SkipError } from '../../src/datasets/types.ts';
import { encodeBmp24, encodeBmp8TopDown, pngDeclaring, solid } from './helpers.ts';

async function skipReason(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SkipError) return e.reason;
    throw e;
  }
  return 'no error';
}

describe('sniffImage', () => {
  it('knows each supported format by its bytes', async () => {
    const base = solid(8, 6, '#336699');
    expect(sniffImage(await base.clone().jpeg().toBuffer())?.format).toBe('jpeg');
    expect(sniffImage(await base.clone().png().toBuffer())?.mime).toBe('image/png');
    expect(sniffImage(await base.clone().webp().toBuffer())?.format).toBe('webp');
    expect(sniffImage(await base.clone().gif().toBuffer())?.format).toBe('gif');
    expect(sniffImage(await base.clone().tiff().toBuffer())?.ext).toBe('tif');
    expect(sniffImage(encodeBmp24(2, 2, () => [1, 2, 3]))?.format).toBe('bmp');
  });

  it('refuses markup and text whatever the file is called', async () => {
    expect(sniffImage(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'))).toBeNull();
    expect(sniffImage(Buffer.from('<!doctype html><html><body>hi</body></html>'))).toBeNull();
    expect(sniffImage(Buffer.from('BM is how this text file starts'))).toBeNull();
    expect(sniffImage(Buffer.alloc(0))).toBeNull();
    expect(await skipReason(probeImage(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')))).toBe('unsupported');
  });
});

describe('probeImage', () => {
  it('reports width and height after EXIF orientation', async () => {
    const rotated = await solid(256, 128, '#00ff00').jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const probe = await probeImage(rotated);
    expect(probe).toMatchObject({ format: 'jpeg', width: 128, height: 256 });
    const thumb = await sharp(await makeThumbnail(rotated, 'jpeg')).metadata();
    expect([thumb.format, thumb.width, thumb.height]).toEqual(['webp', 64, 128]);
  });

  it('takes the first frame of an animated GIF', async () => {
    const frames = Buffer.concat([Buffer.alloc(20 * 10 * 4, 0xff), Buffer.alloc(20 * 10 * 4, 0x00)]);
    const gif = await sharp(frames, { raw: { width: 20, height: 20, channels: 4, pageHeight: 10 } as never }).gif().toBuffer();
    expect((await sharp(gif, { pages: -1 }).metadata()).pages).toBe(2);
    expect(await probeImage(gif)).toMatchObject({ format: 'gif', width: 20, height: 10 });
    const thumb = await sharp(await makeThumbnail(gif, 'gif')).raw().toBuffer({ resolveWithObject: true });
    expect([thumb.info.width, thumb.info.height]).toEqual([20, 10]);
    expect(thumb.data[0]).toBeGreaterThan(200); // the white first frame, not the black second one
  });

  it('reads TIFF', async () => {
    const tiff = await solid(30, 20, '#ff0000').tiff().toBuffer();
    expect(await probeImage(tiff)).toMatchObject({ format: 'tiff', width: 30, height: 20 });
  });

  it('refuses a truncated JPEG as corrupt when it is decoded', async () => {
    const jpeg = await solid(320, 240, '#884422').jpeg().toBuffer();
    const truncated = jpeg.subarray(0, Math.floor(jpeg.length * 0.6));
    expect(await skipReason(makeThumbnail(truncated, 'jpeg'))).toBe('corrupt');
    expect(await skipReason(probeImage(jpeg.subarray(0, 20)))).toBe('corrupt');
  });

  it('refuses a tiny PNG that declares a gigapixel, quickly', async () => {
    const bomb = pngDeclaring(50_000, 50_000);
    expect(bomb.length).toBeLessThan(2000);
    const t0 = performance.now();
    expect(await skipReason(probeImage(bomb))).toBe('too_large');
    expect(await skipReason(makeThumbnail(bomb, 'png'))).toBe('too_large');
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(await skipReason(probeImage(await solid(100, 100, '#000').png().toBuffer(), { maxPixels: 5000 }))).toBe('too_large');
  });
});

describe('BMP', () => {
  it('decodes 24-bit bottom-up pixels in the right place', () => {
    const bmp = encodeBmp24(3, 2, (x, y) => [x * 100, y * 100, 7]);
    const raw = decodeBmp(bmp, 1e6);
    expect([raw.width, raw.height, raw.channels]).toEqual([3, 2, 3]);
    expect([...raw.data.subarray(0, 3)]).toEqual([0, 0, 7]);
    expect([...raw.data.subarray(3 * 3 + 6, 3 * 3 + 9)]).toEqual([200, 100, 7]);
  });

  it('decodes 8-bit palette top-down images', () => {
    const bmp = encodeBmp8TopDown(5, 3, [[10, 20, 30], [200, 100, 50]], (x, y) => (x + y) % 2);
    const raw = decodeBmp(bmp, 1e6);
    expect([...raw.data.subarray(0, 6)]).toEqual([10, 20, 30, 200, 100, 50]);
    expect([...raw.data.subarray(5 * 3, 5 * 3 + 3)]).toEqual([200, 100, 50]);
  });

  it('decodes 16-bit 5-6-5 bit fields and 32-bit pixels', () => {
    // 2×1, BI_BITFIELDS with a 40-byte header: three masks follow it, pixel data at 66.
    const bmp16 = Buffer.alloc(66 + 4);
    bmp16.write('BM', 0, 'ascii');
    bmp16.writeUInt32LE(66, 10);
    bmp16.writeUInt32LE(40, 14);
    bmp16.writeInt32LE(2, 18);
    bmp16.writeInt32LE(1, 22);
    bmp16.writeUInt16LE(16, 28);
    bmp16.writeUInt32LE(3, 30);
    bmp16.writeUInt32LE(0xf800, 54);
    bmp16.writeUInt32LE(0x07e0, 58);
    bmp16.writeUInt32LE(0x001f, 62);
    bmp16.writeUInt16LE(0xf800, 66); // pure red
    bmp16.writeUInt16LE(0x07e0 | 0x0010, 68); // full green, half blue
    const raw16 = decodeBmp(bmp16, 1e6);
    expect([...raw16.data]).toEqual([255, 0, 0, 0, 255, 132]);

    const bmp32 = Buffer.alloc(54 + 4);
    bmp32.write('BM', 0, 'ascii');
    bmp32.writeUInt32LE(54, 10);
    bmp32.writeUInt32LE(40, 14);
    bmp32.writeInt32LE(1, 18);
    bmp32.writeInt32LE(1, 22);
    bmp32.writeUInt16LE(32, 28);
    bmp32.set([30, 20, 10, 0], 54); // B G R X: the fourth byte is not alpha
    const raw32 = decodeBmp(bmp32, 1e6);
    expect([raw32.channels, ...raw32.data]).toEqual([3, 10, 20, 30]);
  });

  it('goes through probe, thumbnail and toBrowserImage', async () => {
    const bmp = encodeBmp24(40, 30, (x) => [x * 6, 0, 0]);
    expect(await probeImage(bmp)).toMatchObject({ format: 'bmp', ext: 'bmp', width: 40, height: 30 });
    expect((await sharp(await makeThumbnail(bmp, 'bmp')).metadata()).width).toBe(40);
    const browser = await toBrowserImage(bmp);
    expect(browser.mime).toBe('image/png');
    expect((await sharp(browser.buffer).metadata()).format).toBe('png');
  });

  it('refuses truncated, compressed and oversized BMPs with the right reason', async () => {
    const bmp = encodeBmp24(40, 30, () => [1, 1, 1]);
    expect(await skipReason(probeImage(bmp.subarray(0, 200)))).toBe('corrupt');
    const rle = Buffer.from(bmp);
    rle.writeUInt32LE(1, 30);
    expect(await skipReason(probeImage(rle))).toBe('unsupported');
    const huge = Buffer.from(bmp);
    huge.writeInt32LE(100_000, 18);
    huge.writeInt32LE(100_000, 22);
    expect(await skipReason(probeImage(huge))).toBe('too_large');
  });
});

describe('toBrowserImage and contentHash', () => {
  it('passes web formats through and converts TIFF to PNG', async () => {
    const jpeg = await solid(10, 10, '#123456').jpeg().toBuffer();
    expect(await toBrowserImage(jpeg)).toEqual({ buffer: jpeg, mime: 'image/jpeg' });
    const tiff = await solid(10, 10, '#123456').tiff().toBuffer();
    expect((await toBrowserImage(tiff)).mime).toBe('image/png');
    expect(await skipReason(toBrowserImage(Buffer.from('<html></html>')))).toBe('unsupported');
  });

  it('hashes bytes with sha256', () => {
    expect(contentHash(Buffer.from('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
