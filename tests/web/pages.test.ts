import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureExampleProject } from '../../src/core/example.ts';
import { writeSyntheticFolder } from '../../src/datasets/synthetic.ts';
import { count, get, hx, makePageStudio, type PageStudio } from './helpers.ts';

/**
 * The pages through app.inject(): every page and fragment renders from the real services, user
 * text is escaped wherever it lands (text, attributes, hx-* attributes, data for the chart), and
 * errors come back as an error page or, for htmx, a toast retargeted into #toasts.
 */
const EVIL = `<img src=x onerror=alert(1)>"'`;
const EVIL_ESCAPED = '&lt;img src=x onerror=alert(1)&gt;&quot;&#39;';
const EVIL_LABEL = '<b>"bold\'</b>';
const EVIL_LABEL_ESCAPED = '&lt;b&gt;&quot;bold&#39;&lt;/b&gt;';

let s: PageStudio;
let evilId: string;
let exampleId: string;
let dsId: string;
let dsUrl: string;
let imageIds: string[];

beforeAll(async () => {
  s = await makePageStudio();
  const { projects, datasets, store } = s.app.studio;
  // 25 per class = 75 images: two grid pages of 60.
  const example = await ensureExampleProject(store, { perClass: 25, size: 32 });
  if (!example) throw new Error('example project not made');
  exampleId = example.id;
  dsId = (await datasets.list(exampleId))[0].id;
  dsUrl = `/projects/${exampleId}/datasets/${dsId}`;
  const page = await datasets.listImages(exampleId, dsId, { page: 1, page_size: 500 });
  imageIds = page.items.map((i) => i.id);
  await datasets.relabelImage(exampleId, dsId, imageIds[0], { label: EVIL_LABEL });
  evilId = (await projects.create({ name: EVIL, description: EVIL })).id;
});
afterAll(async () => s?.close());

