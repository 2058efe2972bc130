import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/kernel/errors.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { decodeModel, encodeModel } from '../../src/onnx/codec.ts';
import { attr, f32, i64, tensor, type Model } from '../../src/onnx/ir.ts';
import { ONNX_PROTO } from '../../src/onnx/onnx-proto.ts';
import { createSession } from '../../src/runtime/session.ts';
import { interopFixtures, maxAbsDiff } from './fixtures.ts';

const fixtures = interopFixtures();

describe('codec on PyTorch-exported fixtures', () => {
  it('finds the fixtures', () => {
    expect(fixtures.map((f) => f.file)).toContain('tiny_cnn_eval_opset17.onnx');
    expect(fixtures.length).toBeGreaterThanOrEqual(4);
  });

  for (const fx of fixtures) {
    it(`${fx.file}: decodes, re-encodes, and runs identically`, async () => {
      const model = decodeModel(fx.bytes);
      expect(model.opsetImports.find((o) => o.domain === '')?.version).toBe(fx.opset);
      expect(model.graph.inputs[0].name).toBe(fx.input_name);
      expect(model.graph.outputs[0].name).toBe(fx.output_name);
      if (!fx.exported_in_training_mode) expect(model.graph.inputs[0].shape?.[0]).toBe('batch');

      const reencoded = encodeModel(model);
      // Encoding is a fixpoint, and everything but the (large) initializers compares structurally.
      const back = decodeModel(reencoded);
      expect(Buffer.from(encodeModel(back)).equals(Buffer.from(reencoded))).toBe(true);
      expect({ ...back, graph: { ...back.graph, initializers: null } }).toEqual({ ...model, graph: { ...model.graph, initializers: null } });
      expect([...back.graph.initializers.keys()]).toEqual([...model.graph.initializers.keys()]);
      for (const [k, t] of model.graph.initializers) {
        const u = back.graph.initializers.get(k);
        expect(u?.dtype).toBe(t.dtype);
        expect(u?.dims).toEqual(t.dims);
        expect(Buffer.from(u!.data.buffer, u!.data.byteOffset, u!.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))).toBe(true);
      }

      const feeds = { [fx.input_name]: f32(fx.input.shape, fx.input.data) };
      const a = await createSession(fx.bytes, { threads: 1 });
      const b = await createSession(reencoded, { threads: 1 });
      const ya = (await a.run(feeds))[fx.output_name];
      const yb = (await b.run(feeds))[fx.output_name];
      await a.release();
      await b.release();
      expect(yb.dims).toEqual(fx.expected_eval_output.shape);
      expect(Array.from(yb.data as Float32Array)).toEqual(Array.from(ya.data as Float32Array));
      // The training-mode export normalizes with batch statistics, so only its folded form
      // (fold-batchnorm.test.ts) can match PyTorch's eval output.
      if (!fx.exported_in_training_mode) {
        expect(maxAbsDiff(yb.data as Float32Array, fx.expected_eval_output.data)).toBeLessThanOrEqual(1e-4);
      }
    });
  }
});

describe('codec round trip of the IR', () => {
  function everyKindModel(): Model {
    const b = new GraphBuilder();
    b.input('x', 'float32', ['N', 3, null, 4]);
    b.initializer('w_f32', f32([2, 2], [1.5, -2, 0, 3.25]));
    b.initializer('w_f16', tensor('float16', [3], Uint16Array.from([0x3c00, 0xc000, 0x7bff])));
    b.initializer('w_f64', tensor('float64', [2], Float64Array.from([Math.PI, -1e300])));
    b.initializer('w_i64', i64([3], [-1, 0, 2n ** 40n]));
    b.initializer('w_i64_big', tensor('int64', [1], BigInt64Array.from([-(2n ** 62n) + 7n])));
    b.initializer('w_i32', tensor('int32', [2], Int32Array.from([-7, 2 ** 31 - 1])));
    b.initializer('w_i8', tensor('int8', [2], Int8Array.from([-128, 127])));
    b.initializer('w_u8', tensor('uint8', [2], Uint8Array.from([0, 255])));
    b.initializer('w_bool', tensor('bool', [2], Uint8Array.from([1, 0])));
    b.initializer('scalar', f32([], [42]));
    b.initializer('empty', f32([0, 3], []));
    const y = b.op('Custom', ['x', '', 'w_f32'], {
      i: attr.int(-3), f: attr.float(0.5), s: attr.string('héllo'), is: attr.ints([1, -2, 3]),
      fs: attr.floats([0.25, -1]), ss: attr.strings(['a', 'b']), t: attr.tensor(f32([1], [7])),
    });
    b.graph.nodes[0].domain = 'com.example';
    b.output(y, 'float32', ['N', 3]);
    b.graph.valueInfo.push({ name: 'mid', dtype: 'int64', shape: [2, 'K'], docString: 'a note' });
    const m = b.toModel({ labels: '["cat","dog"]', 'preprocessing.mean': '0.5' });
    m.producerVersion = '1.2.3';
    m.opsetImports.push({ domain: 'com.example', version: 1 });
    return m;
  }

  it('keeps every dtype, attribute kind, symbolic/unknown dim, value info and metadata', () => {
    const m = everyKindModel();
    const back = decodeModel(encodeModel(m));
    expect(back).toEqual(m);
    expect(back.graph.initializers.get('w_i64_big')?.data[0]).toBe(-(2n ** 62n) + 7n);
    expect(back.graph.inputs[0].shape).toEqual(['N', 3, null, 4]);
    expect(back.irVersion).toBe(8);
    expect(back.opsetImports[0]).toEqual({ domain: '', version: 17 });
  });

  it('writes initializers as little-endian raw_data', () => {
    const b = new GraphBuilder();
    b.initializer('w', f32([1], [1]));
    const bytes = encodeModel(b.toModel());
    // 1.0f little-endian = 00 00 80 3f, inside the file.
    expect(Buffer.from(bytes).includes(Buffer.from([0, 0, 0x80, 0x3f]))).toBe(true);
  });
});

