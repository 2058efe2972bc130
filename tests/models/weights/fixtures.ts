import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const WEIGHTS_FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/weights');

export function fixtureBytes(name: string): Uint8Array {
  return new Uint8Array(fs.readFileSync(path.join(WEIGHTS_FIXTURES, name)));
}

const Logits = z.object({ model: z.string(), format: z.string(), dtype: z.string(), input_size: z.number(), dims: z.array(z.number()), logits: z.array(z.number()) });

export function fixtureLogits(stem: string): z.infer<typeof Logits> {
  return Logits.parse(JSON.parse(fs.readFileSync(path.join(WEIGHTS_FIXTURES, `${stem}.logits.json`), 'utf8')));
}

/** input.bin: float32 LE [2, 3, 64, 64]. */
export function fixtureInput(): Float32Array {
  const b = fs.readFileSync(path.join(WEIGHTS_FIXTURES, 'input.bin'));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

const Names = z.record(z.string(), z.object({ torchvision: z.record(z.string(), z.array(z.number())), timm: z.record(z.string(), z.array(z.number())) }));
export function fixtureNames(): z.infer<typeof Names> {
  return Names.parse(JSON.parse(fs.readFileSync(path.join(WEIGHTS_FIXTURES, 'names.json'), 'utf8')));
}

/** A safetensors file by hand: u64 LE header length, JSON header, data. */
export function safetensorsBytes(header: Record<string, unknown>, data: Uint8Array, headerLength?: number): Uint8Array {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}
