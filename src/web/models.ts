import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ModelEntry } from '../core/models.ts';
import { BackboneIdSchema } from '../schemas/common.ts';
import { formatBytes } from './format.ts';
import { parseForm, parseIds } from './forms.ts';
import { layoutData } from './layout.ts';

/**
 * The "Models" page: the catalog's architectures and the ONNX backbones imported into this
 * workspace, and the import itself (a server path here; an upload goes to /api/models/import from
 * public/js/training.js, as zip uploads do, and the list refreshes on `models-changed`).
 */

export const ModelImportForm = z.strictObject({ name: z.string(), path: z.string() });
const ModelIds = z.strictObject({ model_id: BackboneIdSchema });

/** "11.7 M", "2.5 k": parameter counts as people say them. */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 1 : 2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

const triple = (t: readonly number[]) => t.map((v) => v.toFixed(3)).join(', ');

export interface ModelRow extends ModelEntry {
  params_label: string;
  mean_label: string;
  std_label: string;
  imagenet: boolean;
}

const IMAGENET = '0.485, 0.456, 0.406 / 0.229, 0.224, 0.225';

export function modelRow(m: ModelEntry): ModelRow {
  const mean_label = triple(m.mean);
  const std_label = triple(m.std);
  return { ...m, params_label: formatCount(m.param_count), mean_label, std_label, imagenet: `${mean_label} / ${std_label}` === IMAGENET };
}

export default async function modelPages(app: FastifyInstance): Promise<void> {
  const { models, settings } = app.studio;

  const listData = async () => {
    const rows = (await models.list()).map(modelRow);
    return { catalog: rows.filter((r) => r.kind === 'catalog'), imported: rows.filter((r) => r.kind === 'imported') };
  };

  app.get('/models', async (_req, reply) => {
    const page = layoutData(app, { title: 'Models', section: 'error', crumbs: [{ label: 'Models' }] });
    return reply.view('pages/models', { ...page, section: 'models', ...(await listData()), maxUploadLabel: formatBytes(settings.maxUploadBytes) });
  });

  app.get('/models/list', async (_req, reply) => reply.view('fragments/models-list', await listData()));

  app.post('/models/import', async (req, reply) => {
    const form = parseForm(ModelImportForm, req.body);
    await models.importFromPath({ path: form.path.trim(), name: form.name });
    return reply.view('fragments/models-list', await listData());
  });

  app.delete('/models/:model_id', async (req, reply) => {
    const { model_id } = parseIds(ModelIds, req.params);
    await models.remove(model_id);
    return reply.view('fragments/models-list', await listData());
  });
}
