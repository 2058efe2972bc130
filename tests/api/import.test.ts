import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { body, call, makeImageFolder, makeStudio, makeZip, multipart, parseSse, shapeImage, waitForJob, type TestStudio } from './helpers.ts';

interface Dataset {
  id: string;
  name: string;
  status: string;
  classes: string[];
  image_count: number;
  class_counts: Record<string, number>;
  split_names: string[];
  import_report: { imported: number; skipped: { file: string; reason: string }[]; duplicates: number } | null;
}
interface Started {
  dataset: Dataset;
  job: { id: string; kind: string; status: string; progress: number };
}

let s: TestStudio;
let projectId: string;
beforeAll(async () => {
  s = await makeStudio();
  projectId = (await call<{ id: string }>(s.app, 'POST', '/api/projects', { name: 'imports' })).body.data.id;
});
afterAll(async () => s.close());

const upload = (zip: Buffer, fields: Record<string, string> = { name: 'zipped', task: 'classification' }) => {
  const mp = multipart([...Object.entries(fields).map(([name, value]) => ({ name, value })), { name: 'file', filename: 'd.zip', data: zip }]);
  return s.app.inject({ method: 'POST', url: `/api/projects/${projectId}/datasets/upload`, payload: mp.payload, headers: mp.headers });
};

describe('import from a server folder', () => {
  it('runs as a job, streams SSE events, and the dataset ends ready with its report', async () => {
    const src = path.join(s.dir, 'folder-src');
    await makeImageFolder(src, { circle: 4, square: 3 });
    await fs.mkdir(path.join(src, 'circle', 'deeper', 'still'), { recursive: true });
    await fs.writeFile(path.join(src, 'circle', 'deeper', 'still', 'nested.png'), await shapeImage('circle', 99));
    await fs.copyFile(path.join(src, 'square', 'square-0.png'), path.join(src, 'square', 'copy.png'));
    await fs.writeFile(path.join(src, 'square', 'notes.txt'), 'not an image');
    await fs.writeFile(path.join(src, 'square', 'broken.jpg'), (await shapeImage('square', 50, { format: 'jpeg' })).subarray(0, 300));

    const res = await call<Started>(s.app, 'POST', `/api/projects/${projectId}/datasets`, {
      name: 'from folder',
      task: 'classification',
      source: { kind: 'folder', path: src },
    });
    expect(res.status).toBe(202);
    const { dataset, job } = res.body.data;
    expect(dataset.id).toMatch(/^ds-[0-9a-z]{8}$/);
    expect(dataset.status).toBe('importing');
    expect(job).toMatchObject({ kind: 'import' });
    expect(job.id).toMatch(/^job-[0-9a-z]{8}$/);

    // The SSE stream stays open until the job ends, then closes after `done`.
    const sse = await s.app.inject({ method: 'GET', url: `/api/jobs/${job.id}/events` });
    expect(sse.headers['content-type']).toMatch(/^text\/event-stream/);
    const events = parseSse(sse.body);
    expect(events.at(-1)?.event).toBe('done');
    expect(events.some((e) => e.event === 'progress')).toBe(true);
    const ids = events.map((e) => e.id as number);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    const done = events.at(-1)?.data as { status: string; result: { imported: number } };
    expect(done.status).toBe('succeeded');
    expect(done.result.imported).toBe(8);

    // Resume: only the events after Last-Event-ID come again.
    const lastButOne = ids[ids.length - 2];
    const resumed = parseSse((await s.app.inject({ method: 'GET', url: `/api/jobs/${job.id}/events`, headers: { 'last-event-id': String(lastButOne) } })).body);
    expect(resumed.map((e) => e.id)).toEqual([ids[ids.length - 1]]);
    expect(resumed[0].event).toBe('done');

    // Reconnecting after the end: nothing left, so 204 tells EventSource to stop.
    const after = await s.app.inject({ method: 'GET', url: `/api/jobs/${job.id}/events`, headers: { 'last-event-id': String(ids.at(-1)) } });
    expect(after.statusCode).toBe(204);

    const polled = await call<{ status: string; progress: number; result: { imported: number } }>(s.app, 'GET', `/api/jobs/${job.id}`);
    expect(polled.body.data).toMatchObject({ status: 'succeeded', progress: 1 });

    const ds = (await call<Dataset>(s.app, 'GET', `/api/projects/${projectId}/datasets/${dataset.id}`)).body.data;
    expect(ds.status).toBe('ready');
    expect(ds.image_count).toBe(8);
    expect(ds.classes).toEqual(['circle', 'square']);
    expect(ds.class_counts).toEqual({ circle: 5, square: 3 });
    const reasons = Object.fromEntries(ds.import_report!.skipped.map((x) => [path.basename(x.file), x.reason]));
    expect(reasons).toMatchObject({ 'notes.txt': 'unsupported', 'broken.jpg': 'corrupt' });
    // Which of two identical files counts as the copy depends on order; exactly one does.
    expect([reasons['copy.png'], reasons['square-0.png']].filter((r) => r === 'duplicate')).toHaveLength(1);
    expect(ds.import_report!.duplicates).toBe(1);
  });

  it('refuses a source path that does not exist, is relative, or has unknown fields', async () => {
    const url = `/api/projects/${projectId}/datasets`;
    for (const source of [
      { kind: 'folder', path: path.join(s.dir, 'nope') },
      { kind: 'folder', path: 'relative/path' },
      { kind: 'folder', path: s.dir, extra: 1 },
      { kind: 'tarball', path: s.dir },
      { kind: 'csv', path: path.join(s.dir, 'missing.csv'), images_root: s.dir },
    ]) {
      const r = await call(s.app, 'POST', url, { name: 'bad', task: 'classification', source });
      expect(r.status, JSON.stringify(source)).toBe(400);
      expect(r.body.error.code).toBe('VALIDATION_ERROR');
    }
    const r = await call(s.app, 'POST', url, { name: 'bad', task: 'regression', source: { kind: 'folder', path: s.dir } });
    expect(r.body.error.code).toBe('VALIDATION_ERROR');
    const missingProject = await call(s.app, 'POST', '/api/projects/proj-00000000/datasets', { name: 'x', task: 'classification', source: { kind: 'folder', path: s.dir } });
    expect(missingProject.body.error.code).toBe('NOT_FOUND');
  });
});

