import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { count, get, hx, makePageStudio, type PageStudio } from './helpers.ts';
import { trainedExperiment, type TrainedExperiment } from './evaluation-fixtures.ts';

/**
 * The evaluation page through app.inject(), over a really trained and evaluated experiment: the
 * board, the metrics with the clickable confusion matrix, the results grid and its filters, one
 * result's top-5, start/reset from the forms — with a class label and an experiment name full of
 * HTML escaped wherever they land.
 */
const EVIL_LABEL = '<b>"bold\'</b>';
const EVIL_LABEL_ESCAPED = '&lt;b&gt;&quot;bold&#39;&lt;/b&gt;';
const EVIL_NAME = `<img src=x onerror=alert(1)>"'`;
const EVIL_NAME_ESCAPED = '&lt;img src=x onerror=alert(1)&gt;&quot;&#39;';

let s: PageStudio;
let t: TrainedExperiment;
let pageUrl: string;

beforeAll(async () => {
  s = await makePageStudio();
  t = await trainedExperiment(s.app, { name: EVIL_NAME, renameClass: { from: 'triangle', to: EVIL_LABEL } });
  pageUrl = `/projects/${t.projectId}/evaluation`;
  const { evaluation } = s.app.studio;
  await evaluation.start(t.projectId, t.experimentId, { run_id: t.runId, checkpoint: 'last', subsets: ['test', 'val'] });
  const done = await evaluation.wait(t.projectId, t.experimentId);
  if (done.status !== 'succeeded') throw new Error(`evaluation ${done.status}: ${JSON.stringify(done.error)}`);
}, 120_000);
afterAll(async () => s?.close());

const q = (params: Record<string, string>) => new URLSearchParams({ experiment: t.experimentId, ...params }).toString();

