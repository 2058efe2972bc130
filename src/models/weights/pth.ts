import { AppError } from '../../kernel/errors.ts';
import { DTYPE_BYTES, isFloatDtype, viewToFloat32 } from './convert.ts';
import { isTensor, PyDict, PyGlobal, unpickle, type PyValue, type StorageRef, type TensorRef } from './pickle.ts';
import { numel, WEIGHTS_LIMITS, type LoadedTensor, type ReadWeights, type SkippedTensor } from './types.ts';
import { readZipDirectory, readZipEntry, type ZipEntry } from './zip.ts';

/**
 * A torchvision `.pth`: PyTorch's zip format (torch.save since 1.6): `<name>/data.pkl` (the
 * pickled object, tensors as persistent ids naming storages), `<name>/data/<key>` (one file per
 * storage, raw little-endian), `<name>/version`, `<name>/byteorder` (since 2.1). The pickle goes
 * through the restricted unpickler (pickle.ts). The legacy format (a bare pickle stream, before
 * 1.6) is refused with the way to convert it.
 */

/** torch.save's legacy magic: LONG1 0x1950a86a20f9469cfc6c as the first pickled value. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

export function isLegacyTorchFile(bytes: Uint8Array): boolean {
  return LEGACY_MAGIC.every((b, i) => bytes[i] === b);
}

export function isZip(bytes: Uint8Array): boolean {
  return bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

export const LEGACY_MESSAGE =
  'this .pth uses PyTorch\'s legacy format (before 1.6), which is not read here: re-save it with a current PyTorch, e.g. `torch.save(torch.load(f, weights_only=True), "out.pth")`, or save it as .safetensors';

/** Keys under which training scripts wrap a state dict, tried in order. */
const WRAPPERS = ['state_dict', 'model_state_dict', 'model', 'module', 'net', 'state_dict_ema', 'model_ema'];

function tensorEntries(d: PyDict): number {
  let n = 0;
  for (const v of d.map.values()) if (isTensor(v)) n++;
  return n;
}

function describe(v: PyValue): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'a tuple or list';
  if (v instanceof PyDict) return 'a dict';
  if (v instanceof PyGlobal) return `${v.module}.${v.name}`;
  if (v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'object') return `a ${v.kind}`;
  return `a ${typeof v}`;
}

/** The state dict inside the unpickled object: itself, or under a wrapper key; the rest skipped. */
function findStateDict(root: PyValue, skipped: SkippedTensor[]): PyDict {
  if (!(root instanceof PyDict)) throw new AppError('BAD_INPUT', `the .pth holds ${describe(root)}, not a state dict (save \`model.state_dict()\`, not the model)`);
  if (tensorEntries(root) > 0) return root;
  for (const key of WRAPPERS) {
    const inner = root.map.get(key);
    if (inner instanceof PyDict && tensorEntries(inner) > 0) {
      for (const k of root.map.keys()) if (k !== key) skipped.push({ name: String(k), reason: `outside the state dict (under '${key}')` });
      return inner;
    }
  }
  throw new AppError('BAD_INPUT', `the .pth holds no tensors (keys: ${[...root.map.keys()].slice(0, 10).join(', ')})`);
}

export function readTorchPth(bytes: Uint8Array): ReadWeights {
  if (isLegacyTorchFile(bytes)) throw new AppError('BAD_INPUT', LEGACY_MESSAGE);
  if (!isZip(bytes)) throw new AppError('BAD_INPUT', 'not a PyTorch .pth (no zip signature)');
  const entries = readZipDirectory(bytes);
  const pkls = entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (pkls.length !== 1) throw new AppError('BAD_INPUT', `not a PyTorch .pth: ${pkls.length} data.pkl entries (expected one, '<name>/data.pkl')`);
  const prefix = pkls[0].name.slice(0, -'data.pkl'.length);
  const byName = new Map<string, ZipEntry>(entries.map((e) => [e.name, e]));
  const order = byName.get(`${prefix}byteorder`);
  if (order && Buffer.from(readZipEntry(bytes, order)).toString('latin1').trim() !== 'little') {
    throw new AppError('BAD_INPUT', 'the .pth was saved on a big-endian machine: not read here');
  }

  const storages = new Map<string, StorageRef>();
  const persistentLoad = (pid: PyValue): StorageRef => {
    if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage') throw new AppError('BAD_INPUT', 'the .pth names a persistent object that is not a storage');
    const [, type, key, , n] = pid;
    if (!(type instanceof PyGlobal) || typeof type.role !== 'object') throw new AppError('BAD_INPUT', 'a storage without a storage type');
    if (typeof key !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(key)) throw new AppError('BAD_INPUT', 'a storage with a bad key');
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new AppError('BAD_INPUT', `storage '${key}' has a bad size`);
    let s = storages.get(key);
    if (!s) {
      if (storages.size >= WEIGHTS_LIMITS.maxTensors) throw new AppError('BAD_INPUT', 'too many storages');
      s = { kind: 'storage', dtype: type.role.storage, key, numel: n };
      storages.set(key, s);
    }
    return s;
  };
  const root = unpickle(readZipEntry(bytes, pkls[0]), persistentLoad);
  const skipped: SkippedTensor[] = [];
  const dict = findStateDict(root, skipped);

  // Every storage a tensor uses must be in the zip, whole, before any tensor is read.
  const storageBytes = new Map<string, Uint8Array>();
  for (const s of storages.values()) {
    const e = byName.get(`${prefix}data/${s.key}`);
    if (!e) throw new AppError('BAD_INPUT', `the .pth lacks the storage file '${prefix}data/${s.key}' (truncated?)`);
    if (e.size < s.numel * DTYPE_BYTES[s.dtype]) {
      throw new AppError('BAD_INPUT', `storage '${s.key}' holds ${e.size} bytes, ${s.numel * DTYPE_BYTES[s.dtype]} expected: the file is truncated`);
    }
  }
  const storageOf = (s: StorageRef): Uint8Array => {
    let b = storageBytes.get(s.key);
    if (!b) {
      b = readZipEntry(bytes, byName.get(`${prefix}data/${s.key}`)!);
      storageBytes.set(s.key, b);
    }
    return b;
  };

  const tensors = new Map<string, LoadedTensor>();
  const keys = [...dict.map.keys()].map(String);
  // DataParallel's `module.` prefix on every key is dropped.
  const strip = keys.length > 0 && keys.every((k) => k.startsWith('module.')) ? 'module.'.length : 0;
  for (const [k, v] of dict.map) {
    const name = String(k).slice(strip);
    if (!isTensor(v)) {
      skipped.push({ name, reason: `not a tensor (${describe(v)})` });
      continue;
    }
    const t: TensorRef = v;
    if (!isFloatDtype(t.storage.dtype)) {
      skipped.push({ name, reason: name.endsWith('num_batches_tracked') ? 'batch-norm step counter: not used' : `${t.storage.dtype} tensor: not a weight` });
      continue;
    }
    if (tensors.size >= WEIGHTS_LIMITS.maxTensors) throw new AppError('BAD_INPUT', 'too many tensors');
    const data = viewToFloat32(name, storageOf(t.storage), t.storage.numel, t.storage.dtype, t.offset, t.size, t.stride);
    tensors.set(name, { dims: [...t.size], data });
    if (data.length !== numel(t.size)) throw new AppError('INTERNAL', `tensor '${name}' materialized wrong`);
  }
  return { format: 'torchvision_pth', tensors, skipped };
}
