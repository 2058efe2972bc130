import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ModelEntry } from '../core/models.ts';
import type { DownloadOffer } from '../core/weights.ts';
import type { JobEvent } from '../jobs/events.ts';
import { isAppError, notFound, type AppError } from '../kernel/errors.ts';
import { BackboneIdSchema } from '../schemas/common.ts';
import { WeightsIdSchema, type WeightsView } from '../schemas/weights.ts';
import { streamRenderedJobEvents } from '../http/sse.ts';
import { isHtmx } from './errors.ts';
import { formatBytes } from './format.ts';
import { parseForm, parseIds } from './forms.ts';
import { layoutData } from './layout.ts';
import { FORMAT_LABELS, formatDateTime, liveFigures, manualWay, sentence, sourceLabel, weightsTitle, wordedError } from './weights-view.ts';

/**
 * The "Models" page: the catalog's architectures with the pretrained weights loaded for each
 * (the selected one, `?model=`, in the right column: its weights, and upload / server path /
 * download to add more, each a job followed live), and the ONNX backbones imported into this
 * workspace (a server path here; an upload goes to /api/models/import from public/js/training.js,
 * as zip uploads do, and the list refreshes on `models-changed`).
 */

export const ModelImportForm = z.strictObject({ name: z.string(), path: z.string() });
const ModelIds = z.strictObject({ model_id: BackboneIdSchema });
const CatalogName = z.string().regex(/^[a-z0-9_]{1,64}$/);
const WeightsModelIds = z.strictObject({ name: CatalogName });
const WeightsIds = WeightsModelIds.extend({ weights_id: WeightsIdSchema });
const SelectQuery = z.object({ model: z.string().max(64).optional() });
const ListQuery = z.object({ settled: z.string().max(8).optional() });
const WeightsPathForm = z.strictObject({ path: z.string().max(4096) });
const WeightsDownloadForm = z.strictObject({ variant: z.string().max(64).optional() });

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

export const modelsUrl = (model?: string): string => (model ? `/models?model=${encodeURIComponent(model)}` : '/models');
const weightsBase = (model: string): string => `/models/${model}/weights`;

/** The architecture the page shows (`?model=` of the page an htmx request comes from), for the catalog's highlight. */
function pageModel(req: FastifyRequest): string | undefined {
  const url = req.headers['hx-current-url'];
  if (typeof url !== 'string') return undefined;
  try {
    return new URL(url).searchParams.get('model') ?? undefined;
  } catch {
    return undefined;
  }
}

/** The board alone when htmx asks for it (a catalog row chosen), the page otherwise. */
function wantsBoard(req: FastifyRequest): boolean {
  return isHtmx(req) && req.headers['hx-target'] === 'models-board' && req.headers['hx-history-restore-request'] !== 'true';
}