describe('projects list', () => {
  it('renders a whole page with the studio layout and local scripts only', async () => {
    const res = await get(s.app, '/');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toMatch(/^<!doctype html>/);
    expect(res.body).toContain('src="/vendor/htmx.min.js"');
    expect(res.body).toContain('href="/static/css/studio.css"');
    expect(res.body).not.toMatch(/src="https?:/);
    expect(res.body).toContain('Example: shapes');
    // keyboard: the first thing to tab to skips the navigation
    expect(res.body).toMatch(/<body>\s*<a class="skip-link" href="#content">Skip to content<\/a>/);
    expect(res.body).toContain('<main class="content" id="content" tabindex="-1">');
    expect((await get(s.app, '/projects')).statusCode).toBe(200);
  });

  it('escapes a project name everywhere, hx-confirm and aria-label included', async () => {
    const res = await get(s.app, '/');
    expect(res.body).not.toContain('<img src=x');
    expect(res.body).not.toContain(`alert(1)>"'`);
    expect(res.body).toContain(`<a class="title truncate" href="/projects/${evilId}">${EVIL_ESCAPED}</a>`);
    expect(res.body).toContain(`hx-confirm="Delete the project “${EVIL_ESCAPED}” with all its datasets?`);
    expect(res.body).toContain(`aria-label="Rename ${EVIL_ESCAPED}"`);
    const edit = await hx(s.app, 'GET', `/projects/${evilId}/edit`);
    expect(edit.body).toContain(`value="${EVIL_ESCAPED}"`);
    expect(edit.body).not.toContain('<img');
  });

  it('creates a project from the form, answers with the refreshed list and opens the project', async () => {
    const res = await hx(s.app, 'POST', '/projects', { name: 'From the form', description: 'typed in a browser' });
    expect(res.statusCode).toBe(200);
    expect(res.body.startsWith('<section id="project-list">')).toBe(true);
    expect(res.body).not.toContain('<html');
    expect(res.body).toContain('From the form');
    const made = (await s.app.studio.projects.list()).find((p) => p.name === 'From the form');
    expect(made).toBeDefined();
    // and the browser opens the new project
    expect(res.headers['hx-redirect']).toBe(`/projects/${made!.id}`);
  });

  it('answers an invalid form with a toast retargeted into #toasts', async () => {
    const res = await hx(s.app, 'POST', '/projects', { name: '   ' });
    expect(res.statusCode).toBe(400);
    expect(res.headers['hx-retarget']).toBe('#toasts');
    expect(res.headers['hx-reswap']).toBe('beforeend');
    expect(res.body).toContain('class="toast"');
    expect(res.body).toContain('VALIDATION_ERROR');
    const unknown = await hx(s.app, 'POST', '/projects', { name: 'x', extra: 'field' });
    expect(unknown.statusCode).toBe(400);
  });

  it('renames inline and deletes', async () => {
    const p = await s.app.studio.projects.create({ name: 'Old name' });
    const renamed = await hx(s.app, 'PATCH', `/projects/${p.id}`, { name: 'New name', description: 'd' });
    expect(renamed.statusCode).toBe(200);
    expect(renamed.body).toContain(`id="project-${p.id}"`);
    expect(renamed.body).toContain('New name');
    expect((await s.app.studio.projects.get(p.id)).name).toBe('New name');
    const card = await hx(s.app, 'GET', `/projects/${p.id}/card`);
    expect(card.body).toContain('New name');
    const del = await hx(s.app, 'DELETE', `/projects/${p.id}`);
    expect(del.statusCode).toBe(200);
    expect(del.body).not.toContain(p.id);
    expect(await s.app.studio.projects.exists(p.id)).toBe(false);
  });

  it('refuses a cross-origin form post (the security guard covers the pages too)', async () => {
    const res = await hx(s.app, 'POST', '/projects', { name: 'csrf' }, { origin: 'http://evil.example' });
    expect(res.statusCode).toBe(403);
    expect((await s.app.studio.projects.list()).some((p) => p.name === 'csrf')).toBe(false);
  });

  it('makes another example project when asked, even after the start-up offer', async () => {
    const before = (await s.app.studio.projects.list()).length;
    const res = await hx(s.app, 'POST', '/projects/example');
    expect(res.statusCode).toBe(200);
    expect((await s.app.studio.projects.list()).length).toBe(before + 1);
  });
});

describe('project page', () => {
  it('lists the datasets with status and counts, and the import tabs', async () => {
    const res = await get(s.app, `/projects/${exampleId}`);
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('<h1>Example: shapes</h1>');
    expect(res.body).toContain(`href="${dsUrl}"`);
    expect(res.body).toContain('<span class="badge ready">ready</span>');
    expect(res.body).toContain('<td class="num">75</td>');
    for (const tab of ['zip', 'folder', 'csv', 'coco', 'yolo']) expect(res.body).toContain(`data-panel="${tab}"`);
    expect(res.body).toContain(`data-upload="/api/projects/${exampleId}/datasets/upload"`);
  });

  it('escapes the project name in the heading, the title and the sidebar', async () => {
    const res = await get(s.app, `/projects/${evilId}`);
    expect(res.statusCode).toBe(200);
    expect(res.body).not.toContain('<img src=x');
    expect(res.body).toContain(`<title>${EVIL_ESCAPED} · AI Studio</title>`);
    expect(res.body).toContain(`<h1>${EVIL_ESCAPED}</h1>`);
    expect(count(res.body, EVIL_ESCAPED)).toBeGreaterThanOrEqual(4);
  });

  it('renders the dataset list and the sidebar as fragments', async () => {
    const list = await hx(s.app, 'GET', `/projects/${exampleId}/datasets-list`);
    expect(list.body.startsWith('<section class="card" id="dataset-list"')).toBe(true);
    const nav = await hx(s.app, 'GET', `/projects/${exampleId}/nav?section=dataset&dataset=${dsId}`);
    expect(nav.body).toContain('id="project-nav"');
    expect(nav.body).toContain('class="sub active"');
  });
});

describe('imports from the pages', () => {
  it('starts a folder import, renders the live widget, then the report', async () => {
    const src = path.join(s.dir, 'folder-src');
    await writeSyntheticFolder(src, { classes: ['circle', 'square'], perClass: 3, size: 32, format: 'png', seed: 3 });
    await fs.writeFile(path.join(src, 'square', 'notes.txt'), 'not an image');
    const res = await hx(s.app, 'POST', `/projects/${evilId}/datasets`, { kind: 'folder', name: 'Folder <import>', task: 'classification', path: src });
    expect(res.statusCode).toBe(202);
    expect(res.headers['hx-trigger']).toBe('datasets-changed');
    const jobId = /data-job="(job-[0-9a-z]{8})"/.exec(res.body)?.[1];
    expect(jobId).toBeDefined();
    // live through htmx's SSE extension: the server renders each progress event's fragment
    expect(res.body).toContain(`hx-ext="sse" sse-connect="/projects/${evilId}/jobs/${jobId}/live" sse-close="end"`);
    expect(res.body).toContain('Folder &lt;import&gt;');

    await s.app.studio.jobs.wait(jobId as string);
    const done = await hx(s.app, 'GET', `/projects/${evilId}/jobs/${jobId}`);
    expect(done.statusCode).toBe(200);
    expect(done.body).not.toContain('data-live');
    expect(done.body).toMatch(/<span class="badge succeeded" data-job-status id="job-status-job-[0-9a-z]{8}">succeeded<\/span>/);
    expect(done.headers['hx-trigger']).toBe('job-finished');
    expect(done.body).toContain('<div class="n" data-report-imported>6</div>');
    expect(done.body).toContain('notes.txt');
    expect(done.body).toContain('unsupported');
    expect(done.body).toMatch(/href="\/projects\/proj-[0-9a-z]{8}\/datasets\/ds-[0-9a-z]{8}">Open dataset/);
    // A job is shown only under its own project.
    expect((await hx(s.app, 'GET', `/projects/${exampleId}/jobs/${jobId}`)).statusCode).toBe(404);
  });

  it('streams a live widget as server-rendered fragments, then `end`', async () => {
    const src = path.join(s.dir, 'stream-src');
    await writeSyntheticFolder(src, { classes: ['circle', 'square'], perClass: 2, size: 32, format: 'png', seed: 4 });
    const res = await hx(s.app, 'POST', `/projects/${evilId}/datasets`, { kind: 'folder', name: 'Streamed', task: 'classification', path: src });
    const jobId = /data-job="(job-[0-9a-z]{8})"/.exec(res.body)?.[1] as string;
    await s.app.studio.jobs.wait(jobId);
    const stream = await s.app.inject({ method: 'GET', url: `/projects/${evilId}/jobs/${jobId}/live` });
    expect(stream.statusCode).toBe(200);
    expect(stream.headers['content-type']).toContain('text/event-stream');
    const events = [...stream.body.matchAll(/event: (\w+)\n((?:data: .*\n)+)/g)].map((m) => ({ event: m[1], html: m[2].replace(/^data: /gm, '') }));
    const progress = events.filter((e) => e.event === 'progress');
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)?.html).toContain('data-job-bar');
    expect(progress.at(-1)?.html).toMatch(/<b data-job-done>4<\/b>/);
    // the first one also turns the badge to running, out of band
    expect(progress[0].html).toContain('hx-swap-oob="true"');
    expect(events.at(-1)?.event).toBe('end');
    // resumed after the last event: only `end`
    const lastId = Math.max(...[...stream.body.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])));
    const again = await s.app.inject({ method: 'GET', url: `/projects/${evilId}/jobs/${jobId}/live`, headers: { 'last-event-id': String(lastId) } });
    expect([...again.body.matchAll(/event: (\w+)/g)].map((m) => m[1])).toEqual(['end']);
  });

  it('cancels a running import from its widget; a finished one cannot be cancelled', async () => {
    const src = path.join(s.dir, 'cancel-src');
    await writeSyntheticFolder(src, { classes: ['star', 'cross'], perClass: 20, size: 64, format: 'png', seed: 9 });
    const started = await s.app.studio.imports.start(evilId, { name: 'to cancel', task: 'classification', source: { kind: 'folder', path: src } });
    const res = await hx(s.app, 'POST', `/projects/${evilId}/jobs/${started.job.id}/cancel`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['hx-trigger']).toBe('job-finished');
    expect(res.body).toMatch(/<span class="badge cancelled" data-job-status id="job-status-job-[0-9a-z]{8}">cancelled<\/span>/);
    expect(res.body).not.toContain('data-live');
    expect((await s.app.studio.datasets.get(evilId, started.dataset.id)).status).toBe('failed');

    const again = await hx(s.app, 'POST', `/projects/${evilId}/jobs/${started.job.id}/cancel`);
    expect(again.statusCode).toBe(409);
    expect(again.headers['hx-retarget']).toBe('#toasts');
  });

  it('polls the dataset list while a dataset is importing', async () => {
    const before = await hx(s.app, 'GET', `/projects/${exampleId}/datasets-list`);
    expect(before.body).not.toContain('every 3s');
    const ds = await s.app.studio.datasets.create(exampleId, { name: 'pending', task: 'classification' });
    const during = await hx(s.app, 'GET', `/projects/${exampleId}/datasets-list`);
    expect(during.body).toContain('hx-trigger="job-finished from:body, datasets-changed from:body, every 3s"');
    expect(during.body).toContain('<span class="badge importing">importing</span>');
    await s.app.studio.datasets.remove(exampleId, ds.id);
  });

  it('reports a bad source as a toast, and an unknown kind as a validation error', async () => {
    const missing = await hx(s.app, 'POST', `/projects/${evilId}/datasets`, { kind: 'folder', name: 'x', path: '/no/such/folder' });
    expect(missing.statusCode).toBe(400);
    expect(missing.headers['hx-retarget']).toBe('#toasts');
    const kind = await hx(s.app, 'POST', `/projects/${evilId}/datasets`, { kind: 'ftp', name: 'x', path: '/tmp' });
    expect(kind.statusCode).toBe(400);
  });
});

