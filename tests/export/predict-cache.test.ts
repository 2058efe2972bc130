import { describe, expect, it } from 'vitest';
import { createPredictCache } from '../../src/export/predict-cache.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { encodeModel } from '../../src/onnx/codec.ts';
import { f32 } from '../../src/onnx/ir.ts';
import type { Session } from '../../src/runtime/session.ts';

/** The predict endpoint's session cache (src/export/predict-cache.ts): bounded, reused, released. */

/** y = x + k: a model whose answer says which one was loaded. */
function addModel(k: number): Uint8Array {
  const b = new GraphBuilder();
  const x = b.input('x', 'float32', [1]);
  const c = b.initializer('k', f32([1], [k]));
  b.opN('Add', [x, c], {}, ['y']);
  b.output('y', 'float32', [1]);
  return encodeModel(b.toModel());
}

async function answer(s: Session): Promise<number> {
  return (await s.run({ x: f32([1], [1]) }, ['y'])).y.data[0] as number;
}

describe('predict cache', () => {
  it('loads a model once per key, keeps at most `max`, least recently used out first', async () => {
    const cache = createPredictCache({ max: 2, threads: 1 });
    const loads: number[] = [];
    const load = (k: number) => async () => {
      loads.push(k);
      return addModel(k);
    };
    expect(await cache.use('a/1', load(1), answer)).toBe(2);
    expect(await cache.use('a/1', load(1), answer)).toBe(2);
    expect(await cache.use('b/2', load(2), answer)).toBe(3);
    expect(loads).toEqual([1, 2]);
    await cache.use('a/1', load(1), answer); // a/1 is now the most recent
    expect(await cache.use('c/3', load(3), answer)).toBe(4);
    expect(cache.keys()).toEqual(['a/1', 'c/3']);
    await cache.use('b/2', load(2), answer);
    expect(loads).toEqual([1, 2, 3, 2]);
    await cache.close();
    expect(cache.keys()).toEqual([]);
  });

  it('releases by prefix, but a session in use is released only after its request', async () => {
    const cache = createPredictCache({ max: 4, threads: 1 });
    await cache.use('exp/export-a/fp32', async () => addModel(1), answer);
    await cache.use('exp/export-b/fp32', async () => addModel(5), answer);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const inFlight = cache.use('exp/export-a/int8', async () => addModel(2), async (s) => {
      await gate;
      return answer(s);
    });
    await new Promise((r) => setTimeout(r, 20));
    await cache.release('exp/export-a/');
    expect(cache.keys()).toEqual(['exp/export-b/fp32']);
    release();
    // the request that held the session finished on it, not on a released one
    expect(await inFlight).toBe(3);
    await cache.close();
  });

  it('does not keep a model that failed to load', async () => {
    const cache = createPredictCache({ max: 2, threads: 1 });
    await expect(cache.use('bad', async () => new Uint8Array([1, 2, 3]), answer)).rejects.toThrow();
    expect(cache.keys()).toEqual([]);
    expect(await cache.use('bad', async () => addModel(0), answer)).toBe(1);
    await cache.close();
  });
});
