/**
 * Child process for kill.test.ts and crash.ts: rewrites workspace JSON files as fast as it can,
 * until it is killed. Prints `ready` once it has started writing.
 * Files: 3 project.json, studio.json, a per-round counter through update() (per round: a lock held
 * by a killed writer is only taken over once stale, which would make every round wait), and two
 * datasets edited through the dataset store: batches appended (the last shard rewritten and new
 * ones begun), images relabelled and deleted, splits made and removed; and a version-1
 * dataset.json written and migrated (shards, splits, then the header over it).
 */
import { DatasetV1Doc, type DatasetFile, type StoredImage } from '../../src/schemas/dataset.ts';
import { ProjectDoc } from '../../src/schemas/project.ts';
import { StudioDoc } from '../../src/schemas/studio.ts';
import { unpackId } from '../../src/storage/dataset-index.ts';
import { openWorkspace } from '../../src/storage/workspace.ts';

const [root, round] = process.argv.slice(2);
const ws = await openWorkspace(root);
const now = () => new Date().toISOString();
const pids = ['proj-00000001', 'proj-00000002', 'proj-00000003'];
const r = Number(round);

const hex = (i: number, gen: number) => (i * 2654435761 + gen * 97).toString(16).padStart(16, '0').slice(-16);
function record(i: number, gen: number): StoredImage {
  return { id: `img-${(i + gen * 5000).toString(36).padStart(8, '0').slice(-8)}`, file: `images/${hex(i, gen)}.png`, width: 64, height: 64, hash: hex(i, gen).repeat(4), label: i % 3 ? 'a' : 'b', source: `a/${i}.png` };
}

function v1(id: string, n: number, gen: number): DatasetFile {
  return {
    schema_version: 1,
    id,
    name: `gen ${gen}`,
    task: 'classification',
    status: 'ready',
    classes: ['a', 'b'],
    target_names: [],
    split_names: ['s1'],
    images: Array.from({ length: n }, (_, i) => ({ ...record(i, gen), split: [i % 3 ? 'train' : 'val'] })),
    import_report: null,
    error: null,
    created_at: now(),
    updated_at: now(),
  };
}

async function editDataset(did: string, gen: number): Promise<void> {
  const pid = pids[0];
  if ((await ws.datasets.header(pid, did)) === null) {
    await ws.datasets.create(pid, { id: did, name: did, task: 'classification', status: 'ready', classes: ['a', 'b'], target_names: [], import_report: null, error: null, created_at: now(), updated_at: now() });
  }
  const op = gen % 5;
  await ws.datasets.transact(pid, did, async (tx) => {
    const shards = tx.index.shards.length;
    if (op === 0 || shards === 0 || tx.index.size < 50) {
      tx.append(Array.from({ length: 300 + (gen % 7) * 150 }, (_, i) => record(i, gen)).filter((rec) => !tx.index.hasStem(rec.hash.slice(0, 16))));
    } else if (op === 1) {
      const slot = gen % shards;
      const recs = await tx.records(slot);
      recs[gen % recs.length].label = recs[gen % recs.length].label === 'a' ? 'b' : 'a';
      tx.replace(slot, recs);
    } else if (op === 2) {
      const slot = gen % shards;
      const recs = await tx.records(slot);
      const [gone] = recs.splice(gen % recs.length, 1);
      tx.replace(slot, recs);
      tx.trash([gone.file]);
    } else if (op === 3 && tx.header.splits.length < 2) {
      const ids = tx.index.shards.flatMap((s) => Array.from(s.ids, unpackId));
      tx.addSplit({ schema_version: 1, name: `s${gen}`, train: ids.filter((_, i) => i % 4), val: ids.filter((_, i) => i % 4 === 0), test: [] });
    } else if (tx.header.splits.length > 0) {
      tx.removeSplit(tx.header.splits[0].name);
    }
  });
}

let gen = r * 1000;
let announced = false;
for (;;) {
  gen += 1;
  const pid = pids[gen % pids.length];
  await ws.write(ProjectDoc, ws.projectFile(pid), { schema_version: 1, id: pid, name: `p ${gen}`, description: 'x'.repeat(gen % 500), created_at: now(), updated_at: now() });
  await editDataset(gen % 2 ? 'ds-0000000a' : 'ds-0000000b', gen);
  if (gen % 4 === 0) {
    // A version-1 file, then its migration on read.
    await ws.write(DatasetV1Doc, ws.datasetFile(pids[1], 'ds-0000000c'), v1('ds-0000000c', 500 + (gen % 5) * 700, gen));
    await ws.datasets.header(pids[1], 'ds-0000000c');
  }
  await ws.write(StudioDoc, ws.studioFile(), { schema_version: 1, created_at: now(), example_offered: gen % 2 === 0 });
  await ws.update(ProjectDoc, ws.projectFile(`proj-r${round.padStart(7, '0')}`), (cur) => ({
    schema_version: 1 as const,
    id: `proj-r${round.padStart(7, '0')}`,
    name: `${Number(cur?.name ?? 0) + 1}`,
    description: '',
    created_at: cur?.created_at ?? now(),
    updated_at: now(),
  }));
  if (!announced) {
    announced = true;
    process.stdout.write('ready\n');
  }
}
