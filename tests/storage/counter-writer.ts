/** Child process for workspace.test.ts: increments a counter file N times through the workspace lock. */
import { z } from 'zod';
import type { DocType } from '../../src/schemas/common.ts';
import { openWorkspace } from '../../src/storage/workspace.ts';

const CounterSchema = z.object({ schema_version: z.literal(1), n: z.number().int(), seen: z.array(z.string()) });
type Counter = z.infer<typeof CounterSchema>;
const CounterDoc: DocType<Counter> = { name: 'counter', version: 1, schema: CounterSchema };

const [root, file, tag, count] = process.argv.slice(2);
const ws = await openWorkspace(root);
for (let i = 0; i < Number(count); i++) {
  await ws.update(CounterDoc, file, (c) => ({ ...c!, n: c!.n + 1, seen: [...c!.seen, `${tag}-${i}`] }));
}
