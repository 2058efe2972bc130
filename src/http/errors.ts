import type { FastifyError } from 'fastify';
import { ZodError } from 'zod';
import { ERROR_CODES, isAppError, type ErrorCode } from '../kernel/errors.ts';

/**
 * Turns anything thrown inside a request into one of our stable codes. Fastify's and
 * @fastify/multipart's own errors are translated here once, so no route catches broadly and the
 * envelope's `code` is always one of ours (never `FST_…`).
 */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'VALIDATION_ERROR',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'VALIDATION_ERROR',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'VALIDATION_ERROR',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA',
  FST_ERR_CTP_INVALID_TYPE: 'UNSUPPORTED_MEDIA',
  FST_ERR_NOT_FOUND: 'NOT_FOUND',
  FST_ERR_VALIDATION: 'VALIDATION_ERROR',
  FST_REQ_FILE_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_PARTS_LIMIT: 'TOO_MANY_PARTS',
  FST_FILES_LIMIT: 'TOO_MANY_PARTS',
  FST_FIELDS_LIMIT: 'TOO_MANY_PARTS',
  FST_PROTO_VIOLATION: 'VALIDATION_ERROR',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'UNSUPPORTED_MEDIA',
  FST_INVALID_JSON_FIELD_ERROR: 'VALIDATION_ERROR',
  FST_MP_PREMATURE_CLOSE: 'BAD_INPUT',
};

export interface MappedError {
  status: number;
  code: ErrorCode;
  message: string;
  details?: unknown;
}

export function mapError(err: unknown): MappedError {
  if (isAppError(err)) return { status: err.status, code: err.code, message: err.message, details: err.details };
  if (err instanceof ZodError) {
    return { status: ERROR_CODES.VALIDATION_ERROR, code: 'VALIDATION_ERROR', message: zodMessage(err), details: err.issues };
  }
  const fe = err as Partial<FastifyError> | null;
  const mapped = fe && typeof fe.code === 'string' ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return { status: ERROR_CODES[mapped], code: mapped, message: fe?.message ?? mapped };
  // secure-json-parse's prototype-poisoning refusal arrives as a plain SyntaxError with a 400.
  if (err instanceof SyntaxError) return { status: 400, code: 'VALIDATION_ERROR', message: err.message };
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) return { status, code: 'BAD_INPUT', message: fe?.message ?? 'bad request' };
  return { status: 500, code: 'INTERNAL', message: 'internal error' };
}

export function zodMessage(err: ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}
