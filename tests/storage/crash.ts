import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openWorkspace } from '../../src/storage/workspace.ts';
import { allFiles, checkWorkspace, runAndKill } from './kill-harness.ts';

/**
 * `npm run test:crash -- --kills 1000 [--parallel 3]`: the kill test at length (not in `npm test`).
 * Writers rewriting workspace JSON files are SIGKILLed at random moments; after each kill every
 * JSON file must parse and validate, and a reopen (as a restart does) must remove the dead
 * writer's temp files. Prints what it checked; exits 1 at the first torn file.
 */

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
  return v;
};
const KILLS = arg('kills', 1000);
const PARALLEL = arg('parallel', 3);

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'studio-crash-'));
const roots = Array.from({ length: PARALLEL }, (_, i) => path.join(dir, `ws${i}`));
for (const root of roots) await openWorkspace(root);
let kills = 0;
let filesChecked = 0;
let orphans = 0;
const t0 = Date.now();
try {
  while (kills < KILLS) {
    const batch = roots.slice(0, Math.min(PARALLEL, KILLS - kills));
    await Promise.all(batch.map((root, i) => runAndKill(root, kills + i, Math.floor(Math.random() * 120))));
    kills += batch.length;
    for (const root of batch) {
      const problems = await checkWorkspace(root);
      filesChecked += (await allFiles(root)).filter((f) => f.endsWith('.json')).length;
      if (problems.length) {
        console.error(`torn after ${kills} kills in ${root}:\n${problems.join('\n')}`);
        process.exit(1);
      }
      orphans += (await allFiles(root)).filter((f) => f.endsWith('.tmp')).length;
      const ws = await openWorkspace(root);
      const left = (await allFiles(root)).filter((f) => f.endsWith('.tmp'));
      if (left.length) {
        console.error(`temp files left after a reopen: ${left.join(', ')}`);
        process.exit(1);
      }
      if (!(await ws.readDataset('proj-00000001', 'ds-0000000a'))?.images.length) {
        console.error('the dataset did not read back through the workspace');
        process.exit(1);
      }
    }
    if (kills % 100 < PARALLEL) console.log(`${kills} kills …`);
  }
  console.log(
    JSON.stringify({ kills, json_files_checked: filesChecked, torn_files: 0, orphan_temp_files_removed_at_reopen: orphans, seconds: Math.round((Date.now() - t0) / 1000) }),
  );
} finally {
  await fs.rm(dir, { recursive: true, force: true });
}
