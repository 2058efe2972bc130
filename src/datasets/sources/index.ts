import type { ImportSource, ScanContext, ScanResult, Scanner } from '../types.ts';
import { scanCoco } from './coco.ts';
import { scanCsv } from './csv.ts';
import { scanFolder } from './folder.ts';
import { scanYolo } from './yolo.ts';
import { scanZip } from './zip.ts';

/** One line per source format: adding a format is its scanner file plus its line here. */
const SCANNERS: { [K in ImportSource['kind']]: Scanner<Extract<ImportSource, { kind: K }>> } = {
  folder: scanFolder,
  zip: scanZip,
  csv: scanCsv,
  coco: scanCoco,
  yolo: scanYolo,
};

export function scanSource(source: ImportSource, ctx: ScanContext): Promise<ScanResult> {
  const scanner = SCANNERS[source.kind] as Scanner;
  return scanner(source, ctx);
}