describe('codec reading typed *_data fields and refusing what it cannot hold', () => {
  const root = protobuf.parse(ONNX_PROTO, { keepCase: true }).root;
  const ModelProto = root.lookupType('onnx.ModelProto');
  const encode = (initializer: object[]) => ModelProto.encode(ModelProto.fromObject({
    ir_version: 7, opset_import: [{ domain: '', version: 13 }], producer_name: 'test',
    graph: { name: 'g', initializer },
  })).finish();

  it('reads float_data, double_data, int64_data, int32_data (incl. float16 bits and bool)', () => {
    const m = decodeModel(encode([
      { name: 'f', dims: [2], data_type: 1, float_data: [1.5, -2] },
      { name: 'd', dims: [1], data_type: 11, double_data: [0.1] },
      { name: 'l', dims: [2], data_type: 7, int64_data: [-5, 9007199254740991] },
      { name: 'i', dims: [2], data_type: 6, int32_data: [-1, 3] },
      { name: 'h', dims: [1], data_type: 10, int32_data: [0x3c00] },
      { name: 'b', dims: [2], data_type: 9, int32_data: [1, 0] },
      { name: 'u', dims: [2], data_type: 2, int32_data: [200, 7] },
    ]));
    const t = (n: string) => m.graph.initializers.get(n);
    expect(t('f')).toEqual(f32([2], [1.5, -2]));
    expect(t('d')?.data).toEqual(Float64Array.from([0.1]));
    expect(t('l')?.data).toEqual(BigInt64Array.from([-5n, 9007199254740991n]));
    expect(t('i')?.data).toEqual(Int32Array.from([-1, 3]));
    expect(t('h')).toEqual({ dtype: 'float16', dims: [1], data: Uint16Array.from([0x3c00]) });
    expect(t('b')).toEqual({ dtype: 'bool', dims: [2], data: Uint8Array.from([1, 0]) });
    expect(t('u')).toEqual({ dtype: 'uint8', dims: [2], data: Uint8Array.from([200, 7]) });
  });

  it('drops value_info hints the IR cannot hold, but refuses such graph inputs', () => {
    const withHints = (field: 'value_info' | 'input') => ModelProto.encode(ModelProto.fromObject({
      ir_version: 8, opset_import: [{ domain: '', version: 17 }],
      graph: { name: 'g', [field]: [{ name: 'seq', type: { denotation: 'x' } }, { name: 's', type: { tensor_type: { elem_type: 8 } } },
        { name: 'ok', type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_param: 'N' }, {}] } } } }] },
    })).finish();
    expect(decodeModel(withHints('value_info')).graph.valueInfo).toEqual([{ name: 'ok', dtype: 'float32', shape: ['N', null] }]);
    expect(() => decodeModel(withHints('input'))).toThrowError(/'seq' is not a tensor/);
  });

  it('refuses external data with a clear error', () => {
    const bytes = encode([{ name: 'w', dims: [4], data_type: 1, data_location: 1, external_data: [{ key: 'location', value: 'w.bin' }] }]);
    expect(() => decodeModel(bytes)).toThrowError(/external data/);
    expect(() => decodeModel(bytes)).toThrowError(AppError);
  });

  it('refuses dtypes it does not model, and bytes that are not a model', () => {
    expect(() => decodeModel(encode([{ name: 's', dims: [1], data_type: 8, string_data: [new Uint8Array([65])] }]))).toThrowError(/unsupported element type 8/);
    expect(() => decodeModel(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff]))).toThrowError(AppError);
  });
});
