/**
 * The error shape of contract section 3: `{"error": {"code", "message", "details": [...]}}`. A 400 lists
 * every problem found in the request, each with the field it concerns.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';

export interface ErrorDetail {
  field?: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
  }
}

export const badRequest = (message: string, details: ErrorDetail[] = []) => new ApiError(400, 'invalid_request', message, details);
export const notFound = (what: string) => new ApiError(404, 'not_found', `${what} not found`);
export const conflict = (message: string) => new ApiError(409, 'conflict', message);
export const forbidden = () => new ApiError(403, 'forbidden', 'this token may not do that');
/** 429 (the Retry-After header is the rate limiter's). */
export const tooManyRequests = (perMinute: number, retryIn: string) =>
  new ApiError(429, 'rate_limited', `more than ${perMinute} requests per minute with this token (or from this address without one); retry in ${retryIn}`);

export function errorBody(code: string, message: string, details: ErrorDetail[] = []) {
  return { error: { code, message, details } };
}

export function installErrorHandler(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send(errorBody('not_found', `no route ${request.method} ${request.url.split('?')[0]}`));
  });
  app.setErrorHandler((err: FastifyError | ApiError, request, reply) => {
    if (err instanceof ApiError) {
      return reply.code(err.statusCode).send(errorBody(err.code, err.message, err.details));
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      const where = (err as { validationContext?: string }).validationContext ?? 'request';
      const details = err.validation.flatMap((v) => {
        const path = [where, ...v.instancePath.split('/').filter(Boolean)];
        // An unknown field is reported by zod once for all unknown keys of an object: one detail per key.
        const unknownKeys = v.keyword === 'unrecognized_keys' ? (v.params as { keys?: string[] }).keys : undefined;
        if (unknownKeys?.length) return unknownKeys.map((key) => ({ field: [...path, key].join('.'), message: 'unknown field' }));
        return [{ field: path.join('.'), message: v.message ?? 'invalid' }];
      });
      return reply.code(400).send(errorBody('invalid_request', `invalid ${where}: ${details.length} problem(s)`, details));
    }
    // Text PostgreSQL cannot store (a NUL byte, an invalid sequence) that a route's own check missed.
    const pgCode = (err as { code?: string }).code;
    if (pgCode === '22021' || pgCode === '22P05') {
      return reply.code(400).send(errorBody('invalid_request', 'the request contains text the database cannot store (a NUL byte or an invalid character)'));
    }
    const status = (err as FastifyError).statusCode ?? 500;
    if (status >= 500) {
      request.log.error({ err }, 'request failed');
      return reply.code(status).send(errorBody('internal', 'internal error'));
    }
    // Fastify's own 4xx (malformed JSON, wrong content type, body too large ...).
    return reply.code(status).send(errorBody((err as FastifyError).code?.toLowerCase() ?? 'invalid_request', err.message));
  });
}

/** Postgres unique violation -> 409 with a readable message. */
export function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string })?.code === '23505';
}

/** Where a request carries a NUL byte (params, querystring, body; keys and values): one detail per place. */
export function nulByteDetails(parts: Record<string, unknown>): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  const visit = (value: unknown, path: string, depth: number) => {
    if (details.length >= 20 || depth > 32) return;
    if (typeof value === 'string') {
      if (value.includes('\u0000')) details.push({ field: path, message: 'must not contain a NUL byte (\\u0000)' });
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => visit(v, `${path}.${i}`, depth + 1));
    } else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        const field = `${path}.${k.replace(/\u0000/g, '\\u0000')}`;
        if (k.includes('\u0000')) details.push({ field, message: 'field name must not contain a NUL byte (\\u0000)' });
        else visit(v, field, depth + 1);
      }
    }
  };
  for (const [where, value] of Object.entries(parts)) visit(value, where, 0);
  return details;
}
