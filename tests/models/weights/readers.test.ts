import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../../src/kernel/errors.ts';
import { readSafetensors, readTorchPth, readWeightsFile, sniffWeightsFormat } from '../../../src/models/weights/index.ts';
import { encodeCheckpoint } from '../../../src/models/checkpoint.ts';
import { f32, i64 } from '../../../src/onnx/ir.ts';
import { fixtureBytes, safetensorsBytes } from './fixtures.ts';

function codeOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof AppError) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('did not throw');
}

describe('torchvision .pth reader', () => {
  it('reads a state dict: views with offsets, OrderedDict _metadata, num_batches_tracked skipped', () => {
    const r = readTorchPth(fixtureBytes('resnet18.pth'));
    expect(r.format).toBe('torchvision_pth');
    expect(r.tensors.get('conv1.weight')!.dims).toEqual([64, 3, 7, 7]);
    expect(r.tensors.get('fc.weight')!.dims).toEqual([1000, 512]);
    expect(r.tensors.size).toBe(102);
    expect(r.skipped.filter((s) => s.name.endsWith('num_batches_tracked')).length).toBe(20);
    expect(r.skipped.every((s) => s.reason === 'batch-norm step counter: not used')).toBe(true);
  });

  it('materializes transposed and offset views, converts bfloat16/float16/float64, keeps parameters', () => {
    const r = readTorchPth(fixtureBytes('hostile/edge.pth'));
    expect([...r.tensors.get('base')!.data]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(r.tensors.get('t')!.dims).toEqual([4, 3]);
    expect([...r.tensors.get('t')!.data]).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    expect([...r.tensors.get('bf')!.data]).toEqual([1.5, -2.25, 3]);
    expect([...r.tensors.get('half')!.data]).toEqual([0.5, 65504]);
    expect([...r.tensors.get('dbl')!.data]).toEqual([1.25, -7.5]);
    expect([...r.tensors.get('offset')!.data]).toEqual([3, 4, 5, 6]);
    expect([...r.tensors.get('param')!.data]).toEqual([9, 8]);
    expect(r.skipped).toEqual([{ name: 'bn.num_batches_tracked', reason: 'batch-norm step counter: not used' }]);
  });

  it('finds a state dict wrapped as {state_dict, epoch}', () => {
    const r = readTorchPth(fixtureBytes('hostile/wrapped.pth'));
    expect([...r.tensors.keys()]).toEqual(['a.weight']);
    expect(r.skipped).toEqual([{ name: 'epoch', reason: "outside the state dict (under 'state_dict')" }]);
  });

  it.each([
    ['os_system.pth', 'os.system'],
    ['posix_system.pth', 'posix.system'],
    ['builtins_eval.pth', 'builtins.eval'],
    ['subprocess_popen.pth', 'subprocess.Popen'],
  ])('refuses %s naming the global, and runs nothing', (file, global) => {
    const marker = '/tmp/ai-studio-pwned';
    const before = existsSync(marker);
    const e = codeOf(() => readTorchPth(fixtureBytes(`hostile/${file}`)));
    expect(e.code).toBe('UNSAFE_PICKLE');
    expect(e.message).toContain(`'${global}'`);
    expect(e.message).toContain('nothing was run');
    if (!before) expect(existsSync(marker)).toBe(false);
  });

  it.each([
    ['zip_slip.pth', '../escape.txt'],
    ['zip_absolute.pth', '/tmp/ai-studio-absolute.txt'],
  ])('refuses a zip with an entry that leaves its folder (%s)', (file, entry) => {
    const e = codeOf(() => readTorchPth(fixtureBytes(`hostile/${file}`)));
    expect(e.code).toBe('BAD_ARCHIVE');
    expect(e.message).toContain(entry);
    expect(existsSync('/tmp/ai-studio-absolute.txt')).toBe(false);
  });

  it('refuses the legacy format with the way to convert it, and a truncated storage', () => {
    const legacy = codeOf(() => readWeightsFile(fixtureBytes('hostile/legacy.pth')));
    expect(legacy.code).toBe('BAD_INPUT');
    expect(legacy.message).toMatch(/legacy format.*torch\.save/);
    const trunc = codeOf(() => readTorchPth(fixtureBytes('hostile/truncated.pth')));
    expect(trunc.code).toBe('BAD_INPUT');
    expect(trunc.message).toMatch(/truncated/);
  });

  it('refuses a file cut short anywhere', () => {
    const bytes = fixtureBytes('hostile/edge.pth');
    for (const n of [10, 200, bytes.length - 30]) {
      const e = codeOf(() => readTorchPth(bytes.subarray(0, n)));
      expect(['BAD_INPUT', 'BAD_ARCHIVE']).toContain(e.code);
    }
  });
});

describe('safetensors reader', () => {
  const f32bytes = (vals: number[]) => new Uint8Array(new Float32Array(vals).buffer);

  it('reads F32/F16/BF16 tensors and skips integer ones', () => {
    const data = new Uint8Array(8 + 4 + 4 + 8);
    data.set(f32bytes([1.5, -2]), 0);
    data.set([0x00, 0x3c, 0x00, 0xc0], 8); // f16 1, -2
    data.set([0xc0, 0x3f, 0x20, 0x41], 12); // bf16 1.5, 10
    new DataView(data.buffer).setBigInt64(16, 7n, true);
    const r = readSafetensors(
      safetensorsBytes(
        {
          a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          h: { dtype: 'F16', shape: [2], data_offsets: [8, 12] },
          b: { dtype: 'BF16', shape: [1, 2], data_offsets: [12, 16] },
          'bn.num_batches_tracked': { dtype: 'I64', shape: [], data_offsets: [16, 24] },
          __metadata__: { format: 'pt' },
        },
        data,
      ),
    );
    expect([...r.tensors.get('a')!.data]).toEqual([1.5, -2]);
    expect([...r.tensors.get('h')!.data]).toEqual([1, -2]);
    expect([...r.tensors.get('b')!.data]).toEqual([1.5, 10]);
    expect(r.tensors.get('b')!.dims).toEqual([1, 2]);
    expect(r.skipped).toEqual([{ name: 'bn.num_batches_tracked', reason: 'batch-norm step counter: not used' }]);
  });

  it.each([
    ['overlapping tensors', { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 16, /overlap/],
    ['offsets past the data', { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8, /data section/],
    ['a size that is not prod(shape)·dtype', { a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8, /declares 8 bytes for float32\[3\]/],
    ['an end before its begin', { a: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, 8, /before it begins/],
    ['a 10 GB tensor', { a: { dtype: 'F32', shape: [2500000000], data_offsets: [0, 10000000000] } }, 8, /lies at bytes \[0, 10000000000\)/],
    ['a 10 GB tensor with a lying size', { a: { dtype: 'F32', shape: [50000, 50000], data_offsets: [0, 8] } }, 8, /declares 8 bytes/],
    ['an unknown dtype', { a: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, 8, /dtype/],
    ['a negative dimension', { a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 8, /shape/],
  ])('refuses %s', (_what, header, dataBytes, msg) => {
    const e = codeOf(() => readSafetensors(safetensorsBytes(header, new Uint8Array(dataBytes))));
    expect(e.code).toBe('BAD_INPUT');
    expect(e.message).toMatch(msg);
  });

  it('refuses a header over the limit or longer than the file, before reading it', () => {
    const big = codeOf(() => readSafetensors(safetensorsBytes({}, new Uint8Array(0), 2 ** 40)));
    expect(big.message).toMatch(/header of 1099511627776 bytes/);
    const long = codeOf(() => readSafetensors(safetensorsBytes({ a: 1 }, new Uint8Array(0), 4096)));
    expect(long.message).toMatch(/truncated/);
  });
});

describe('format detection', () => {
  it('tells the formats apart by their bytes and refuses anything else', () => {
    expect(sniffWeightsFormat(fixtureBytes('resnet18.pth').subarray(0, 64))).toBe('torchvision_pth');
    expect(sniffWeightsFormat(fixtureBytes('mobilenet_v3_small_timm.safetensors').subarray(0, 64))).toBe('safetensors');
    const ckpt = encodeCheckpoint({ params: { 'fc.weight': f32([1, 2], [1, 2]) }, optimizerState: {}, bnStats: { 'bn.running_mean': f32([1], [3]) }, step: 4, rng: [1], metadata: { model: 'small_cnn' } });
    expect(sniffWeightsFormat(ckpt.subarray(0, 64))).toBe('studio_ckpt');
    const r = readWeightsFile(ckpt);
    expect(r.format).toBe('studio_ckpt');
    expect(r.model).toBe('small_cnn');
    expect([...r.tensors.keys()].sort()).toEqual(['bn.running_mean', 'fc.weight']);
    const e = codeOf(() => sniffWeightsFormat(new TextEncoder().encode('hello, this is not weights')));
    expect(e.message).toMatch(/not a weights file/);
    void i64;
  });
});