describe('dataset page', () => {
  it('renders stats, histogram data, the first grid page and the splits', async () => {
    const res = await get(s.app, dsUrl);
    expect(res.statusCode).toBe(200);
    expect(count(res.body, 'class="tile"')).toBe(60);
    expect(count(res.body, 'loading="lazy"')).toBe(60);
    expect(res.body).toContain('1–60 of <b>75</b> images');
    expect(res.body).toContain(`href="${dsUrl}?page=2"`);
    expect(res.body).toContain('data-histogram="');
    expect(res.body).toContain('<tr id="split-default">');
    expect(res.body).toContain('<option value="default">default</option>');
    expect(res.body).toContain(`/api${dsUrl}/images/${imageIds[1]}/thumbnail`);
  });

  it('escapes class names in options, tiles and the chart data', async () => {
    const res = await get(s.app, dsUrl);
    expect(res.body).not.toContain('<b>"bold');
    expect(res.body).toContain(`<option value="${EVIL_LABEL_ESCAPED}">${EVIL_LABEL_ESCAPED}</option>`);
    expect(res.body).toContain(`<span class="lbl">${EVIL_LABEL_ESCAPED}</span>`);
    const attr = /data-histogram="([^"]*)"/.exec(res.body)?.[1] ?? '';
    const decoded = attr.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    expect(JSON.parse(decoded).labels).toContain(EVIL_LABEL);
  });

  it('swaps only the grid for htmx filter and page requests', async () => {
    const page2 = await hx(s.app, 'GET', `${dsUrl}?page=2`, undefined, { 'hx-target': 'grid' });
    expect(page2.body.startsWith('<div id="grid">')).toBe(true);
    expect(page2.body).not.toContain('<html');
    expect(count(page2.body, 'class="tile"')).toBe(15);
    expect(page2.body).toContain('61–75 of <b>75</b> images');

    const circles = await hx(s.app, 'GET', `${dsUrl}?label=circle&split=default&subset=`, undefined, { 'hx-target': 'grid' });
    const nCircles = (await s.app.studio.datasets.get(exampleId, dsId)).class_counts.circle;
    expect(nCircles).toBeGreaterThan(20);
    expect(count(circles.body, 'class="tile"')).toBe(nCircles);
    expect(count(circles.body, '<span class="lbl">circle</span>')).toBe(nCircles);

    const train = await hx(s.app, 'GET', `${dsUrl}?split=default&subset=train`, undefined, { 'hx-target': 'grid' });
    const trainCount = (await s.app.studio.datasets.getSplit(exampleId, dsId, 'default')).counts.train;
    expect(train.body).toContain(`of <b>${trainCount}</b> images`);
    expect(train.body).not.toContain('<span class="dot val" title="val">');
    expect(count(train.body, '<span class="dot train" title="train">')).toBe(Math.min(60, trainCount));

    // Back/forward restores ask for the whole page.
    const restore = await hx(s.app, 'GET', `${dsUrl}?page=2`, undefined, { 'hx-target': 'grid', 'hx-history-restore-request': 'true' });
    expect(restore.body).toMatch(/^<!doctype html>/);
  });

  it('refuses a bad filter with a toast, not a crash', async () => {
    const res = await hx(s.app, 'GET', `${dsUrl}?split=nope`, undefined, { 'hx-target': 'grid' });
    expect(res.statusCode).toBe(404);
    expect(res.headers['hx-retarget']).toBe('#toasts');
    expect((await hx(s.app, 'GET', `${dsUrl}?page=0`)).statusCode).toBe(400);
    expect((await hx(s.app, 'GET', `${dsUrl}?sort=x`)).statusCode).toBe(400);
  });
});

