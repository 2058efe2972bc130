import { customAlphabet } from 'nanoid';
import { ID_ALPHABET, ID_LENGTH } from '../schemas/common.ts';

const eight = customAlphabet(ID_ALPHABET, ID_LENGTH);

export type IdPrefix = 'proj' | 'ds' | 'img' | 'job' | 'split' | 'exp' | 'run' | 'eval' | 'export' | 'bb';

/** `{prefix}-{8 chars}`: 36^8 ≈ 2.8e12 values, enough that collisions within one workspace are not a concern. */
export function newId(prefix: IdPrefix): string {
  return `${prefix}-${eight()}`;
}
