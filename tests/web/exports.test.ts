import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readReport, removeExport, writeExport, writeReport } from '../../src/storage/exports.ts';
import { count, get, hx, makePageStudio, type PageStudio } from './helpers.ts';
import { trainedExperiment, type TrainedExperiment } from './evaluation-fixtures.ts';

/**
 * The deploy page through app.inject(), over a really trained and exported experiment: the board,
 * the export form with only existing checkpoints, the comparison table (agreeing with the stored
 * report, a failed validation shown plainly), one export's files, speed, profile, manifest and
 * "Try it"; start and delete from the forms — with a class label and an experiment name full of
 * HTML escaped wherever they land.
 */
const EVIL_LABEL = '<b>"bold\'</b>';
const EVIL_LABEL_ESCAPED = '&lt;b&gt;&quot;bold&#39;&lt;/b&gt;';
const EVIL_NAME = `<img src=x onerror=alert(1)>"'`;
const EVIL_NAME_ESCAPED = '&lt;img src=x onerror=alert(1)&gt;&quot;&#39;';

let s: PageStudio;
let t: TrainedExperiment;
let pageUrl: string;
let exportId: string;

beforeAll(async () => {
  s = await makePageStudio();
  t = await trainedExperiment(s.app, { name: EVIL_NAME, renameClass: { from: 'triangle', to: EVIL_LABEL } });
  pageUrl = `/projects/${t.projectId}/exports`;
  const { exports } = s.app.studio;
  const started = await exports.start(t.projectId, t.experimentId, { run_id: t.runId, checkpoint: 'last', variants: ['fp32', 'fp16', 'int8'], benchmark: true });
  exportId = started.export.id;
  const done = await exports.wait(t.projectId, t.experimentId, exportId);
  if (done.status !== 'succeeded') throw new Error(`export ${done.status}: ${JSON.stringify(done.error)}`);
}, 180_000);
afterAll(async () => s?.close());

const api = () => `/api/projects/${t.projectId}/experiments/${t.experimentId}/exports/${exportId}`;

