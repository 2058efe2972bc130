import { parentPort } from 'node:worker_threads';
import sharp from 'sharp';
import { DecodedCache } from './decoded-cache.ts';
import { loadBatches, prefillDecoded, type Batch } from './loader.ts';
import { transformFor, type PrefillReport, type PrefillRequest, type ThreadMessage, type ThreadRequest } from './loader-protocol.ts';

/**
 * The loader thread (see loader-thread.ts): runs `loadBatches` for each request and sends one
 * batch per credit the consumer grants, transferring the tensors' memory.
 */

if (!parentPort) throw new Error('loader-worker.ts must run in a worker thread');
// Images are decoded several at a time already; libvips' own per-image threads would only fight
// the training step's threads for the same cores.
sharp.concurrency(1);
const port = parentPort;
// One per thread, and a thread per run: training images decoded in epoch 1 are reused after.
const decoded = new DecodedCache();

interface Active {
  controller: AbortController;
  credits: number;
  wake: (() => void) | null;
}
const active = new Map<number, Active>();

const send = (m: ThreadMessage, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

/**
 * One up-front decode at a time: an epoch that starts while the early one (a `prefill` request,
 * sent while the trainer is still being built) is running waits for it instead of decoding the
 * same images again.
 */
let prefilling: Promise<unknown> = Promise.resolve();
function prefill(r: PrefillRequest, signal: AbortSignal): Promise<PrefillReport> {
  const p = prefilling.then(async () => {
    const out = await prefillDecoded({ items: r.items, transform: transformFor(r.transform), cache: decoded, signal });
    return { ...out, cachedImages: decoded.count, cachedBytes: decoded.sizeBytes };
  });
  prefilling = p.catch(() => undefined);
  return p;
}

async function serve(req: Extract<ThreadRequest, { type: 'start' }>): Promise<void> {
  const state: Active = { controller: new AbortController(), credits: 0, wake: null };
  active.set(req.id, state);
  const { transform, ...rest } = req.options;
  try {
    if (transform.kind === 'train') {
      // Decoded up front, while no step runs (see prefillDecoded); a no-op once the cache holds them.
      const r = await prefill({ items: rest.items, transform }, state.controller.signal);
      if (r.decoded > 0) send({ type: 'prefilled', id: req.id, prefill: r });
    }
    const batches = loadBatches({
      ...rest,
      size: transform.size,
      transform: transformFor(transform),
      ...(transform.kind === 'train' ? { cache: decoded } : {}),
      signal: state.controller.signal,
      onWarning: (warning) => send({ type: 'warning', id: req.id, warning }),
    });
    for await (const b of batches) {
      while (state.credits === 0 && !state.controller.signal.aborted) await new Promise<void>((resolve) => (state.wake = resolve));
      if (state.controller.signal.aborted) break;
      state.credits--;
      sendBatch(req.id, b);
    }
    if (!state.controller.signal.aborted) send({ type: 'end', id: req.id });
  } catch (e) {
    if (!state.controller.signal.aborted) send({ type: 'error', id: req.id, name: e instanceof Error ? e.name : 'Error', message: e instanceof Error ? e.message : String(e) });
  } finally {
    active.delete(req.id);
  }
}

function sendBatch(id: number, b: Batch): void {
  // A packed batch may be a view of a larger buffer; send exactly its bytes.
  const input = b.input.byteOffset === 0 && b.input.byteLength === b.input.buffer.byteLength ? b.input : b.input.slice();
  send({ type: 'batch', id, batch: { ...b, input } }, [input.buffer as ArrayBuffer, b.target.buffer as ArrayBuffer]);
}

async function servePrefill(req: Extract<ThreadRequest, { type: 'prefill' }>): Promise<void> {
  const state: Active = { controller: new AbortController(), credits: 0, wake: null };
  active.set(req.id, state);
  try {
    send({ type: 'prefilled', id: req.id, prefill: await prefill(req.request, state.controller.signal) });
  } catch (e) {
    send({ type: 'error', id: req.id, name: e instanceof Error ? e.name : 'Error', message: e instanceof Error ? e.message : String(e) });
  } finally {
    active.delete(req.id);
  }
}

port.on('message', (m: ThreadRequest) => {
  if (m.type === 'start') {
    void serve(m);
    return;
  }
  if (m.type === 'prefill') {
    void servePrefill(m);
    return;
  }
  const state = active.get(m.id);
  if (!state) return;
  if (m.type === 'pull') state.credits++;
  else state.controller.abort();
  state.wake?.();
  state.wake = null;
});