describe('image detail', () => {
  it('renders as a modal fragment for htmx and as a page otherwise', async () => {
    const frag = await hx(s.app, 'GET', `${dsUrl}/images/${imageIds[0]}`);
    expect(frag.body.startsWith('<div class="modal-backdrop"')).toBe(true);
    expect(frag.body).toContain(`src="/api${dsUrl}/images/${imageIds[0]}/file"`);
    expect(frag.body).toContain('32 × 32 px');
    expect(frag.body).toContain(`<option value="${EVIL_LABEL_ESCAPED}" selected>`);
    expect(frag.body).not.toContain('<b>"bold');
    const page = await get(s.app, `${dsUrl}/images/${imageIds[0]}`);
    expect(page.body).toMatch(/^<!doctype html>/);
  });

  it('relabels (to a class, or a new one) and updates the tile out of band', async () => {
    const res = await hx(s.app, 'PATCH', `${dsUrl}/images/${imageIds[2]}`, { label: 'square', new_label: '' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('Label saved.');
    expect(res.body).toContain(`id="tile-${imageIds[2]}"`);
    expect(res.body).toContain('hx-swap-oob="true"');
    expect((await s.app.studio.datasets.getImage(exampleId, dsId, imageIds[2])).label).toBe('square');

    await hx(s.app, 'PATCH', `${dsUrl}/images/${imageIds[2]}`, { label: 'square', new_label: ' hexagon ' });
    expect((await s.app.studio.datasets.getImage(exampleId, dsId, imageIds[2])).label).toBe('hexagon');
    expect((await s.app.studio.datasets.get(exampleId, dsId)).classes).toContain('hexagon');

    await hx(s.app, 'PATCH', `${dsUrl}/images/${imageIds[2]}`, { label: '' });
    expect((await s.app.studio.datasets.getImage(exampleId, dsId, imageIds[2])).label).toBeNull();
  });

  it('deletes an image: the tile leaves out of band', async () => {
    const id = imageIds[3];
    const res = await hx(s.app, 'DELETE', `${dsUrl}/images/${id}`);
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain(`<div id="tile-${id}" hx-swap-oob="delete"></div>`);
    expect(res.body).toContain('id="dataset-stats" hx-swap-oob="true"');
    expect((await hx(s.app, 'GET', `${dsUrl}/images/${id}`)).statusCode).toBe(404);
  });

  it('answers ids that are not ids with 404', async () => {
    expect((await get(s.app, `${dsUrl}/images/../../x`)).statusCode).toBe(404);
    expect((await get(s.app, `${dsUrl}/images/img-NOTANID`)).statusCode).toBe(404);
    expect((await get(s.app, `/projects/proj-00000000`)).statusCode).toBe(404);
    const page = await get(s.app, '/projects/proj-00000000');
    expect(page.body).toMatch(/^<!doctype html>/);
    expect(page.body).toContain('NOT_FOUND');
    const nowhere = await get(s.app, '/no/such/<page>');
    expect(nowhere.statusCode).toBe(404);
    expect(nowhere.headers['content-type']).toMatch(/^text\/html/);
    expect(nowhere.body).toContain('there is no page at /no/such/');
    expect(nowhere.body).not.toContain('<page>');
    // /api keeps its JSON envelope.
    expect((await get(s.app, '/api/nowhere')).json()).toMatchObject({ status: 'error', error: { code: 'NOT_FOUND' } });
  });
});

describe('splits', () => {
  const form = { name: 'holdout', train: '60', val: '20', test: '20', seed: '7', stratify: 'on' };

  it('previews counts per class without saving', async () => {
    const res = await hx(s.app, 'POST', `${dsUrl}/splits/preview`, form);
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('Preview of <b>holdout</b>');
    const totals = /<tfoot><tr><td>Total<\/td><td class="num">(\d+)<\/td><td class="num">(\d+)<\/td><td class="num">(\d+)<\/td>/.exec(res.body);
    expect(totals).not.toBeNull();
    const [train, val, test] = (totals as RegExpExecArray).slice(1).map(Number);
    const labeled = (await s.app.studio.datasets.get(exampleId, dsId)).image_count - (await s.app.studio.datasets.get(exampleId, dsId)).unlabeled_count;
    expect(train + val + test).toBe(labeled);
    expect(train).toBeGreaterThan(val);
    expect((await s.app.studio.datasets.get(exampleId, dsId)).split_names).not.toContain('holdout');
    // Same seed, same preview.
    expect((await hx(s.app, 'POST', `${dsUrl}/splits/preview`, form)).body).toBe(res.body);
  });

  it('shows an invalid preview in place', async () => {
    const res = await hx(s.app, 'POST', `${dsUrl}/splits/preview`, { ...form, train: '90' });
    expect(res.statusCode).toBe(400);
    expect(res.headers['hx-retarget']).toBeUndefined();
    expect(res.body).toContain('class="alert error"');
    // the form's inputs are percentages: so is the message
    expect(res.body).toContain('must add up to 100 %');
  });

  it('saves a split, refuses a duplicate name, deletes it', async () => {
    const res = await hx(s.app, 'POST', `${dsUrl}/splits`, form);
    expect(res.statusCode).toBe(200);
    expect(res.headers['hx-trigger-after-swap']).toBe('grid-changed');
    expect(res.body).toContain('<tr id="split-holdout">');
    expect(res.body).toContain('<option value="holdout">holdout</option>');
    expect((await s.app.studio.datasets.get(exampleId, dsId)).split_names).toEqual(['default', 'holdout']);

    const dup = await hx(s.app, 'POST', `${dsUrl}/splits`, form);
    expect(dup.statusCode).toBe(409);
    expect(dup.headers['hx-retarget']).toBe('#toasts');

    const del = await hx(s.app, 'DELETE', `${dsUrl}/splits/holdout`);
    expect(del.statusCode).toBe(200);
    expect(del.body).not.toContain('split-holdout');
    expect((await s.app.studio.datasets.get(exampleId, dsId)).split_names).toEqual(['default']);
  });
});

describe('static files', () => {
  it('serves our CSS and JS and the vendored libraries with their types', async () => {
    const css = await get(s.app, '/static/css/studio.css');
    expect(css.statusCode).toBe(200);
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    const js = await get(s.app, '/static/js/studio.js');
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    const htmx = await get(s.app, '/vendor/htmx.min.js');
    expect(htmx.statusCode).toBe(200);
    expect(htmx.body).toContain('htmx');
    expect((await get(s.app, '/vendor/chart.umd.min.js')).statusCode).toBe(200);
  });

  it('serves nothing outside public/ and no unlisted vendor file', async () => {
    expect((await get(s.app, '/static/../package.json')).statusCode).toBe(404);
    expect((await get(s.app, '/static/%2e%2e/%2e%2e/package.json')).statusCode).toBe(404);
    expect((await get(s.app, '/static/js/nope.js')).statusCode).toBe(404);
    expect((await get(s.app, '/vendor/package.json')).statusCode).toBe(404);
    expect((await get(s.app, '/vendor/__proto__')).statusCode).toBe(404);
  });
});

describe('deleting a dataset', () => {
  it('from the project page returns the list; from the dataset page redirects', async () => {
    const folder = path.join(s.dir, 'to-delete');
    await writeSyntheticFolder(folder, { classes: ['ring'], perClass: 2, size: 24, format: 'png', seed: 5 });
    const started = await s.app.studio.imports.start(evilId, { name: 'short-lived', task: 'classification', source: { kind: 'folder', path: folder } });
    await s.app.studio.jobs.wait(started.job.id);
    const res = await hx(s.app, 'DELETE', `/projects/${evilId}/datasets/${started.dataset.id}?redirect=1`);
    expect(res.statusCode).toBe(204);
    expect(res.headers['hx-redirect']).toBe(`/projects/${evilId}`);
    expect((await s.app.studio.datasets.list(evilId)).some((d) => d.id === started.dataset.id)).toBe(false);
  });
});

// ---- multi-label and regression datasets on the pages ------------------------------------------

import { ensureTasks } from '../datasets/tasks.ts';
import sharp from 'sharp';

describe('multi-label and regression datasets', () => {
  let projectId: string;
  let mlUrl: string;
  let regUrl: string;
  let mlImages: { id: string; labels?: string[] }[];
  let regImages: { id: string; targets?: Record<string, number> }[];

  beforeAll(async () => {
    ensureTasks();
    const { projects, datasets, imports, jobs } = s.app.studio;
    projectId = (await projects.create({ name: 'tasks' })).id;
    const dir = path.join(s.dir, 'task-csv');
    await fs.mkdir(path.join(dir, 'imgs'), { recursive: true });
    for (let i = 0; i < 6; i++) {
      const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 40 * i, g: 90, b: 200 - 30 * i } } }).png().toBuffer();
      await fs.writeFile(path.join(dir, 'imgs', `${i}.png`), png);
    }
    await fs.writeFile(path.join(dir, 'ml.csv'), `file,labels\n0.png,cat;dog\n1.png,dog\n2.png,\n3.png,"${EVIL_LABEL.replace(/"/g, '""')};cat"\n4.png\n`);
    await fs.writeFile(path.join(dir, 'reg.csv'), 'file,size,weight\n0.png,1,10\n1.png,2,20\n2.png,3,30\n3.png,x,1\n');
    const ml = await imports.start(projectId, { name: 'ml', task: 'multilabel', source: { kind: 'csv', path: path.join(dir, 'ml.csv'), images_root: path.join(dir, 'imgs') } });
    const reg = await imports.start(projectId, { name: 'reg', task: 'regression', source: { kind: 'csv', path: path.join(dir, 'reg.csv'), images_root: path.join(dir, 'imgs'), target_columns: ['size', 'weight'] } });
    await jobs.wait(ml.job.id);
    await jobs.wait(reg.job.id);
    mlUrl = `/projects/${projectId}/datasets/${ml.dataset.id}`;
    regUrl = `/projects/${projectId}/datasets/${reg.dataset.id}`;
    mlImages = (await datasets.listImages(projectId, ml.dataset.id, {})).items;
    regImages = (await datasets.listImages(projectId, reg.dataset.id, {})).items;
  });

  it('the new-dataset form lists, per source, the registered tasks it can feed, and the CSV options by task', async () => {
    const res = await get(s.app, `/projects/${projectId}`);
    const panel = (kind: string) => res.body.split(`data-panel="${kind}"`)[1].split('data-panel=')[0];
    expect(panel('csv')).toContain('<option value="multilabel"');
    expect(panel('csv')).toContain('<option value="regression"');
    expect(panel('coco')).toContain('<option value="multilabel"');
    expect(panel('coco')).not.toContain('value="regression"');
    expect(panel('folder')).toContain('name="task" value="classification"');
    expect(panel('folder')).not.toContain('multilabel');
    expect(panel('csv')).toContain('name="target_columns"');
    expect(panel('csv')).toContain('data-task-only="regression"');
    expect(panel('csv')).toContain('data-task-only="multilabel"');
    expect(panel('csv')).toContain('name="label_separator"');
    expect(res.body).toContain('2 targets');
  });

  it('starts a regression CSV import from the form (target columns typed comma-separated), and answers a misfit with a toast', async () => {
    const dir = path.join(s.dir, 'task-csv');
    const ok = await hx(s.app, 'POST', `/projects/${projectId}/datasets`, {
      kind: 'csv', name: 'reg2', task: 'regression', path: path.join(dir, 'reg.csv'), images_root: path.join(dir, 'imgs'), target_columns: ' size , weight', image_column: '', label_separator: '',
    });
    expect(ok.statusCode).toBe(202);
    const bad = await hx(s.app, 'POST', `/projects/${projectId}/datasets`, { kind: 'folder', name: 'x', task: 'regression', path: path.join(dir, 'imgs') });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('source.kind: a folder cannot feed a regression dataset');
    const sep = await hx(s.app, 'POST', `/projects/${projectId}/datasets`, { kind: 'csv', name: 'x', task: 'classification', path: path.join(dir, 'ml.csv'), images_root: path.join(dir, 'imgs'), label_separator: '|' });
    expect(sep.body).toContain('source.label_separator: only a multilabel dataset splits labels');
  });

  it('multi-label page: label chips on tiles, images per label, the cardinality chart, a label filter that matches any label', async () => {
    const res = await get(s.app, mlUrl);
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('<span class="chip">cat</span>');
    expect(res.body).toContain(`<span class="chip">${EVIL_LABEL_ESCAPED}</span>`);
    expect(res.body).not.toContain(EVIL_LABEL);
    expect(res.body).toContain('<span class="lbl unlabelled">no label</span>');
    expect(res.body).toContain('<h2>Images per label</h2>');
    expect(res.body).toContain('id="cardinality-chart" data-bar-chart="');
    expect(res.body).toContain('All labels');
    const grid = await hx(s.app, 'GET', `${mlUrl}?label=cat`, undefined, { 'hx-target': 'grid' });
    expect(count(grid.body, 'class="tile"')).toBe(2);
  });

  it('multi-label detail: checkboxes of the classes, saved as labels; the tile follows out of band', async () => {
    const img = mlImages.find((i) => i.labels?.length === 1) ?? mlImages[0];
    const detail = await hx(s.app, 'GET', `${mlUrl}/images/${img.id}`);
    expect(detail.body).toContain('name="labels_form" value="1"');
    expect(count(detail.body, 'type="checkbox" name="label_')).toBe(3);
    const classes = ['cat', 'dog', EVIL_LABEL].sort();
    const cat = classes.indexOf('cat');
    const saved = await hx(s.app, 'PATCH', `${mlUrl}/images/${img.id}`, { labels_form: '1', [`label_${cat}`]: 'on' });
    expect(saved.statusCode).toBe(200);
    expect(saved.body).toContain('Labels saved.');
    expect(saved.body).toContain('hx-swap-oob="true"');
    const after = await s.app.studio.datasets.getImage(projectId, mlUrl.split('/').pop() as string, img.id);
    expect(after.labels).toEqual(['cat']);
    const none = await hx(s.app, 'PATCH', `${mlUrl}/images/${img.id}`, { labels_form: '1' });
    expect(none.body).toContain('none present');
    const odd = await hx(s.app, 'PATCH', `${mlUrl}/images/${img.id}`, { labels_form: '1', sneaky: 'x' });
    expect(odd.statusCode).toBe(400);
  });

  it('regression page: target values on tiles, per-target stats and histograms, no class filter', async () => {
    const res = await get(s.app, regUrl);
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('size 1 · weight 10');
    expect(res.body).toContain('<h2>Targets</h2>');
    expect(res.body).toContain('id="target-chart-0" data-bar-chart="');
    expect(res.body).toContain('id="target-chart-1" data-bar-chart="');
    expect(res.body).not.toContain('name="label" aria-label');
    expect(res.body).not.toContain('id="class-chart"');
    expect(res.body).toContain('Stratify by quantiles of size');
    const bad = await hx(s.app, 'GET', `${regUrl}?label=size`, undefined, { 'hx-target': 'grid' });
    expect(bad.statusCode).toBe(400);
  });

  it('regression detail: a number input per target, saved as targets; a missing value is refused by name', async () => {
    const img = regImages[0];
    const detail = await hx(s.app, 'GET', `${regUrl}/images/${img.id}`);
    expect(detail.body).toContain('name="target_0"');
    expect(detail.body).toContain('name="target_1"');
    const saved = await hx(s.app, 'PATCH', `${regUrl}/images/${img.id}`, { target_0: '4.5', target_1: '-2' });
    expect(saved.statusCode).toBe(200);
    expect(saved.body).toContain('Values saved.');
    expect(saved.body).toContain('size 4.5 · weight -2');
    const missing = await hx(s.app, 'PATCH', `${regUrl}/images/${img.id}`, { target_0: '4.5', target_1: '' });
    expect(missing.statusCode).toBe(400);
    expect(missing.body).toContain('targets.weight: missing');
    const nan = await hx(s.app, 'PATCH', `${regUrl}/images/${img.id}`, { target_0: 'abc', target_1: '1' });
    expect(nan.body).toContain('targets.size:');
  });

  it('split preview names rows by label for multi-label', async () => {
    const res = await hx(s.app, 'POST', `${mlUrl}/splits/preview`, { name: 'p', train: '60', val: '20', test: '20', seed: '1', stratify: 'on' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('<th>Label</th>');
    expect(res.body).toContain('An image counts once under each of its labels.');
  });
});

import { hasTask, listTasks, registerTask } from '../../src/tasks/index.ts';

describe('the new-dataset form follows the registry', () => {
  it('lists a task registered in-process under the sources it names, and only there', async () => {
    const base = listTasks()[0];
    if (!hasTask('toy_counting')) registerTask({ ...base, name: 'toy_counting', title: 'Toy counting', description: 'a toy task', sources: ['csv', 'yolo'] });
    const res = await get(s.app, `/projects/${exampleId}`);
    const panel = (kind: string) => res.body.split(`data-panel="${kind}"`)[1].split('data-panel=')[0];
    expect(panel('csv')).toContain('<option value="toy_counting" title="a toy task">Toy counting</option>');
    expect(panel('yolo')).toContain('value="toy_counting"');
    expect(panel('coco')).not.toContain('toy_counting');
    expect(panel('zip')).not.toContain('toy_counting');
  });
});
