import type { ErrorCode } from '../kernel/errors.ts';

/** The one response shape of /api: `data` is the resource itself (or a list). */
export interface OkEnvelope<T> {
  status: 'ok';
  data: T;
}
export interface ErrorEnvelope {
  status: 'error';
  error: { code: ErrorCode; message: string; details?: unknown };
}

export const ok = <T>(data: T): OkEnvelope<T> => ({ status: 'ok', data });

export const fail = (code: ErrorCode, message: string, details?: unknown): ErrorEnvelope => ({
  status: 'error',
  error: details === undefined ? { code, message } : { code, message, details },
});