describe('the evaluation page', () => {
  it('renders the board: trained experiments, configuration, metrics, matrix and grid, with local scripts', async () => {
    const res = await get(s.app, pageUrl);
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatch(/^<!doctype html>/);
    for (const id of ['id="evaluation"', 'id="eval-config"', 'id="eval-metrics"', 'id="confusion-matrix"', 'id="eval-results"', 'id="eval-charts"', 'id="per-class"']) {
      expect(res.body).toContain(id);
    }
    expect(res.body).toContain('src="/vendor/alpine.min.js"');
    expect(res.body).toContain('src="/static/js/evaluation.js"');
    expect(res.body).not.toMatch(/src="https?:/);
    // Three collapsible sections, each an Alpine component with its toggle.
    expect(count(res.body, 'class="eval-toggle"')).toBe(3);
    expect(count(res.body, 'x-show="open"')).toBe(3);
    // The sidebar links here, marked as the current section.
    expect(res.body).toMatch(new RegExp(`href="/projects/${t.projectId}/evaluation" class="active"`));
    // Only the checkpoints that exist are offered.
    expect(res.body).toContain(`value="${t.runId}:last" selected`);
    expect(res.body).toContain(`value="${t.runId}:best"`);
    expect(res.body).toContain(`href="/api/projects/${t.projectId}/experiments/${t.experimentId}/evaluation/results.csv"`);
    expect(res.body).toContain(`href="/api/projects/${t.projectId}/experiments/${t.experimentId}/evaluation/metrics.json"`);
    // A class × class matrix of links (the dataset keeps its emptied `triangle` class: 4 × 4).
    const { labels } = (await s.app.studio.evaluation.get(t.projectId, t.experimentId)).aggregate!.confusion_matrix;
    expect(labels).toHaveLength(4);
    expect(count(res.body, 'data-cm-cell')).toBe(16);
  });

  it('the matrix and grid agree with the stored evaluation', async () => {
    const state = await s.app.studio.evaluation.get(t.projectId, t.experimentId);
    const { labels, matrix } = state.aggregate!.confusion_matrix;
    const res = await get(s.app, pageUrl);
    const total = matrix.flat().reduce((a, b) => a + b, 0);
    expect(total).toBe(state.evaluated);
    expect(res.body).toContain(`of <b data-eval-total>${total}</b> results`);
    // Each cell shows its count and links to the grid filtered to its pair.
    const cells = [...res.body.matchAll(/data-cm-cell data-label="([^"]*)" data-predicted="([^"]*)"[^>]*>(\d+)<\/a>/g)];
    expect(cells).toHaveLength(labels.length ** 2);
    const unescape = (v: string) => v.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
    for (const [, l, p, n] of cells) {
      expect(Number(n)).toBe(matrix[labels.indexOf(unescape(l))][labels.indexOf(unescape(p))]);
    }
    expect(res.body).toContain(`Accuracy</div><div class="value">${(state.aggregate!.accuracy * 100).toFixed(1)}%`);
  });

  it('escapes a class label and an experiment name everywhere: text, attributes, hx-confirm, chart data', async () => {
    const res = await get(s.app, pageUrl);
    expect(res.body).not.toContain(EVIL_LABEL);
    expect(res.body).not.toContain('<img src=x');
    expect(res.body).not.toContain(`alert(1)>"'`);
    expect(res.body).toContain(`<span class="truncate exp-name">${EVIL_NAME_ESCAPED}</span>`);
    expect(res.body).toContain(`hx-confirm="Reset the evaluation of “${EVIL_NAME_ESCAPED}”?`);
    expect(res.body).toContain(`<th class="cm-col" scope="col" title="${EVIL_LABEL_ESCAPED}"><span>${EVIL_LABEL_ESCAPED}</span></th>`);
    expect(res.body).toContain(`<option value="${EVIL_LABEL_ESCAPED}">true: ${EVIL_LABEL_ESCAPED}</option>`);
    // The chart data is JSON inside an attribute: the label's quotes and brackets are escaped there too.
    const charts = /data-charts="([^"]*)"/.exec(res.body)?.[1] ?? '';
    expect(charts).toContain('&lt;b&gt;\\&quot;bold&#39;&lt;/b&gt;');
    // A cell's link carries the label in its query string, percent-encoded.
    expect(res.body).toContain(`label=${encodeURIComponent(EVIL_LABEL).replace(/'/g, '%27')}`);
  });

  it('answers a confusion-matrix cell with the results fragment filtered to its pair', async () => {
    const state = await s.app.studio.evaluation.get(t.projectId, t.experimentId);
    const { labels, matrix } = state.aggregate!.confusion_matrix;
    // The evil class against each prediction: the grid holds exactly that cell's images.
    const i = labels.indexOf(EVIL_LABEL);
    for (const [j, predicted] of labels.entries()) {
      const res = await hx(s.app, 'GET', `${pageUrl}?${q({ label: EVIL_LABEL, predicted })}`, undefined, { 'hx-target': 'eval-results' });
      expect(res.statusCode).toBe(200);
      expect(res.body.startsWith('<div id="eval-results">')).toBe(true);
      expect(res.body).not.toContain('<html');
      expect(count(res.body, 'class="tile eval-tile')).toBe(Math.min(48, matrix[i][j]));
      expect(res.body).not.toContain(EVIL_LABEL);
      const trues = [...res.body.matchAll(/data-true>([^<]*)</g)].map((m) => m[1]);
      expect(new Set(trues).size).toBeLessThanOrEqual(1);
      if (trues.length) expect(trues[0]).toBe(EVIL_LABEL_ESCAPED);
      // The filter form keeps the pair selected, so further filters combine with it.
      expect(res.body).toContain(`<option value="${EVIL_LABEL_ESCAPED}" selected>true: ${EVIL_LABEL_ESCAPED}</option>`);
    }
  });

  it('filters by correctness and confidence, sorts confident mistakes first, and pages', async () => {
    const all = await s.app.studio.evaluation.results(t.projectId, t.experimentId, { page: 1, page_size: 500, sort: 'mistakes_first' });
    const mistakes = all.items.filter((r) => !r.correct);
    const res = await hx(s.app, 'GET', `${pageUrl}?${q({ only: 'misclassified' })}`, undefined, { 'hx-target': 'eval-results' });
    expect(count(res.body, 'class="tile eval-tile miss"')).toBe(mistakes.length);
    expect(count(res.body, 'class="tile eval-tile ok"')).toBe(0);
    // Default order: the mistakes first, the most confident of them first.
    const page = await get(s.app, `${pageUrl}?${q({})}`);
    const ids = [...page.body.matchAll(/id="result-(img-[0-9a-z]{8})"/g)].map((m) => m[1]);
    expect(ids.slice(0, Math.min(ids.length, all.items.length))).toEqual(all.items.slice(0, ids.length).map((r) => r.image_id));
    // Confidence range in percent.
    const high = await hx(s.app, 'GET', `${pageUrl}?${q({ min_pct: '90' })}`, undefined, { 'hx-target': 'eval-results' });
    expect(count(high.body, 'class="tile eval-tile')).toBe(all.items.filter((r) => r.confidence >= 0.9).length);
    expect(high.body).toContain('name="min_pct" min="0" max="100" step="1" placeholder="0" value="90"');
    // Pages keep the filters: past the end, Prev leads back with them.
    const past = await hx(s.app, 'GET', `${pageUrl}?${q({ only: 'misclassified', page: '3' })}`, undefined, { 'hx-target': 'eval-results' });
    expect(past.body).toContain('This page is past the last result.');
    expect(past.body).toMatch(new RegExp(`href="/projects/${t.projectId}/evaluation\\?experiment=${t.experimentId}&amp;only=misclassified" [^>]*rel="prev"`));
    const bad = await hx(s.app, 'GET', `${pageUrl}?${q({ min_pct: '150' })}`, undefined, { 'hx-target': 'eval-results' });
    expect(bad.statusCode).toBe(400);
    expect(bad.headers['hx-retarget']).toBe('#toasts');
  });

  it('opens one result with its top predictions, as a modal and as a page', async () => {
    const first = (await s.app.studio.evaluation.results(t.projectId, t.experimentId, { page: 1, page_size: 1, sort: 'mistakes_first' })).items[0];
    const url = `/projects/${t.projectId}/experiments/${t.experimentId}/evaluation/images/${first.image_id}`;
    const modal = await hx(s.app, 'GET', url);
    expect(modal.statusCode).toBe(200);
    expect(modal.body).toContain('class="modal-backdrop"');
    expect(modal.body).not.toContain('<html');
    expect(count(modal.body, '<div class="topk-head">')).toBe(Math.min(5, first.top_k.length));
    expect(modal.body).toContain(`src="/api/projects/${t.projectId}/datasets/${t.datasetId}/images/${first.image_id}/file"`);
    expect(modal.body).not.toContain(EVIL_LABEL);
    const page = await get(s.app, url);
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/^<!doctype html>/);
    expect(page.body).toContain('id="topk"');
    const missing = await hx(s.app, 'GET', url.replace(first.image_id, 'img-00000000'));
    expect(missing.statusCode).toBe(404);
  });

  it('the Alpine.js build is served from node_modules', async () => {
    const res = await get(s.app, '/vendor/alpine.min.js');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/javascript/);
    expect(res.body.length).toBeGreaterThan(10_000);
  });
});

