import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../src/kernel/errors.ts';
import { createModelsService, MAX_MODEL_BYTES } from '../../src/core/models.ts';
import { openWorkspace, type Workspace } from '../../src/storage/workspace.ts';
import { tempRoot } from '../storage/helpers.ts';

let cleanup: () => Promise<void>;
let ws: Workspace;
beforeEach(async () => {
  const t = await tempRoot('models');
  cleanup = t.cleanup;
  ws = await openWorkspace(path.join(t.dir, 'ws'));
});
afterEach(() => cleanup());

describe('models service', () => {
  it('applies the model size limit to uploads as to path imports', async () => {
    // Zero-filled and never written: the OS maps its pages lazily, so this costs no real memory.
    const tooBig = new Uint8Array(MAX_MODEL_BYTES + 1);
    const err = await createModelsService(ws).importUpload(tooBig, 'huge').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('PAYLOAD_TOO_LARGE');
  });
});
