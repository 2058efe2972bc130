/**
 * `npm run bench:import` — import speed and memory, and the image grid's server time.
 *
 * Generates N (default 5,000) distinct 640×480 JPEGs in ten class folders, imports them through
 * the same path as the API (imports service → job → piscina worker → storage sink, thumbnails
 * included), then times the dataset images API for page 1 and page 50. Prints one JSON line per
 * figure on stdout: {"figure", "value", "unit", "reference"}. Options: --count N, --keep.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { buildApp } from '../src/app.ts';
import { loadSettings } from '../src/config.ts';
import { createServices } from '../src/core/services.ts';

const { values } = parseArgs({ options: { count: { type: 'string', default: '5000' }, keep: { type: 'boolean', default: false } } });
const COUNT = Number(values.count);
const CLASSES = 10;
const PAGE_SIZE = 100;

const emit = (figure: string, value: number, unit: string, reference: string | null) =>
  console.log(JSON.stringify({ figure, value: Math.round(value * 100) / 100, unit, reference }));
const log = (msg: string) => process.stderr.write(`${msg}\n`);

/** A distinct photo-sized image: gradient background, a few shapes, positions and colours from i. */
function svgFor(i: number): string {
  const h = (k: number) => ((i * 2654435761 + k * 40503) >>> 0) % 360;
  const x = (k: number) => ((i * 7919 + k * 104729) >>> 0) % 560;
  const y = (k: number) => ((i * 6271 + k * 130363) >>> 0) % 400;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="640" height="480">
<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="hsl(${h(1)},60%,70%)"/><stop offset="1" stop-color="hsl(${h(2)},50%,30%)"/></linearGradient></defs>
<rect width="640" height="480" fill="url(#g)"/>
<circle cx="${x(3) + 40}" cy="${y(4) + 40}" r="${30 + (i % 50)}" fill="hsl(${h(5)},80%,50%)"/>
<rect x="${x(6)}" y="${y(7)}" width="${60 + (i % 70)}" height="${50 + (i % 40)}" fill="hsl(${h(8)},70%,45%)"/>
<text x="20" y="460" font-size="28" fill="white">${i}</text></svg>`;
}

async function generate(root: string): Promise<void> {
  for (let c = 0; c < CLASSES; c++) await fs.mkdir(path.join(root, `class${c}`), { recursive: true });
  let next = 0;
  const worker = async () => {
    while (next < COUNT) {
      const i = next++;
      const file = path.join(root, `class${i % CLASSES}`, `img${String(i).padStart(5, '0')}.jpg`);
      await sharp(Buffer.from(svgFor(i))).jpeg({ quality: 85 }).toFile(file);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

async function timeRequest(app: Awaited<ReturnType<typeof buildApp>>, url: string): Promise<{ cold: number; median: number }> {
  const once = async () => {
    const t0 = performance.now();
    const res = await app.inject({ method: 'GET', url });
    const ms = performance.now() - t0;
    if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`);
    return ms;
  };
  const cold = await once();
  const warm: number[] = [];
  for (let k = 0; k < 21; k++) warm.push(await once());
  warm.sort((a, b) => a - b);
  return { cold, median: warm[Math.floor(warm.length / 2)] };
}

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-bench-'));
try {
  const src = path.join(dir, 'src');
  log(`generating ${COUNT} 640×480 JPEGs in ${src} …`);
  const g0 = performance.now();
  await generate(src);
  log(`generated in ${((performance.now() - g0) / 1000).toFixed(1)} s`);

  const settings = loadSettings({ STUDIO_WORKSPACE: path.join(dir, 'ws'), STUDIO_EXAMPLE: 'off' });
  const services = await createServices(settings);
  const app = await buildApp(settings, { services });
  try {
    const project = await services.projects.create({ name: 'bench' });
    let peakRss = process.memoryUsage.rss();
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 50);
    const t0 = performance.now();
    const { dataset, job } = await services.imports.start(project.id, { name: 'bench', task: 'classification', source: { kind: 'folder', path: src } });
    const done = await services.jobs.wait(job.id);
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    if (done.status !== 'succeeded') throw new Error(`import ${done.status}: ${JSON.stringify(done.error)}`);
    const summary = await services.datasets.get(project.id, dataset.id);
    log(`imported ${summary.image_count} images in ${seconds.toFixed(1)} s (${os.cpus().length} cores)`);
    if (summary.image_count !== COUNT) throw new Error(`expected ${COUNT} images, got ${summary.image_count}`);

    emit('import_images_per_second', summary.image_count / seconds, 'images/s', '>= 150 images/s (libvips thumbnailing on 2 cores, issue yardstick)');
    emit('import_peak_rss', peakRss / 1024 / 1024, 'MB', null);

    const base = `/api/projects/${project.id}/datasets/${dataset.id}/images?page_size=${PAGE_SIZE}`;
    for (const page of [1, 50]) {
      const t = await timeRequest(app, `${base}&page=${page}`);
      emit(`images_api_page_${page}_cold`, t.cold, 'ms', `page_size ${PAGE_SIZE} of ${COUNT} images, first request`);
      emit(`images_api_page_${page}_median`, t.median, 'ms', `page_size ${PAGE_SIZE} of ${COUNT} images, median of 21`);
    }
    const filtered = await timeRequest(app, `${base}&page=5&label=class3`);
    emit('images_api_filtered_median', filtered.median, 'ms', `label filter, page 5, median of 21`);

    // A fresh studio on the same workspace: the first request has to read and parse dataset.json.
    const freshServices = await createServices(settings);
    const fresh = await buildApp(settings, { services: freshServices });
    try {
      const t = await timeRequest(fresh, `${base}&page=50`);
      emit('images_api_page_50_uncached', t.cold, 'ms', `first request after a restart (dataset.json parsed), ${COUNT} images`);
    } finally {
      await fresh.close();
      await freshServices.close();
    }
  } finally {
    await app.close();
    await services.close();
  }
} finally {
  if (values.keep) log(`kept ${dir}`);
  else await fs.rm(dir, { recursive: true, force: true });
}
