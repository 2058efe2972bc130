import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * PyTorch's figures on this machine, measured in the same sitting as ours by
 * ../shared/bench/torch_reference.py (Debian's python3-torch; a measuring tool only). Returns its JSON
 * lines, or null with the reason when python3, torch or the script is not there.
 */
const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared/bench/torch_reference.py');

/** Debian's interpreter first: python3-torch installs there, while a pyenv `python3` may shadow it on PATH. */
const PYTHON = process.env.TORCH_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

export type TorchFigures = Record<string, string | number>[];

export function torchReference(model: string, size: number, batch: number): Promise<{ lines: TorchFigures } | { unavailable: string }> {
  if (!existsSync(SCRIPT)) return Promise.resolve({ unavailable: `${SCRIPT} not found` });
  return new Promise((resolve) => {
    execFile(PYTHON, [SCRIPT, model, String(size), String(batch)], { timeout: 20 * 60_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return resolve({ unavailable: (stderr || err.message).trim().split('\n').pop() ?? 'failed' });
      const lines = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, string | number>);
      resolve({ lines });
    });
  });
}