describe('starting and resetting from the page', () => {
  it('refuses a start without a subset or without a checkpoint, with a toast', async () => {
    const url = `/projects/${t.projectId}/experiments/${t.experimentId}/evaluation`;
    const none = await hx(s.app, 'POST', url, { checkpoint: `${t.runId}:best`, batch_size: '16' });
    expect(none.statusCode).toBe(400);
    expect(none.headers['hx-retarget']).toBe('#toasts');
    expect(none.body).toContain('choose at least one subset');
    const bad = await hx(s.app, 'POST', url, { checkpoint: 'nonsense', 'subset.test': 'on' });
    expect(bad.statusCode).toBe(400);
    const big = await hx(s.app, 'POST', url, { checkpoint: `${t.runId}:best`, 'subset.test': 'on', batch_size: '5000' });
    expect(big.statusCode).toBe(400);
  });

  it('resets (the board shows no evaluation), starts again (a live progress box), then shows the new metrics', async () => {
    const url = `/projects/${t.projectId}/experiments/${t.experimentId}/evaluation`;
    const reset = await hx(s.app, 'DELETE', url);
    expect(reset.statusCode).toBe(200);
    expect(JSON.parse(String(reset.headers['hx-location']))).toEqual({ path: `${pageUrl}?experiment=${t.experimentId}`, target: '#evaluation', swap: 'outerHTML' });
    const empty = await hx(s.app, 'GET', `${pageUrl}?experiment=${t.experimentId}`, undefined, { 'hx-target': 'evaluation' });
    expect(empty.body.startsWith('<div id="evaluation"')).toBe(true);
    expect(empty.body).toContain('>not evaluated<');
    expect(empty.body).not.toContain('id="eval-metrics"');
    expect(empty.body).not.toContain('id="eval-reset"');
    expect(empty.body).toContain('Start evaluation');

    const started = await hx(s.app, 'POST', url, { checkpoint: `${t.runId}:best`, 'subset.test': 'on', tta: 'on', batch_size: '4' });
    expect(started.statusCode).toBe(202);
    expect(started.headers['hx-location']).toContain('#evaluation');
    const running = await hx(s.app, 'GET', `${pageUrl}?experiment=${t.experimentId}`, undefined, { 'hx-target': 'evaluation' });
    const state = await s.app.studio.evaluation.get(t.projectId, t.experimentId);
    if (state.status === 'queued' || state.status === 'running') {
      expect(running.body).toContain('id="eval-progress"');
      expect(running.body).toMatch(/hx-ext="sse" sse-connect="\/projects\/proj-[0-9a-z]{8}\/experiments\/exp-[0-9a-z]{8}\/evaluation\/live\?last_event_id=\d+" sse-close="end"/);
      expect(running.body).toMatch(/id="eval-start" disabled/);
    }
    const done = await s.app.studio.evaluation.wait(t.projectId, t.experimentId);
    expect(done.status).toBe('succeeded');
    expect(done.config).toMatchObject({ checkpoint: 'best', subsets: ['test'], tta: true, batch_size: 4 });
    const after = await get(s.app, `${pageUrl}?experiment=${t.experimentId}`);
    expect(after.body).toContain('id="eval-metrics"');
    expect(after.body).toContain('flip TTA on · batch 4');
    expect(after.body).toContain(`value="${t.runId}:best" selected`);
    expect(after.body).not.toContain('id="eval-progress"');
  }, 60_000);

  it('lists the images that could not be read, and evaluates the rest', async () => {
    const { evaluation, datasets } = s.app.studio;
    const before = (await evaluation.results(t.projectId, t.experimentId, { page: 1, page_size: 500, sort: 'file' })).items;
    const victim = before.find((r) => r.subset === 'test')!;
    await fs.writeFile(await datasets.imageFilePath(t.projectId, t.datasetId, victim.image_id), 'not an image');
    await evaluation.start(t.projectId, t.experimentId, { run_id: t.runId, checkpoint: 'last', subsets: ['test'] });
    const done = await evaluation.wait(t.projectId, t.experimentId);
    expect(done.status).toBe('succeeded');
    expect(done.problems_total).toBe(1);
    const res = await get(s.app, `${pageUrl}?experiment=${t.experimentId}`);
    expect(res.body).toContain('1</span> image could not be evaluated and was left out');
    expect(res.body).toContain(`title="${victim.file}">${victim.file}</td>`);
    expect(res.body).toContain(`of <b data-eval-total>${done.evaluated}</b> results`);
    expect(res.body).not.toContain(`id="result-${victim.image_id}"`);
  }, 60_000);

  it('a failed re-evaluation keeps the metrics on the page, with the failure shown above them', async () => {
    const { evaluation } = s.app.studio;
    const before = await evaluation.get(t.projectId, t.experimentId);
    expect(before.status).toBe('succeeded');
    const ckpt = path.join(s.dir, 'ws', 'projects', t.projectId, 'experiments', t.experimentId, 'runs', t.runId, 'checkpoints', 'best.ckpt');
    const saved = await fs.readFile(ckpt);
    await fs.writeFile(ckpt, 'not a checkpoint');
    try {
      await evaluation.start(t.projectId, t.experimentId, { run_id: t.runId, checkpoint: 'best', subsets: ['val'] });
      const done = await evaluation.wait(t.projectId, t.experimentId);
      expect(done).toMatchObject({ status: 'succeeded', aggregate: before.aggregate, last_attempt: { status: 'failed', config: { checkpoint: 'best' } } });
    } finally {
      await fs.writeFile(ckpt, saved);
    }
    const res = await get(s.app, `${pageUrl}?experiment=${t.experimentId}`);
    expect(res.body).toContain('id="eval-last-attempt"');
    expect(res.body).toMatch(/The latest evaluation \([^)]* · best\) failed [^;]*; the previous one is shown\./);
    expect(res.body).toContain('id="eval-metrics"');
    expect(res.body).toContain('id="eval-results"');
    expect(res.body).toContain(`of <b data-eval-total>${before.evaluated}</b> results`);
  }, 60_000);

  it('a project without trained experiments gets the empty state; an unknown experiment is a 404 page', async () => {
    const other = await s.app.studio.projects.create({ name: 'nothing trained' });
    const res = await get(s.app, `/projects/${other.id}/evaluation`);
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('Nothing to evaluate yet');
    const unknown = await get(s.app, `${pageUrl}?experiment=exp-00000000`);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.body).toMatch(/^<!doctype html>/);
  });
});
