import { z } from 'zod';
import { AppError, notFound } from '../kernel/errors.ts';
import { zodMessage } from '../http/errors.ts';

/** Parses a request part with zod; a failure is a VALIDATION_ERROR naming the bad fields. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new AppError('VALIDATION_ERROR', `invalid ${where}: ${zodMessage(r.error)}`, r.error.issues);
  return r.data;
}

/**
 * Route params are ids; one that does not have the id shape cannot name anything that exists,
 * so it is a NOT_FOUND (and never reaches a path join).
 */
export function parseParams<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw notFound('resource', describe(value));
  return r.data;
}

function describe(value: unknown): string | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const last = Object.values(value as Record<string, unknown>).at(-1);
  return typeof last === 'string' ? last.slice(0, 80) : undefined;
}
