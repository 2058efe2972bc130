/**
 * Child process for kill.test.ts: rewrites workspace JSON files as fast as it can, until it is
 * killed. Prints `ready` once it has started writing.
 * Files: 3 project.json, 2 dataset.json of varying size (up to ~1 MB, so a write takes a while),
 * studio.json, and a per-round counter through update() (per round: a lock held by a killed
 * writer is only taken over once stale, which would make every round wait).
 */
import { DatasetDoc, type DatasetFile } from '../../src/schemas/dataset.ts';
import { ProjectDoc } from '../../src/schemas/project.ts';
import { StudioDoc } from '../../src/schemas/studio.ts';
import { openWorkspace } from '../../src/storage/workspace.ts';

const [root, round] = process.argv.slice(2);
const ws = await openWorkspace(root);
const now = () => new Date().toISOString();
const pids = ['proj-00000001', 'proj-00000002', 'proj-00000003'];

function dataset(id: string, n: number, gen: number): DatasetFile {
  const hex = (i: number) => (i * 2654435761 + gen).toString(16).padStart(16, '0').slice(-16);
  return {
    schema_version: 1,
    id,
    name: `gen ${gen}`,
    task: 'classification',
    status: 'ready',
    classes: ['a', 'b'],
    target_names: [],
    split_names: ['s1'],
    images: Array.from({ length: n }, (_, i) => ({
      id: `img-${i.toString(36).padStart(8, '0')}`,
      file: `images/${hex(i)}.png`,
      width: 64,
      height: 64,
      hash: hex(i).repeat(4),
      label: i % 2 ? 'a' : 'b',
      split: [i % 3 ? 'train' : 'val'],
      source: `a/${i}.png`,
    })),
    import_report: null,
    error: null,
    created_at: now(),
    updated_at: now(),
  };
}

let gen = 0;
let announced = false;
for (;;) {
  gen += 1;
  const pid = pids[gen % pids.length];
  await ws.write(ProjectDoc, ws.projectFile(pid), { schema_version: 1, id: pid, name: `p ${gen}`, description: 'x'.repeat(gen % 500), created_at: now(), updated_at: now() });
  await ws.write(DatasetDoc, ws.datasetFile(pids[0], gen % 2 ? 'ds-0000000a' : 'ds-0000000b'), dataset(gen % 2 ? 'ds-0000000a' : 'ds-0000000b', (gen * 397) % 4000, gen));
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
