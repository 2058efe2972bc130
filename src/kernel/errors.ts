/**
 * The one catalogue of domain errors. Every error the API answers with carries one of these codes;
 * the Fastify error handlers (src/http/errors.ts with src/api/index.ts, and src/web/errors.ts) map
 * them to the JSON envelope or an error fragment. CANCELLED and INTERRUPTED are job outcomes
 * (stored on the job record and sent as SSE `error` events), not HTTP answers. Add a code here, with its HTTP status, before using it.
 */
export const ERROR_CODES = {
  NOT_FOUND: 404,
  VALIDATION_ERROR: 400,
  BAD_INPUT: 400,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA: 415,
  BAD_ARCHIVE: 400,
  PATH_OUTSIDE_ROOT: 400,
  FORBIDDEN_ORIGIN: 403,
  UNAUTHORIZED: 401,
  TOO_MANY_PARTS: 413,
  SCHEMA_VERSION: 500,
  STORAGE_CORRUPT: 500,
  UNSUPPORTED_OP: 400,
  CANCELLED: 409,
  INTERRUPTED: 409,
  INTERNAL: 500,
  /** A weights file's pickle names a global (or opcode) a tensor state dict never needs. */
  UNSAFE_PICKLE: 400,
  /** A download's bytes do not have the pinned sha256. */
  HASH_MISMATCH: 502,
  /** A download failed after it started (HTTP error, a body cut short). */
  DOWNLOAD_FAILED: 502,
  /** The host a download needs cannot be reached (an offline machine): the message says how to load the file by hand. */
  OFFLINE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: unknown;

  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_CODES[code];
    this.details = details;
  }
}

export const notFound = (what: string, id?: string) =>
  new AppError('NOT_FOUND', id === undefined ? `${what} not found` : `${what} '${id}' not found`);
export const conflict = (message: string) => new AppError('CONFLICT', message);
export const validation = (message: string, details?: unknown) =>
  new AppError('VALIDATION_ERROR', message, details);
export const badInput = (message: string, details?: unknown) => new AppError('BAD_INPUT', message, details);

export function isAppError(e: unknown): e is AppError {
  return e instanceof AppError;
}

/** An error as data: errors lose their class crossing a worker thread, so a failure comes back as this. */
export interface ErrorData {
  code: string;
  message: string;
}

/** In a worker: the error to send back. A code that looks like one of ours (or a Node one) is kept. */
export function toErrorData(e: unknown): ErrorData {
  if (isAppError(e)) return { code: e.code, message: e.message };
  const code = (e as { code?: unknown } | null)?.code;
  return { code: typeof code === 'string' && /^[A-Z_]{3,40}$/.test(code) ? code : 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

/** In the main thread: a worker's error as an AppError; a code not in the catalogue becomes INTERNAL. */
export function fromErrorData(error: ErrorData): AppError {
  const code: ErrorCode = Object.hasOwn(ERROR_CODES, error.code) ? (error.code as ErrorCode) : 'INTERNAL';
  return new AppError(code, error.message);
}
