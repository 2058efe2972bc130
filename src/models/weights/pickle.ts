import { AppError } from '../../kernel/errors.ts';
import { WEIGHTS_LIMITS } from './types.ts';

/**
 * A restricted unpickler for PyTorch state dicts. It interprets the pickle opcodes torch.save
 * writes (protocol 2; the protocol 4/5 forms of the same operations too) and knows a fixed list of
 * globals: an OrderedDict, the tensor and parameter rebuild functions, the storage types. Any
 * other global (`os.system`, `builtins.eval`, `subprocess.Popen`, …) is refused when the GLOBAL
 * opcode names it, before anything could be called: nothing in a file is ever executed, the
 * "calls" a pickle makes are interpreted here as data constructors only.
 */

export type StorageDtype = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export class PyGlobal {
  constructor(readonly module: string, readonly name: string, readonly role: Role) {}
}
export class PyDict {
  readonly map = new Map<string | number, PyValue>();
}
export interface StorageRef {
  kind: 'storage';
  dtype: StorageDtype;
  key: string;
  numel: number;
}
export interface TensorRef {
  kind: 'tensor';
  storage: StorageRef;
  offset: number;
  size: number[];
  stride: number[];
}
export type PyValue = null | boolean | number | string | Uint8Array | PyValue[] | PyDict | PyGlobal | StorageRef | TensorRef;

type Role = 'ordered_dict' | 'rebuild_tensor_v2' | 'rebuild_parameter' | 'rebuild_parameter_with_state' | { storage: StorageDtype };

/** The allow-list: `module name` → what it may build. Everything else is refused. */
export const ALLOWED_GLOBALS: Readonly<Record<string, Role>> = {
  'collections OrderedDict': 'ordered_dict',
  'torch._utils _rebuild_tensor_v2': 'rebuild_tensor_v2',
  'torch._utils _rebuild_parameter': 'rebuild_parameter',
  'torch._utils _rebuild_parameter_with_state': 'rebuild_parameter_with_state',
  'torch FloatStorage': { storage: 'float32' },
  'torch HalfStorage': { storage: 'float16' },
  'torch BFloat16Storage': { storage: 'bfloat16' },
  'torch DoubleStorage': { storage: 'float64' },
  'torch LongStorage': { storage: 'int64' },
  'torch IntStorage': { storage: 'int32' },
  'torch ShortStorage': { storage: 'int16' },
  'torch CharStorage': { storage: 'int8' },
  'torch ByteStorage': { storage: 'uint8' },
  'torch BoolStorage': { storage: 'bool' },
};

const MARK = Symbol('mark');
type Slot = PyValue | typeof MARK;

const refuse = (module: string, name: string) =>
  new AppError(
    'UNSAFE_PICKLE',
    `the file's pickle refers to '${`${module}.${name}`.slice(0, 200)}', which a tensor state dict never needs: refused, nothing was run (allowed: ${Object.keys(ALLOWED_GLOBALS).map((k) => k.replace(' ', '.')).join(', ')})`,
  );
const broken = (why: string) => new AppError('BAD_INPUT', `the file's pickle is malformed: ${why}`);

export type PersistentLoad = (pid: PyValue) => StorageRef;

export function isTensor(v: unknown): v is TensorRef {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'tensor';
}
function isStorage(v: unknown): v is StorageRef {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'storage';
}

function intList(v: PyValue, what: string): number[] {
  if (!Array.isArray(v) || v.length > WEIGHTS_LIMITS.maxRank || !v.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) throw broken(`a tensor's ${what} is not a tuple of sizes`);
  return v as number[];
}

