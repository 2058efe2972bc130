import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/kernel/errors.ts';
import { f32, i64, tensor, type TensorData } from '../../src/onnx/ir.ts';
import { type CheckpointContent, decodeCheckpoint, encodeCheckpoint } from '../../src/models/checkpoint.ts';

function sample(): CheckpointContent {
  // values chosen to catch any float rounding on the way through: subnormals, -0, NaN payloads
  const w = new Float32Array([1.1, -0, 1e-45, 3.4028234663852886e38, Math.PI, NaN, -2.5, 7]);
  return {
    params: { 'conv1.weight': f32([2, 1, 2, 2], w), 'fc/bias': f32([3], [0.1, 0.2, 0.3]) },
    optimizerState: { 'conv1.weight.exp_avg': f32([2, 1, 2, 2], w.map((x) => x / 3)), scalar: f32([], [42.5]) },
    bnStats: { 'bn1.running_mean': f32([5], [1, 2, 3, 4, 5]), 'bn1.num_batches_tracked': i64([], [7]) },
    step: 123,
    rng: [0xdeadbeef, 0, 1, 0xffffffff],
    metadata: { run: 'run-abc', note: 'ünïcödé' },
  };
}

function bitsOf(t: TensorData): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

function expectCorrupt(fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    expect((e as AppError).code).toBe('STORAGE_CORRUPT');
    expect((e as AppError).message).toMatch(pattern);
    return;
  }
  throw new Error('expected a corrupt-checkpoint error');
}

describe('checkpoint format', () => {
  it('round-trips every tensor bit-exactly with step, RNG and metadata', () => {
    const c = sample();
    const back = decodeCheckpoint(encodeCheckpoint(c));
    expect(back.step).toBe(123);
    expect(back.rng).toEqual(c.rng);
    expect(back.metadata).toEqual(c.metadata);
    for (const group of ['params', 'optimizerState', 'bnStats'] as const) {
      expect(Object.keys(back[group]).sort()).toEqual(Object.keys(c[group]).sort());
      for (const [name, t] of Object.entries(c[group])) {
        expect(back[group][name].dtype).toBe(t.dtype);
        expect(back[group][name].dims).toEqual(t.dims);
        expect(bitsOf(back[group][name])).toEqual(bitsOf(t));
      }
    }
  });

  it('lays out a safetensors-style file: u64 header length, JSON header, aligned data', () => {
    const bytes = encodeCheckpoint(sample());
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLen) % 8).toBe(0);
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLen)).toString('utf8'));
    expect(header.schema_version).toBe(1);
    expect(header.tensors['params/conv1.weight']).toEqual({ dtype: 'float32', shape: [2, 1, 2, 2], data_offsets: [0, 32] });
    expect(header.data_sha256).toMatch(/^[0-9a-f]{64}$/);
    // the first tensor's raw little-endian bytes sit at the start of the data section
    expect(new DataView(bytes.buffer).getFloat32(8 + headerLen, true)).toBe(Math.fround(1.1));
  });

  it('keeps float16 and int8 tensors and an empty checkpoint', () => {
    const half = tensor('float16', [3], new Uint16Array([0x3c00, 0x7bff, 0x8001]));
    const back = decodeCheckpoint(encodeCheckpoint({ params: { h: half, q: tensor('int8', [2], new Int8Array([-128, 127])) }, optimizerState: {}, bnStats: {}, step: 0, rng: [], metadata: {} }));
    expect(Array.from(back.params.h.data as Uint16Array)).toEqual([0x3c00, 0x7bff, 0x8001]);
    expect(Array.from(back.params.q.data as Int8Array)).toEqual([-128, 127]);
    const empty = decodeCheckpoint(encodeCheckpoint({ params: {}, optimizerState: {}, bnStats: {}, step: 5, rng: [9], metadata: {} }));
    expect(empty.step).toBe(5);
  });

  it('refuses truncated files', () => {
    const bytes = encodeCheckpoint(sample());
    expectCorrupt(() => decodeCheckpoint(bytes.subarray(0, 4)), /no header length/);
    expectCorrupt(() => decodeCheckpoint(bytes.subarray(0, 40)), /header of \d+ bytes/);
    expectCorrupt(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 3)), /data is \d+ bytes, header says/);
  });

  it('refuses a flipped data bit and a damaged header', () => {
    const bytes = encodeCheckpoint(sample());
    const flipped = bytes.slice();
    flipped[flipped.length - 20] ^= 0x01;
    expectCorrupt(() => decodeCheckpoint(flipped), /checksum/);

    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const badJson = bytes.slice();
    badJson[8] = 0x7a; // the opening brace
    expectCorrupt(() => decodeCheckpoint(badJson), /not JSON/);

    const text = Buffer.from(bytes.subarray(8, 8 + headerLen)).toString('utf8');
    const reheader = (json: string) => {
      const body = Buffer.alloc(headerLen, 0x20);
      body.write(json, 'utf8');
      const out = bytes.slice();
      out.set(body, 8);
      return out;
    };
    expectCorrupt(() => decodeCheckpoint(reheader(text.replace('"format":"ai-studio-checkpoint"', '"format":"something-else__"'))), /bad header/);
    expectCorrupt(() => decodeCheckpoint(reheader(text.replace('"data_offsets":[0,32]', '"data_offsets":[0,36]'))), /offsets/);
  });

  it('names an unknown schema version', () => {
    const bytes = encodeCheckpoint(sample());
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const text = Buffer.from(bytes.subarray(8, 8 + headerLen)).toString('utf8').replace('"schema_version":1', '"schema_version":9');
    const out = bytes.slice();
    out.set(Buffer.from(text, 'utf8'), 8);
    expect(() => decodeCheckpoint(out)).toThrow(/schema_version 9 is not supported/);
  });

  it('rejects a tensor whose data does not match its shape', () => {
    const bad = { ...sample(), params: { w: { dtype: 'float32' as const, dims: [3], data: new Float32Array(2) } } };
    expect(() => encodeCheckpoint(bad)).toThrow(/2 values for shape \[3\]/);
  });
});