export default async function modelPages(app: FastifyInstance): Promise<void> {
  const { models, settings, weights, jobs, projects, experiments } = app.studio;

  /** The catalog with each architecture's weights counted, and the imported backbones. */
  async function listData(selected: string | null) {
    const rows = (await models.list()).map(modelRow);
    const all = await weights.listAll();
    const count = (name: string, status: WeightsView['status']) => all.filter((w) => w.model === name && w.status === status).length;
    const catalog = rows
      .filter((r) => r.kind === 'catalog')
      .map((r) => ({ ...r, weights_ready: count(r.name, 'ready'), weights_loading: count(r.name, 'loading'), href: modelsUrl(r.name), selected: r.name === selected }));
    return { catalog, imported: rows.filter((r) => r.kind === 'imported'), selected, list_url: `/models/list${selected ? `?model=${encodeURIComponent(selected)}` : ''}` };
  }

  /** The architecture shown on the right: the one asked for, else the first with weights, else the first. */
  async function selection(asked: string | undefined): Promise<string | null> {
    const names = (await models.list()).filter((m) => m.kind === 'catalog').map((m) => m.name);
    if (asked && names.includes(asked)) return asked;
    const loaded = new Set((await weights.listAll()).map((w) => w.model));
    return names.find((n) => loaded.has(n)) ?? names[0] ?? null;
  }

  /** One weights record as a list item; a loading one carries its live widget's URLs and figures. */
  function item(w: WeightsView, offers: readonly DownloadOffer[], usedBy: number) {
    const base = weightsBase(w.model);
    const events: JobEvent[] = w.job_id && jobs.events.has(w.job_id) ? jobs.events.since(w.job_id, 0) : [];
    const loading = w.status === 'loading';
    return {
      id: w.id,
      status: w.status,
      title: weightsTitle(w),
      source: sourceLabel(w, offers),
      source_path: w.source_path,
      format: w.format ? FORMAT_LABELS[w.format] : null,
      sha256: w.sha256,
      sha_short: w.sha256 ? w.sha256.slice(0, 12) : null,
      bytes_label: w.bytes === null ? null : formatBytes(w.bytes),
      tensors_loaded: w.tensors_loaded,
      skipped: w.tensors_skipped,
      missing: w.tensors_missing,
      head: w.num_classes === null ? null : `${w.num_classes.toLocaleString('en-US')}-class head`,
      created_label: formatDateTime(w.created_at),
      created_at: w.created_at,
      error: w.status === 'failed' ? (wordedError(w, offers) ?? { title: 'Could not load these weights', message: '' }) : null,
      used_by: usedBy,
      delete_url: `${base}/${w.id}`,
      live: loading
        ? {
            // htmx's SSE extension follows the job from the event the list was rendered up to.
            live_url: w.job_id ? `${base}/${w.id}/live?last_event_id=${events.at(-1)?.id ?? 0}` : null,
            end_url: `${base}/list?settled=1`,
            cancel_url: w.job_id ? `${base}/${w.id}/cancel` : null,
            figures: liveFigures(events, w.source),
          }
        : null,
    };
  }

  async function listOf(model: string) {
    const [records, offers, usage] = await Promise.all([weights.list(model), weights.downloads(model), weights.usage()]);
    return {
      model,
      url: `${weightsBase(model)}/list`,
      // Newest first, under "Random initialisation".
      items: records
        .slice()
        .reverse()
        .map((w) => item(w, offers, usage.get(w.id)?.length ?? 0)),
    };
  }

  async function panelOf(model: string) {
    const offers = await weights.downloads(model);
    const entry = models.catalogEntry(model);
    return {
      model,
      description: entry.description ?? null,
      list: await listOf(model),
      base: weightsBase(model),
      upload_url: `/api${weightsBase(model)}`,
      max_upload: formatBytes(settings.maxUploadBytes),
      host: offers[0] ? new URL(offers[0].url).host : null,
      offers: offers.map((o) => ({
        variant: o.variant,
        file: o.file,
        cached: o.cached,
        label: `${o.variant} · ${o.acc1.toFixed(1)} % top-1${o.default ? ' · default' : ''}${o.cached ? ' · cached' : ''}`,
      })),
    };
  }

  async function boardData(asked: string | undefined) {
    const selected = await selection(asked);
    return {
      ...(await listData(selected)),
      panel: selected ? await panelOf(selected) : null,
      maxUploadLabel: formatBytes(settings.maxUploadBytes),
    };
  }

  app.get('/models', async (req, reply) => {
    const q = parseForm(SelectQuery, req.query);
    reply.header('Vary', 'HX-Request, HX-Target');
    const data = await boardData(q.model);
    if (wantsBoard(req)) return reply.view('fragments/models-board', data);
    const page = layoutData(app, { title: 'Models', section: 'error', crumbs: [{ label: 'Models' }] });
    return reply.view('pages/models', { ...page, section: 'models', ...data });
  });

  app.get('/models/list', async (req, reply) => {
    const q = parseForm(SelectQuery, req.query);
    return reply.view('fragments/models-list', await listData(await selection(q.model ?? pageModel(req))));
  });

  app.post('/models/import', async (req, reply) => {
    const form = parseForm(ModelImportForm, req.body);
    await models.importFromPath({ path: form.path.trim(), name: form.name });
    return reply.view('fragments/models-list', await listData(await selection(pageModel(req))));
  });

  app.delete('/models/:model_id', async (req, reply) => {
    const { model_id } = parseIds(ModelIds, req.params);
    await models.remove(model_id);
    return reply.view('fragments/models-list', await listData(await selection(pageModel(req))));
  });

  // ── pretrained weights of a catalog architecture ────────────────────────────────────────────

  /** A refused action answered beside the form or item it came from (in words: no code). */
  function besideIt(reply: FastifyReply, e: AppError, target: string, html: { view: string; data: object }) {
    reply.code(e.status).header('HX-Retarget', target).header('HX-Reswap', 'innerHTML');
    return reply.view(html.view, html.data);
  }

  app.get('/models/:name/weights/list', async (req, reply) => {
    const { name } = parseIds(WeightsModelIds, req.params);
    const q = parseForm(ListQuery, req.query);
    // Fetched at the end of a load's stream: the catalog's counts follow.
    if (q.settled) reply.header('HX-Trigger', 'models-changed');
    return reply.view('fragments/weights-list', { list: await listOf(name) });
  });

  app.post('/models/:name/weights', async (req, reply) => {
    const { name } = parseIds(WeightsModelIds, req.params);
    const form = parseForm(WeightsPathForm, req.body);
    try {
      await weights.loadPath(name, form.path.trim());
    } catch (e) {
      if (isAppError(e) && e.status < 500 && e.code !== 'NOT_FOUND') {
        return besideIt(reply, e, '#weights-path-error', { view: 'fragments/inline-error', data: { message: sentence(e.message) } });
      }
      throw e;
    }
    reply.header('HX-Trigger', 'models-changed');
    return reply.view('fragments/weights-list', { list: await listOf(name) });
  });

  app.post('/models/:name/weights/download', async (req, reply) => {
    const { name } = parseIds(WeightsModelIds, req.params);
    const form = parseForm(WeightsDownloadForm, req.body);
    const variant = form.variant?.trim() || undefined;
    try {
      await weights.download(name, variant);
    } catch (e) {
      if (isAppError(e) && (e.code === 'OFFLINE' || e.code === 'DOWNLOAD_FAILED' || e.code === 'VALIDATION_ERROR')) {
        const offers = await weights.downloads(name);
        const offer = offers.find((o) => (variant ? o.variant === variant : o.default)) ?? null;
        const note = {
          kind: e.code === 'VALIDATION_ERROR' ? 'refused' : e.code === 'OFFLINE' ? 'offline' : 'failed',
          message: sentence(e.message.split(': download ')[0]),
          host: offer ? new URL(offer.url).host : null,
          offer: offer ? { ...offer, manual: manualWay(offer) } : null,
        };
        return besideIt(reply, e, '#weights-download-note', { view: 'fragments/weights-download-note', data: { note } });
      }
      throw e;
    }
    // The note of an earlier refusal goes (out of band) with the new list.
    reply.header('HX-Trigger', 'models-changed');
    return reply.view('fragments/weights-list', { list: await listOf(name), clear_note: true });
  });

  app.delete('/models/:name/weights/:weights_id', async (req, reply) => {
    const { name, weights_id } = parseIds(WeightsIds, req.params);
    try {
      await weights.remove(name, weights_id);
    } catch (e) {
      if (isAppError(e) && e.code === 'CONFLICT') {
        const users = (await weights.usage()).get(weights_id) ?? [];
        const named = await Promise.all(
          users.slice(0, 5).map(async (u) => {
            const p = await projects.get(u.project_id).catch(() => null);
            const x = await experiments.get(u.project_id, u.experiment_id).catch(() => null);
            return `“${x?.name ?? u.experiment_id}” (${p?.name ?? u.project_id})`;
          }),
        );
        const more = users.length > named.length ? ` and ${users.length - named.length} more` : '';
        const message =
          users.length === 1
            ? `These weights cannot be deleted: the experiment ${named[0]} starts from them. Delete that experiment first, or keep the weights.`
            : `These weights cannot be deleted: ${users.length} experiments start from them (${named.join(', ')}${more}). Delete those experiments first, or keep the weights.`;
        return besideIt(reply, e, `#weights-error-${weights_id}`, { view: 'fragments/inline-error', data: { message } });
      }
      throw e;
    }
    reply.header('HX-Trigger', 'models-changed');
    return reply.view('fragments/weights-list', { list: await listOf(name) });
  });

  app.post('/models/:name/weights/:weights_id/cancel', async (req, reply) => {
    const { name, weights_id } = parseIds(WeightsIds, req.params);
    const w = await weights.get(name, weights_id);
    if (w.status === 'loading' && w.job_id) {
      await jobs.cancel(w.job_id).catch((e: unknown) => {
        // Finished meanwhile: the list shows how it ended.
        if (!(isAppError(e) && e.code === 'CONFLICT')) throw e;
      });
    }
    return reply.view('fragments/weights-list', { list: await listOf(name) });
  });

  /**
   * A load's live stream for htmx's SSE extension: each progress or log event rendered as the
   * item's bar and step (its badge out of band once); then `end`, on which the list comes again.
   */
  app.get('/models/:name/weights/:weights_id/live', async (req, reply) => {
    const { name, weights_id } = parseIds(WeightsIds, req.params);
    const w = await weights.get(name, weights_id);
    if (!w.job_id) throw notFound('weights job', weights_id);
    const job = await jobs.get(w.job_id);
    const seen: JobEvent[] = [];
    let oob = true;
    return streamRenderedJobEvents(req, reply, {
      job,
      events: jobs.events,
      render: async (e) => {
        if (e.type !== 'progress' && e.type !== 'log') return [];
        seen.push(e);
        const html = await app.view('fragments/weights-progress', { id: w.id, l: liveFigures(seen, w.source), oob });
        oob = false;
        return [{ event: e.type, html }];
      },
    });
  });
}