function call(fn: PyValue, args: PyValue): PyValue {
  if (!(fn instanceof PyGlobal)) throw broken('REDUCE on something that is not an allowed global');
  if (!Array.isArray(args)) throw broken('REDUCE without an argument tuple');
  const role = fn.role;
  if (role === 'ordered_dict') {
    if (args.length !== 0) throw broken('OrderedDict called with arguments');
    return new PyDict();
  }
  if (role === 'rebuild_tensor_v2') {
    const [storage, offset, size, stride] = args;
    if (!isStorage(storage)) throw broken('_rebuild_tensor_v2 without a storage');
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw broken('a tensor with a bad storage offset');
    const s = intList(size as PyValue, 'size');
    const st = intList(stride as PyValue, 'stride');
    if (s.length !== st.length) throw broken('a tensor whose size and stride differ in rank');
    return { kind: 'tensor', storage, offset, size: s, stride: st };
  }
  if (role === 'rebuild_parameter' || role === 'rebuild_parameter_with_state') {
    if (!isTensor(args[0])) throw broken('_rebuild_parameter without a tensor');
    return args[0];
  }
  throw broken(`a storage type (${fn.name}) called as a function`);
}

/** Interprets `bytes` as a pickle; `persistentLoad` resolves each BINPERSID (torch's storages). */
export function unpickle(bytes: Uint8Array, persistentLoad: PersistentLoad): PyValue {
  if (bytes.length > WEIGHTS_LIMITS.maxPickleBytes) throw broken(`${bytes.length} bytes of pickle`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: Slot[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  let p = 0;

  const need = (n: number) => {
    if (p + n > bytes.length) throw broken('it ends in the middle of an instruction (truncated?)');
  };
  const u8 = () => (need(1), bytes[p++]);
  const u16 = () => (need(2), (p += 2), dv.getUint16(p - 2, true));
  const u32 = () => (need(4), (p += 4), dv.getUint32(p - 4, true));
  const i32 = () => (need(4), (p += 4), dv.getInt32(p - 4, true));
  const u64 = () => {
    need(8);
    const v = dv.getBigUint64(p, true);
    p += 8;
    if (v > BigInt(bytes.length)) throw broken('a length past the end of the data');
    return Number(v);
  };
  const take = (n: number) => (need(n), (p += n), bytes.subarray(p - n, p));
  const utf8 = (n: number) => Buffer.from(take(n)).toString('utf8');
  const line = () => {
    const end = bytes.indexOf(0x0a, p);
    if (end < 0) throw broken('a text argument without its newline');
    const s = Buffer.from(bytes.subarray(p, end)).toString('latin1');
    p = end + 1;
    return s;
  };
  const push = (v: Slot) => {
    if (stack.length > 1_000_000) throw broken('the stack grows past a million entries');
    stack.push(v);
  };
  const pop = (): PyValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) throw broken('an instruction takes from an empty stack');
    return v;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) throw broken('an instruction needs a value on the stack');
    return v;
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) throw broken('no MARK');
    // the MARK itself and what lies above it
    const items = stack.splice(m).slice(1) as PyValue[];
    if (items.some((x) => (x as Slot) === MARK)) throw broken('a MARK inside a group');
    return items;
  };
  const put = (i: number) => {
    if (memo.size >= 10_000_000) throw broken('too many memo entries');
    memo.set(i, top());
  };
  const get = (i: number) => {
    const v = memo.get(i);
    if (v === undefined) throw broken(`memo ${i} read before it was written`);
    push(v);
  };
  const global = (module: string, name: string) => {
    const role = ALLOWED_GLOBALS[`${module} ${name}`];
    if (role === undefined) throw refuse(module, name);
    push(new PyGlobal(module, name, role));
  };
  const setItems = (dict: PyValue, kv: PyValue[]) => {
    if (!(dict instanceof PyDict)) throw broken('SETITEM on something that is not a dict');
    if (kv.length % 2) throw broken('SETITEMS with an odd count');
    for (let i = 0; i < kv.length; i += 2) {
      const k = kv[i];
      if (typeof k !== 'string' && typeof k !== 'number') throw broken('a dict key that is not a string or a number');
      dict.map.set(k, kv[i + 1]);
    }
  };
  const append = (list: PyValue, items: PyValue[]) => {
    if (!Array.isArray(list)) throw broken('APPEND on something that is not a list');
    for (const x of items) list.push(x);
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) throw broken('an unknown pickle protocol');
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) throw broken('STOP with a stack not of one value');
        return pop();
      case 0x28: // MARK
        marks.push(stack.length);
        push(MARK);
        break;
      case 0x29: push([]); break; // EMPTY_TUPLE
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x7d: push(new PyDict()); break; // EMPTY_DICT
      case 0x74: push(popMark()); break; // TUPLE
      case 0x6c: push(popMark()); break; // LIST
      case 0x85: push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); push([a, b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); push([a, b, c]); break; } // TUPLE3
      case 0x64: { const kv = popMark(); const d = new PyDict(); setItems(d, kv); push(d); break; } // DICT
      case 0x61: { const v = pop(); append(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(), kv); break; } // SETITEMS
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(u16()); break; // BININT2
      case 0x4a: push(i32()); break; // BININT
      case 0x8a: { // LONG1
        const n = u8();
        const b = take(n);
        if (n > 7) throw broken('an integer wider than 53 bits');
        let v = 0;
        for (let i = n - 1; i >= 0; i--) v = v * 256 + b[i];
        if (n > 0 && b[n - 1] & 0x80) v -= 2 ** (8 * n);
        push(v);
        break;
      }
      case 0x49: { // INT (text; 01/00 are True/False)
        const s = line();
        push(s === '01' ? true : s === '00' ? false : Number.parseInt(s, 10));
        break;
      }
      case 0x4c: push(Number.parseInt(line().replace(/L$/, ''), 10)); break; // LONG (text)
      case 0x46: push(Number.parseFloat(line())); break; // FLOAT (text)
      case 0x47: { need(8); push(dv.getFloat64(p, false)); p += 8; break; } // BINFLOAT (big-endian)
      case 0x58: push(utf8(u32())); break; // BINUNICODE
      case 0x8c: push(utf8(u8())); break; // SHORT_BINUNICODE
      case 0x8d: push(utf8(u64())); break; // BINUNICODE8
      case 0x54: push(Buffer.from(take(u32())).toString('latin1')); break; // BINSTRING
      case 0x55: push(Buffer.from(take(u8())).toString('latin1')); break; // SHORT_BINSTRING
      case 0x42: push(take(u32())); break; // BINBYTES
      case 0x43: push(take(u8())); break; // SHORT_BINBYTES
      case 0x8e: push(take(u64())); break; // BINBYTES8
      case 0x71: put(u8()); break; // BINPUT
      case 0x72: put(u32()); break; // LONG_BINPUT
      case 0x94: put(memo.size); break; // MEMOIZE
      case 0x70: put(Number.parseInt(line(), 10)); break; // PUT
      case 0x68: get(u8()); break; // BINGET
      case 0x6a: get(u32()); break; // LONG_BINGET
      case 0x67: get(Number.parseInt(line(), 10)); break; // GET
      case 0x63: { const module = line(); const name = line(); global(module, name); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw broken('STACK_GLOBAL without two strings');
        global(module, name);
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); push(call(fn, args)); break; } // REDUCE
      case 0x62: { // BUILD: an OrderedDict's `_metadata`, a tensor's state: kept out
        pop();
        const target = top();
        if (!(target instanceof PyDict) && !isTensor(target)) throw broken('BUILD on something that is not a dict or a tensor');
        break;
      }
      case 0x51: push(persistentLoad(pop())); break; // BINPERSID
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: push(top()); break; // DUP
      default:
        // INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT*, PERSID, sets, NEXT_BUFFER, …: a state dict needs none of them.
        throw new AppError('UNSAFE_PICKLE', `the file's pickle uses opcode 0x${op.toString(16).padStart(2, '0')} at byte ${p - 1}, which a tensor state dict never needs: refused, nothing was run`);
    }
  }
}
