import type { FastifyInstance } from 'fastify';
import { isAppError } from '../kernel/errors.ts';
import type { DatasetSummary, SplitSummary } from '../schemas/dataset.ts';
import { labelShape } from '../datasets/types.ts';
import { DatasetIds, SplitForm, SplitIds, parseForm, parseIds, type GridQuery } from './forms.ts';

/** Splits on the dataset page: a form with a live preview (nothing saved), the list, delete. */

const SUBSETS = ['train', 'val', 'test'] as const;

export interface SplitPreview {
  name: string;
  /** What a row counts: a class, a label (multi-label) or a target (regression). */
  rowHeader: string;
  counts: SplitSummary['counts'];
  pct: Record<(typeof SUBSETS)[number], number>;
  rows: { label: string; train: number; val: number; test: number }[];
}

/** How the split card names what it stratifies by, for the dataset's task. */
export function stratifyTerms(d: DatasetSummary): { rowHeader: string; stratifyLabel: string } {
  const shape = labelShape(d.task);
  if (shape === 'multi') return { rowHeader: 'Label', stratifyLabel: 'Stratify by label (iterative)' };
  if (shape === 'targets') return { rowHeader: 'Target', stratifyLabel: `Stratify by quantiles of ${d.target_names[0] ?? 'the target'}` };
  return { rowHeader: 'Class', stratifyLabel: 'Stratify by class' };
}

function previewView(s: SplitSummary, rowHeader = 'Class'): SplitPreview {
  const assigned = s.counts.train + s.counts.val + s.counts.test;
  const pct = (n: number) => (assigned === 0 ? 0 : Math.round((n / assigned) * 1000) / 10);
  return {
    name: s.name,
    rowHeader,
    counts: s.counts,
    pct: { train: pct(s.counts.train), val: pct(s.counts.val), test: pct(s.counts.test) },
    rows: Object.keys(s.per_class)
      .sort()
      .map((label) => ({ label, train: s.per_class[label].train, val: s.per_class[label].val, test: s.per_class[label].test })),
  };
}

function nextName(existing: string[]): string {
  for (let i = 1; ; i++) if (!existing.includes(`split-${i}`)) return `split-${i}`;
}

/** Data of views/fragments/splits-card.eta. */
export async function splitsCard(app: FastifyInstance, projectId: string, datasetId: string, filters: GridQuery, oob = false) {
  const { datasets } = app.studio;
  const dataset = await datasets.get(projectId, datasetId);
  return {
    base: `/projects/${projectId}/datasets/${datasetId}`,
    dataset,
    filters,
    oob,
    preview: null,
    terms: stratifyTerms(dataset),
    splits: await datasets.listSplits(projectId, datasetId),
    splitDefaults: { name: nextName(dataset.split_names), seed: 42, train: 70, val: 15, test: 15, stratify: true },
  };
}

function toRequest(form: SplitForm, preview: boolean) {
  return {
    name: form.name,
    ratios: { train: form.train / 100, val: form.val / 100, test: form.test / 100 },
    stratify: form.stratify === 'on',
    seed: form.seed,
    preview,
  };
}

export default async function splitPages(app: FastifyInstance): Promise<void> {
  const { datasets } = app.studio;
  const base = '/projects/:project_id/datasets/:dataset_id/splits';

  // The preview follows every keystroke, so a not-yet-valid form is answered in place (an inline
  // note where the table goes) rather than with a toast per keystroke.
  app.post(`${base}/preview`, async (req, reply) => {
    const { project_id, dataset_id } = parseIds(DatasetIds, req.params);
    try {
      const form = parseForm(SplitForm, req.body);
      const summary = await datasets.previewSplit(project_id, dataset_id, toRequest(form, true));
      const terms = stratifyTerms(await datasets.get(project_id, dataset_id));
      return reply.view('fragments/split-preview', { preview: previewView(summary, terms.rowHeader) });
    } catch (e) {
      if (isAppError(e) && (e.code === 'VALIDATION_ERROR' || e.code === 'CONFLICT')) {
        return reply.code(e.status).view('fragments/inline-error', { message: e.message });
      }
      throw e;
    }
  });

  app.post(base, async (req, reply) => {
    const { project_id, dataset_id } = parseIds(DatasetIds, req.params);
    const form = parseForm(SplitForm, req.body);
    await datasets.createSplit(project_id, dataset_id, toRequest(form, false));
    // The grid shows each image's subset, so its filter form resubmits once the split selects were swapped.
    reply.header('HX-Trigger-After-Swap', 'grid-changed');
    return reply.view('fragments/splits-card', await splitsCard(app, project_id, dataset_id, {}, true));
  });

  app.delete(`${base}/:name`, async (req, reply) => {
    const { project_id, dataset_id, name } = parseIds(SplitIds, req.params);
    await datasets.deleteSplit(project_id, dataset_id, name);
    reply.header('HX-Trigger-After-Swap', 'grid-changed');
    return reply.view('fragments/splits-card', await splitsCard(app, project_id, dataset_id, {}, true));
  });
}
