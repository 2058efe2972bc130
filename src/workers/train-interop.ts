import { createRequire } from 'node:module';

/**
 * Worker threads on Node 20 get tsx's require() hook but not its ESM hooks, so piscina loads a
 * worker's module graph as CommonJS. There `import ort from 'onnxruntime-node'` (src/runtime)
 * reads `exports.default`, which onnxruntime-node (compiled with `__esModule`) does not set.
 * Imported first by the training worker, this gives the package a `default` that is itself —
 * what Node's own ESM interop does. Remove once src/runtime uses `import * as ort`.
 */
const ortExports = createRequire(import.meta.url)('onnxruntime-node') as Record<string, unknown>;
if (ortExports.default === undefined) Object.defineProperty(ortExports, 'default', { value: ortExports, enumerable: false });