describe('the deploy page', () => {
  it('renders the board: trained experiments, the form, the comparison and the export in detail, with local scripts', async () => {
    const res = await get(s.app, pageUrl);
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatch(/^<!doctype html>/);
    for (const id of ['id="exports"', 'id="export-list"', 'id="export-form"', 'id="compare-table"', 'id="export-detail"', 'id="export-try"', 'id="export-files"', 'id="bench-table"', 'id="export-profile"', 'id="export-manifest"']) {
      expect(res.body).toContain(id);
    }
    expect(res.body).toContain('src="/static/js/exports.js"');
    expect(res.body).not.toMatch(/src="https?:/);
    // The sidebar links here, marked as the current section.
    expect(res.body).toMatch(new RegExp(`href="/projects/${t.projectId}/exports" class="active"`));
    // Only the checkpoints that exist are offered; the last export's choice is preselected.
    expect(res.body).toContain(`value="${t.runId}:last" selected`);
    expect(res.body).toContain(`value="${t.runId}:best"`);
    for (const v of ['fp32', 'fp16', 'int8']) expect(res.body).toContain(`name="variant.${v}" checked`);
    expect(res.body).toContain('name="benchmark" checked');
    // The package and each of its files, from the API.
    expect(res.body).toContain(`id="export-download" href="${api()}/download" download`);
    for (const f of ['model.onnx', 'model.fp16.onnx', 'model.int8.onnx', 'labels.txt', 'README.md', 'manifest.json', 'SHA256SUMS']) {
      expect(res.body).toContain(`href="${api()}/files/${f}" download`);
    }
    // "Try it" posts to the predict route; one profile tab per variant.
    expect(res.body).toContain(`data-predict-url="${api()}/predict" data-field="image"`);
    expect(count(res.body, 'data-tab="')).toBe(3);
    expect(count(res.body, 'data-profile="')).toBe(3);
  });

  it('the comparison table agrees with the stored report, one row per variant', async () => {
    const x = await s.app.studio.exports.get(t.projectId, t.experimentId, exportId);
    const res = await get(s.app, pageUrl);
    const group = res.body.slice(res.body.indexOf(`id="compare-${exportId}"`), res.body.indexOf('</tbody>', res.body.indexOf(`id="compare-${exportId}"`)));
    expect(count(group, 'data-variant="')).toBe(3);
    for (const v of x.variants) {
      const row = group.slice(group.indexOf(`data-variant="${v.name}"`), group.indexOf('</tr>', group.indexOf(`data-variant="${v.name}"`)));
      expect(row).toContain(`data-validation="${v.validation.passed ? 'passed' : 'failed'}"`);
      expect(row).toContain(`${((v.accuracy ?? 0) * 100).toFixed(1)}%`);
      const p50 = v.benchmark!.results.reduce((a, b) => (b.threads > a.threads ? b : a)).latency_b1.p50_ms;
      expect(p50).toBeGreaterThan(0);
      expect(row).toMatch(/<span data-p50>[0-9.]+<\/span>/);
      expect(row).toMatch(/<span data-t32>[0-9.,]+<\/span>/);
    }
    // The int8 file is smaller than the fp32 one, and the page says so in its sizes.
    const size = (name: string) => x.variants.find((v) => v.name === name)!.size_bytes;
    expect(size('int8')).toBeLessThan(size('fp32'));
    // The profile tables hold the report's slowest nodes first.
    const fp32 = x.variants.find((v) => v.name === 'fp32')!;
    const slowest = [...fp32.profile!.nodes].sort((a, b) => b.mean_us - a.mean_us)[0];
    const table = res.body.slice(res.body.indexOf('data-profile="fp32"'));
    expect(table.indexOf(`title="${slowest.node}"`)).toBeGreaterThan(0);
    expect(table.indexOf(`title="${slowest.node}"`)).toBeLessThan(table.indexOf('</tr>', table.indexOf('<tbody>')));
  });

  it('shows a failed validation plainly: the badge, the failed criteria and the row marked', async () => {
    const ref = { projectId: t.projectId, experimentId: t.experimentId, exportId };
    const report = (await readReport(s.app.studio.store, ref))!;
    const failed = { ...report, variants: report.variants.map((v) => (v.name === 'int8' ? { ...v, validation: { ...v.validation, passed: false, failures: ['cosine 0.91 < 0.99'] } } : v)) };
    await writeReport(s.app.studio.store, ref, failed);
    try {
      const res = await get(s.app, pageUrl);
      expect(res.body).toContain('<tr class="failed-row" data-variant="int8">');
      expect(res.body).toContain('data-validation="failed">failed</span>');
      expect(res.body).toContain('<div class="valid-fail">cosine 0.91 &lt; 0.99</div>');
      expect(count(res.body, 'data-validation="passed"')).toBe(2);
    } finally {
      await writeReport(s.app.studio.store, ref, report);
    }
  });

  it('shows a failed export with its error, escaped, in the table and in detail', async () => {
    const id = 'export-zzzzzzzz';
    const ref = { projectId: t.projectId, experimentId: t.experimentId, exportId: id };
    const at = new Date(Date.now() + 60_000).toISOString();
    await writeExport(s.app.studio.store, {
      schema_version: 1, id, project_id: t.projectId, experiment_id: t.experimentId, status: 'failed',
      config: { run_id: t.runId, checkpoint: 'best', variants: ['int8'], benchmark: false },
      job_id: null, error: { code: 'UNSUPPORTED_OP', message: 'no int8 kernel for <Op "X">' },
      created_at: at, finished_at: at, updated_at: at,
    });
    try {
      // Newest first: the failed export is the one shown in detail.
      const res = await get(s.app, `${pageUrl}?experiment=${t.experimentId}`);
      const group = res.body.slice(res.body.indexOf(`id="compare-${id}"`), res.body.indexOf('</tbody>', res.body.indexOf(`id="compare-${id}"`)));
      expect(group).toContain('<span class="badge failed">failed</span>');
      expect(group).toContain('no int8 kernel for &lt;Op &quot;X&quot;&gt;');
      expect(group).not.toContain('data-variant=');
      expect(res.body).toContain('<b>This export failed.</b> <span class="code">UNSUPPORTED_OP</span><br>no int8 kernel for &lt;Op &quot;X&quot;&gt;');
      expect(res.body).not.toContain('id="export-download"');
      expect(res.body).not.toContain('id="export-try"');
      expect(res.body).toContain(`hx-delete="/projects/${t.projectId}/experiments/${t.experimentId}/exports/${id}"`);
    } finally {
      await removeExport(s.app.studio.store, ref);
    }
  });

  it('escapes a class label and an experiment name everywhere: list, hx-confirm, manifest', async () => {
    const res = await get(s.app, pageUrl);
    expect(res.body).not.toContain(EVIL_LABEL);
    expect(res.body).not.toContain('<img src=x');
    expect(res.body).not.toContain(`alert(1)>"'`);
    expect(res.body).toContain(`<span class="truncate exp-name">${EVIL_NAME_ESCAPED}</span>`);
    expect(res.body).toMatch(new RegExp(`hx-confirm="Delete the export “Run 1 · last” \\(${exportId}\\) of “${EVIL_NAME_ESCAPED.replace(/[()]/g, '\\$&')}”\\?`));
    // The manifest's labels, pretty-printed inside <pre>: JSON-escaped, then HTML-escaped.
    const pre = /<pre class="manifest-json" id="manifest-json">([^<]*)<\/pre>/.exec(res.body)?.[1] ?? '';
    expect(pre).toContain('&quot;labels&quot;: [');
    expect(pre).toContain('&lt;b&gt;\\&quot;bold&#39;&lt;/b&gt;');
  });

  it('answers the board fragment for an htmx swap, and 404 for an unknown export or experiment', async () => {
    const frag = await hx(s.app, 'GET', `${pageUrl}?experiment=${t.experimentId}&export=${exportId}`, undefined, { 'hx-target': 'exports' });
    expect(frag.statusCode).toBe(200);
    expect(frag.body.startsWith('<div id="exports"')).toBe(true);
    expect(frag.body).not.toContain('<html');
    expect(frag.body).toContain(`<tbody class="export-group selected" id="compare-${exportId}"`);
    const unknown = await get(s.app, `${pageUrl}?experiment=${t.experimentId}&export=export-00000000`);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.body).toMatch(/^<!doctype html>/);
    expect((await get(s.app, `${pageUrl}?experiment=exp-00000000`)).statusCode).toBe(404);
    expect((await get(s.app, `${pageUrl}?export=nonsense`)).statusCode).toBe(404);
  });
});