describe('zip upload', () => {
  it('imports a zip of class folders, refusing bad entries one by one', async () => {
    const zip = makeZip([
      { name: 'cats/a.png', data: await shapeImage('circle', 1) },
      { name: 'cats/nested/b.png', data: await shapeImage('circle', 2) },
      { name: 'dogs/c.jpg', data: await shapeImage('square', 3, { format: 'jpeg' }) },
      { name: 'dogs/d.webp', data: await shapeImage('square', 4, { format: 'webp' }) },
      { name: '../escape.png', data: await shapeImage('circle', 5) },
      { name: '/etc/abs.png', data: await shapeImage('circle', 6) },
      { name: 'dogs/link.png', data: Buffer.from('/etc/passwd'), symlink: true },
      { name: 'dogs/truncated.jpg', data: (await shapeImage('square', 7, { format: 'jpeg' })).subarray(0, 200) },
      { name: 'dogs/evil.jpg', data: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>') },
    ]);
    const res = await upload(zip);
    expect(res.statusCode).toBe(202);
    const { dataset, job } = body<Started>(res).data;
    const finished = await waitForJob(s.app, job.id);
    expect(finished.status).toBe('succeeded');
    const ds = (await call<Dataset>(s.app, 'GET', `/api/projects/${projectId}/datasets/${dataset.id}`)).body.data;
    expect(ds).toMatchObject({ status: 'ready', image_count: 4, class_counts: { cats: 2, dogs: 2 } });
    const reasons = Object.fromEntries(ds.import_report!.skipped.map((x) => [x.file, x.reason]));
    expect(reasons['../escape.png']).toBe('outside_root');
    expect(reasons['/etc/abs.png']).toBe('outside_root');
    expect(reasons['dogs/link.png']).toBe('outside_root');
    expect(reasons['dogs/truncated.jpg']).toBe('corrupt');
    expect(reasons['dogs/evil.jpg']).toBe('unsupported');
    // Nothing was written outside the workspace, and the uploaded temp file is gone.
    await expect(fs.access(path.join(s.settings.workspace, '..', 'escape.png'))).rejects.toThrow();
    expect((await fs.readdir(path.join(s.settings.workspace, 'tmp'))).filter((f) => !f.endsWith('.lock'))).toEqual([]);
  });

  it('refuses a non-zip upload with BAD_ARCHIVE and leaves no temp file', async () => {
    const res = await upload(Buffer.from('this is not a zip file at all'));
    expect(res.statusCode).toBe(400);
    expect(body(res).error.code).toBe('BAD_ARCHIVE');
    expect(await fs.readdir(path.join(s.settings.workspace, 'tmp'))).toEqual([]);
  });

  it('refuses a request that is not multipart, or misses the file or the name', async () => {
    const notMp = await s.app.inject({ method: 'POST', url: `/api/projects/${projectId}/datasets/upload`, payload: { name: 'x' } });
    expect(body(notMp).error.code).toBe('UNSUPPORTED_MEDIA');
    const noFile = multipart([{ name: 'name', value: 'x' }]);
    const r1 = await s.app.inject({ method: 'POST', url: `/api/projects/${projectId}/datasets/upload`, payload: noFile.payload, headers: noFile.headers });
    expect(body(r1).error.code).toBe('VALIDATION_ERROR');
    const r2 = await upload(makeZip([{ name: 'a/x.png', data: await shapeImage('circle', 1) }]), { name: '', task: 'classification' });
    expect(body(r2).error.code).toBe('VALIDATION_ERROR');
    const zip = makeZip([{ name: 'a/x.png', data: await shapeImage('circle', 1) }]);
    const mp = multipart([{ name: 'name', value: 'x' }, { name: 'file', filename: 'd.zip', data: zip }]);
    const r4 = await s.app.inject({ method: 'POST', url: '/api/projects/proj-00000000/datasets/upload', payload: mp.payload, headers: mp.headers });
    expect(r4.statusCode).toBe(404);
    expect(body(r4).error.code).toBe('NOT_FOUND');
    const r3 = await upload(makeZip([{ name: 'a/x.png', data: await shapeImage('circle', 1) }]), { name: 'x', color: 'red' });
    expect(body(r3).error.code).toBe('VALIDATION_ERROR');
  });

  it('ends a request with thousands of parts early with TOO_MANY_PARTS', async () => {
    const parts = Array.from({ length: 5000 }, (_, i) => ({ name: `f${i}`, value: 'x' }));
    const mp = multipart(parts);
    const res = await s.app.inject({ method: 'POST', url: `/api/projects/${projectId}/datasets/upload`, payload: mp.payload, headers: mp.headers });
    expect(res.statusCode).toBe(413);
    expect(body(res).error.code).toBe('TOO_MANY_PARTS');
    const twoFiles = multipart([
      { name: 'name', value: 'x' },
      { name: 'file', filename: 'a.zip', data: makeZip([]) },
      { name: 'file', filename: 'b.zip', data: makeZip([]) },
    ]);
    const res2 = await s.app.inject({ method: 'POST', url: `/api/projects/${projectId}/datasets/upload`, payload: twoFiles.payload, headers: twoFiles.headers });
    expect(res2.statusCode).toBe(413);
    expect(body(res2).error.code).toBe('TOO_MANY_PARTS');
  });
});

describe('limits from the settings', () => {
  let t: TestStudio;
  let pid: string;
  beforeAll(async () => {
    t = await makeStudio({ maxUploadBytes: 64 * 1024, maxZipEntries: 20, maxUncompressedBytes: 1024 * 1024 });
    pid = (await call<{ id: string }>(t.app, 'POST', '/api/projects', { name: 'limits' })).body.data.id;
  });
  afterAll(async () => t.close());
  const up = (zip: Buffer) => {
    const mp = multipart([{ name: 'name', value: 'bomb' }, { name: 'file', filename: 'b.zip', data: zip }]);
    return t.app.inject({ method: 'POST', url: `/api/projects/${pid}/datasets/upload`, payload: mp.payload, headers: mp.headers });
  };

  it('an upload over the size limit → PAYLOAD_TOO_LARGE', async () => {
    const res = await up(makeZip([{ name: 'a/big.bin', data: Buffer.alloc(100 * 1024, 7) }]));
    expect(res.statusCode).toBe(413);
    expect(body(res).error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('zip bombs are bounded: too much uncompressed data, or too many entries, fail the import with BAD_ARCHIVE', async () => {
    // 8 MiB of zeros deflates to ~8 KiB: small upload, large inflation.
    const bomb = makeZip([{ name: 'a/zeros.png', data: Buffer.alloc(8 * 1024 * 1024), deflate: true }]);
    expect(bomb.length).toBeLessThan(64 * 1024);
    const many = makeZip(Array.from({ length: 30 }, (_, i) => ({ name: `a/${i}.png`, data: Buffer.from([i]) })));
    for (const zip of [bomb, many]) {
      const res = await up(zip);
      expect(res.statusCode).toBe(202);
      const { dataset, job } = body<Started>(res).data;
      const finished = (await waitForJob(t.app, job.id)) as { status: string; error: { code: string } };
      expect(finished.status).toBe('failed');
      expect(finished.error.code).toBe('BAD_ARCHIVE');
      const ds = (await call<Dataset & { error: { code: string } }>(t.app, 'GET', `/api/projects/${pid}/datasets/${dataset.id}`)).body.data;
      expect(ds.status).toBe('failed');
      expect(ds.error.code).toBe('BAD_ARCHIVE');
    }
  });
});

// ---- multi-label and regression datasets through the API -----------------------------------

import { ensureTasks } from '../datasets/tasks.ts';

describe('multi-label and regression imports', () => {
  let dir: string;
  beforeAll(async () => {
    ensureTasks();
    dir = path.join(s.dir, 'task-src');
    await fs.mkdir(path.join(dir, 'imgs'), { recursive: true });
    for (let i = 0; i < 6; i++) await fs.writeFile(path.join(dir, 'imgs', `${i}.png`), await shapeImage(['circle', 'square', 'triangle'][i % 3], i + 100));
    await fs.writeFile(path.join(dir, 'ml.csv'), 'file,labels\n0.png,circle|red\n1.png,square\n2.png,\n3.png,circle|square\n');
    await fs.writeFile(path.join(dir, 'reg.csv'), 'file,size,angle\n0.png,12,0.5\n1.png,20,1\n2.png,n/a,3\n3.png,7.5,-1\n4.png,,2\n');
  });
  const create = (payload: unknown) => call<Started>(s.app, 'POST', `/api/projects/${projectId}/datasets`, payload);

  it('imports a multi-label CSV: labels per image, classes the label set, counts per label, PATCH of labels', async () => {
    const res = await create({ name: 'ml', task: 'multilabel', source: { kind: 'csv', path: path.join(dir, 'ml.csv'), images_root: path.join(dir, 'imgs'), label_separator: '|' } });
    expect(res.status).toBe(202);
    await waitForJob(s.app, res.body.data.job.id);
    const ds = (await call<Dataset & { label_cardinality: number[]; unlabeled_count: number }>(s.app, 'GET', `/api/projects/${projectId}/datasets/${res.body.data.dataset.id}`)).body.data;
    expect(ds).toMatchObject({ status: 'ready', classes: ['circle', 'red', 'square'], class_counts: { circle: 2, red: 1, square: 2 }, label_cardinality: [1, 1, 2], unlabeled_count: 0 });
    const base = `/api/projects/${projectId}/datasets/${ds.id}/images`;
    const items = (await call<{ items: { id: string; labels?: string[] }[] }>(s.app, 'GET', `${base}?label=square`)).body.data.items;
    expect(items.map((i) => i.labels)).toEqual([['square'], ['circle', 'square']]);
    const patched = await call<{ labels: string[] }>(s.app, 'PATCH', `${base}/${items[0].id}`, { labels: ['red', 'square'] });
    expect(patched.status).toBe(200);
    expect(patched.body.data.labels).toEqual(['red', 'square']);
    const bad = await call(s.app, 'PATCH', `${base}/${items[0].id}`, { label: 'red' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'VALIDATION_ERROR', message: expect.stringMatching(/^label:/) });
  });

  it('imports a regression CSV: targets per image, invalid rows skipped with a reason, stats, PATCH of targets', async () => {
    const res = await create({ name: 'reg', task: 'regression', source: { kind: 'csv', path: path.join(dir, 'reg.csv'), images_root: path.join(dir, 'imgs'), target_columns: ['size', 'angle'] } });
    expect(res.status).toBe(202);
    expect(res.body.data.dataset).toMatchObject({ target_names: ['size', 'angle'], classes: [] });
    const job = await waitForJob(s.app, res.body.data.job.id);
    expect(job.status).toBe('succeeded');
    const ds = (await call<Dataset & { target_stats: Record<string, { count: number; min: number; max: number }> }>(s.app, 'GET', `/api/projects/${projectId}/datasets/${res.body.data.dataset.id}`)).body.data;
    expect(ds.image_count).toBe(3);
    expect(ds.import_report?.skipped).toEqual([
      { file: '2.png', reason: 'invalid_target', detail: "column 'size': 'n/a' is not a number" },
      { file: '4.png', reason: 'invalid_target', detail: "column 'size': missing value" },
    ]);
    expect(ds.target_stats.size).toMatchObject({ count: 3, min: 7.5, max: 20 });
    const base = `/api/projects/${projectId}/datasets/${ds.id}/images`;
    const items = (await call<{ items: { id: string; targets: Record<string, number> }[] }>(s.app, 'GET', base)).body.data.items;
    expect(items.map((i) => i.targets).sort((a, b) => a.size - b.size)).toEqual([{ size: 7.5, angle: -1 }, { size: 12, angle: 0.5 }, { size: 20, angle: 1 }]);
    const first = items[0];
    expect((await call<{ targets: Record<string, number> }>(s.app, 'PATCH', `${base}/${first.id}`, { targets: { size: 13, angle: 0 } })).body.data.targets).toEqual({ size: 13, angle: 0 });
    const bad = await call(s.app, 'PATCH', `${base}/${first.id}`, { targets: { size: 'big', angle: 0 } });
    expect(bad.status).toBe(400);
    const split = await call<{ counts: Record<string, number> }>(s.app, 'POST', `/api/projects/${projectId}/datasets/${ds.id}/splits`, { name: 's', ratios: { train: 0.34, val: 0.33, test: 0.33 } });
    expect(split.status).toBe(201);
    expect(split.body.data.counts).toEqual({ train: 1, val: 1, test: 1, none: 0 });
  });

  it('refuses a source or option that does not fit the task with a 400 naming the field, and creates nothing', async () => {
    const csv = { kind: 'csv', path: path.join(dir, 'reg.csv'), images_root: path.join(dir, 'imgs') };
    const before = (await call<Dataset[]>(s.app, 'GET', `/api/projects/${projectId}/datasets`)).body.data.length;
    const cases: [unknown, RegExp][] = [
      [{ name: 'x', task: 'regression', source: { kind: 'folder', path: path.join(dir, 'imgs') } }, /^source\.kind: a folder cannot feed a regression dataset/],
      [{ name: 'x', task: 'multilabel', source: { kind: 'folder', path: path.join(dir, 'imgs') } }, /^source\.kind: a folder cannot feed a multilabel dataset/],
      [{ name: 'x', task: 'classification', source: { ...csv, target_columns: ['size'] } }, /^source\.target_columns: only a regression dataset takes target columns/],
      [{ name: 'x', source: { ...csv, label_separator: ';' } }, /^source\.label_separator: only a multilabel dataset splits labels/],
      [{ name: 'x', task: 'regression', source: csv }, /^source\.target_columns: a regression dataset needs/],
      [{ name: 'x', task: 'regression', source: { ...csv, target_columns: ['weight'] } }, /^source\.target_columns: the CSV has no column 'weight'/],
      [{ name: 'x', task: 'classification', source: { ...csv, image_column: 'photo' } }, /^source\.image_column: the CSV has no column 'photo'/],
      [{ name: 'x', task: 'regression', source: { ...csv, target_columns: [] } }, /source\.target_columns/],
      [{ name: 'x', task: 'segmentationish', source: csv }, /task/],
    ];
    for (const [payload, message] of cases) {
      const res = await create(payload);
      expect(res.status, JSON.stringify(payload)).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', message: expect.stringMatching(message) });
    }
    const zip = makeZip([{ name: 'a/1.png', data: await shapeImage('circle', 1) }]);
    const up = await upload(zip, { name: 'z', task: 'regression' });
    expect(up.statusCode).toBe(400);
    expect(body(up).error.message).toMatch(/^source\.kind: a zip .* cannot feed a regression dataset/);
    expect((await call<Dataset[]>(s.app, 'GET', `/api/projects/${projectId}/datasets`)).body.data.length).toBe(before);
  });
});
