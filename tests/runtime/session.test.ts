import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/kernel/errors.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { f32, i64, tensor, type DataType } from '../../src/onnx/ir.ts';
import {
  allocRuntimeTensor, availableProviders, copyTensorData, createSession, toRuntimeTensor, toTensorData,
} from '../../src/runtime/session.ts';

/** y = x * 0.5 + 1, the shape of an update rule (param ← f(param)). */
function halvePlusOne() {
  const b = new GraphBuilder();
  const x = b.input('x', 'float32', [3]);
  const half = b.initializer('half', f32([], [0.5]));
  const one = b.initializer('one', f32([], [1]));
  const m = b.op('Mul', [x, half]);
  b.opN('Add', [m, one], {}, ['y']);
  b.output('y', 'float32', [3]);
  return b.toModel();
}

describe('createSession', () => {
  it('runs with TensorData in and out, from an IR model', async () => {
    const s = await createSession(halvePlusOne(), { threads: 1 });
    expect(s.inputNames).toEqual(['x']);
    expect(s.outputNames).toEqual(['y']);
    expect(s.provider).toBe('cpu');
    expect(s.inputs).toEqual([{ name: 'x', dtype: 'float32', shape: [3] }]);
    expect(s.outputs).toEqual([{ name: 'y', dtype: 'float32', shape: [3] }]);
    const out = await s.run({ x: f32([3], [2, 4, -6]) });
    expect(out.y).toEqual(f32([3], [2, 3, -2]));
    await s.release();
  });

  it('runs alike with spinning, the memory arena and the memory pattern off', async () => {
    const s = await createSession(halvePlusOne(), { threads: 2, spinning: false, memoryArena: false, memoryPattern: false });
    for (let i = 0; i < 2; i++) expect((await s.run({ x: f32([3], [2, 4, -6]) })).y).toEqual(f32([3], [2, 3, -2]));
    await s.release();
  });

  it('feeds output handles back as the next run\'s inputs', async () => {
    const s = await createSession(halvePlusOne(), { threads: 1 });
    let h = toRuntimeTensor(f32([3], [10, 0, -2]));
    const expected = [10, 0, -2];
    for (let step = 0; step < 4; step++) {
      h = (await s.runHandles({ x: h })).y;
      for (let i = 0; i < 3; i++) expected[i] = expected[i] * 0.5 + 1;
    }
    expect(h.dtype).toBe('float32');
    expect(h.dims).toEqual([3]);
    expect(Array.from(toTensorData(h).data as Float32Array)).toEqual(expected);
    // runKeep is the same path, and mixes handles with TensorData.
    const k = await s.runKeep({ x: f32([3], [0, 0, 0]) });
    expect(Array.from(toTensorData(k.y).data as Float32Array)).toEqual([1, 1, 1]);
    await s.release();
  });

  it('writes into preallocated output handles', async () => {
    const s = await createSession(halvePlusOne(), { threads: 1 });
    const bound = allocRuntimeTensor('float32', [3]);
    const view = toTensorData(bound).data;
    await s.runHandles({ x: f32([3], [4, 6, 8]) }, { y: bound });
    expect(Array.from(view as Float32Array)).toEqual([3, 4, 5]);
    const kept = copyTensorData(bound);
    await s.runHandles({ x: f32([3], [0, 0, 0]) }, { y: bound });
    expect(Array.from(view as Float32Array)).toEqual([1, 1, 1]);
    expect(Array.from(kept.data as Float32Array)).toEqual([3, 4, 5]);
    await s.release();
  });

  it('fetches a subset of outputs by name, and reports symbolic dims', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N']);
    b.opN('Relu', [x], {}, ['r']);
    b.opN('Neg', [x], {}, ['n']);
    b.output('r', 'float32');
    b.output('n', 'float32');
    const s = await createSession(b.toModel(), { threads: 1 });
    expect(s.inputs[0].shape).toEqual(['N']);
    const out = await s.run({ x: f32([2], [-1, 2]) }, ['n']);
    expect(Object.keys(out)).toEqual(['n']);
    expect(out.n).toEqual(f32([2], [1, -2]));
    await s.release();
  });

  it('passes every IR dtype through unchanged', async () => {
    const cases: [DataType, ReturnType<typeof tensor>][] = [
      ['float32', f32([2], [1.5, -2])],
      ['float16', tensor('float16', [2], Uint16Array.from([0x3c00, 0xc000]))],
      ['float64', tensor('float64', [1], Float64Array.from([Math.PI]))],
      ['int64', i64([2], [-(2n ** 40n), 3])],
      ['int32', tensor('int32', [1], Int32Array.from([-9]))],
      ['int8', tensor('int8', [1], Int8Array.from([-128]))],
      ['uint8', tensor('uint8', [1], Uint8Array.from([255]))],
      ['bool', tensor('bool', [2], Uint8Array.from([1, 0]))],
    ];
    for (const [dtype, value] of cases) {
      const b = new GraphBuilder();
      b.input('x', dtype, value.dims);
      b.opN('Identity', ['x'], {}, ['y']);
      b.output('y', dtype, value.dims);
      const s = await createSession(b.toModel(), { threads: 1 });
      expect((await s.run({ x: value })).y).toEqual(value);
      await s.release();
    }
  });

  it('falls back to CPU when CUDA is asked for but cannot load, and lists providers', async () => {
    expect(availableProviders()).toContain('cpu');
    const s = await createSession(halvePlusOne(), { provider: 'cuda', threads: 1, graphOptimization: 'basic' });
    expect(['cpu', 'cuda']).toContain(s.provider);
    expect((await s.run({ x: f32([3], [0, 2, 4]) })).y).toEqual(f32([3], [1, 2, 3]));
    await s.release();
  });

  it('reports unloadable models and bad feeds as AppErrors', async () => {
    await expect(createSession(Uint8Array.from([1, 2, 3]))).rejects.toBeInstanceOf(AppError);
    const s = await createSession(halvePlusOne(), { threads: 1 });
    await expect(s.run({ x: f32([2], [1, 2]) })).rejects.toThrowError(/onnxruntime: run failed/);
    await s.release();
  });
});