describe('exporting and deleting from the page', () => {
  it('refuses a start without a variant or a checkpoint, with a toast', async () => {
    const url = `/projects/${t.projectId}/experiments/${t.experimentId}/exports`;
    const none = await hx(s.app, 'POST', url, { checkpoint: `${t.runId}:best`, benchmark: 'on' });
    expect(none.statusCode).toBe(400);
    expect(none.headers['hx-retarget']).toBe('#toasts');
    expect(none.body).toContain('choose at least one variant');
    const bad = await hx(s.app, 'POST', url, { checkpoint: 'nonsense', 'variant.fp32': 'on' });
    expect(bad.statusCode).toBe(400);
    const missing = await hx(s.app, 'POST', url, { checkpoint: 'run-00000000:best', 'variant.fp32': 'on' });
    expect(missing.statusCode).toBe(404);
  });

  it('starts an export (live progress, then a new row), then deletes it after confirmation', async () => {
    const url = `/projects/${t.projectId}/experiments/${t.experimentId}/exports`;
    const started = await hx(s.app, 'POST', url, { checkpoint: `${t.runId}:best`, 'variant.fp16': 'on' });
    expect(started.statusCode).toBe(202);
    const loc = JSON.parse(String(started.headers['hx-location'])) as { path: string; target: string };
    expect(loc.target).toBe('#exports');
    const newId = /export=(export-[0-9a-z]{8})/.exec(loc.path)?.[1];
    expect(newId).toBeDefined();
    expect(newId).not.toBe(exportId);
    const running = await hx(s.app, 'GET', loc.path, undefined, { 'hx-target': 'exports' });
    const x = await s.app.studio.exports.get(t.projectId, t.experimentId, newId!);
    if (x.status === 'queued' || x.status === 'running') {
      expect(running.body).toContain('id="export-progress"');
      expect(running.body).toMatch(new RegExp(`hx-ext="sse" sse-connect="/projects/proj-[0-9a-z]{8}/experiments/exp-[0-9a-z]{8}/exports/${x.id}/live\\?last_event_id=\\d+" sse-close="end"`));
      expect(running.body).toMatch(/id="export-start" disabled/);
    }
    const done = await s.app.studio.exports.wait(t.projectId, t.experimentId, newId!);
    expect(done.status).toBe('succeeded');
    expect(done).toMatchObject({ checkpoint: 'best', requested: ['fp16'], benchmark: false });
    const after = await get(s.app, loc.path);
    expect(after.body).not.toContain('id="export-progress"');
    expect(count(after.body, 'class="export-group')).toBe(2);
    // Without a benchmark: the page says so instead of showing empty speed figures.
    expect(after.body).toContain('Exported without benchmarking');
    expect(after.body).not.toContain('id="bench-table"');
    // The form remembers the latest export's choices.
    expect(after.body).toContain(`value="${t.runId}:best" selected`);
    expect(after.body).toContain('name="variant.fp16" checked');
    expect(after.body).not.toContain('name="benchmark" checked');

    const del = await hx(s.app, 'DELETE', `${url}/${newId}`);
    expect(del.statusCode).toBe(200);
    expect(JSON.parse(String(del.headers['hx-location']))).toEqual({ path: `${pageUrl}?experiment=${t.experimentId}`, target: '#exports', swap: 'outerHTML' });
    const list = await s.app.studio.exports.list(t.projectId, t.experimentId);
    expect(list.map((e) => e.id)).toEqual([exportId]);
    const gone = await hx(s.app, 'DELETE', `${url}/${newId}`);
    expect(gone.statusCode).toBe(404);
  }, 120_000);

  it('a project without trained experiments gets the empty state', async () => {
    const other = await s.app.studio.projects.create({ name: 'nothing trained' });
    const res = await get(s.app, `/projects/${other.id}/exports`);
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('Nothing to export yet');
    expect(res.body).not.toContain('id="export-form"');
  });
});
