/**
 * The error shape of contract section 3: `{"error": {"code", "message", "details": [...]}}`. A 400 lists
 * every problem found in the request, each with the field it concerns.
 *
 * The one place where errors become HTTP answers: HTTP's own (`ApiError`: 401, 403, 429, a route's 400 or
 * 404), the domains' (`DomainError`, ../domain-errors.ts) and the rating core's (`RatingError`, and
 * `UrdbImportError` for a URDB rate it cannot import).
 */
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { RatingError, UrdbImportError } from '../../rating/index.js';
import { CurrencyMismatch, DomainError, InvalidInput, NoTariffAssigned, NotFound } from '../domain-errors.js';

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
    if (err instanceof DomainError || err instanceof RatingError || err instanceof UrdbImportError) {
      const mapped = httpErrorOf(err, request);
      return reply.code(mapped.statusCode).send(errorBody(mapped.code, mapped.message, mapped.details));
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

/**
 * The HTTP answer to a domain or rating error. An invalid input is named where the request carried it
 * (`body.asOf`, `querystring.tz`): the first part of the request that holds a field of that name.
 */
export function httpErrorOf(err: DomainError | RatingError | UrdbImportError, request: Pick<FastifyRequest, 'body' | 'query' | 'params'>): ApiError {
  if (err instanceof UrdbImportError) {
    return badRequest(`URDB rate refused: ${err.issues.length} problem(s)`, err.issues.map((i) => ({ field: i.path, message: i.message })));
  }
  if (err instanceof RatingError) {
    const status = err.code === 'no_tariff_in_effect' || err.code === 'net_metering_not_rated' ? 409 : 400;
    return new ApiError(status, err.code, err.message, err.details.map((message) => ({ message })));
  }
  if (err instanceof InvalidInput) {
    const details = err.problems.map((p) => {
      const part = requestPartOf(request, p.field);
      return p.field === undefined ? { message: p.message } : { field: `${part}.${p.field}`, message: p.message };
    });
    return new ApiError(400, err.code, `invalid ${requestPartOf(request, err.problems[0]?.field)}: ${err.message}`, details);
  }
  if (err instanceof NotFound) return new ApiError(404, err.code, err.message);
  if (err instanceof NoTariffAssigned) return new ApiError(409, err.code, `${err.message} (PUT /v1/meters/${err.meterId}/tariff)`);
  if (err instanceof CurrencyMismatch) return new ApiError(409, err.code, err.message);
  return new ApiError(409, err.code, err.message);
}

type RequestPart = 'body' | 'querystring' | 'params';

function requestPartOf(request: Pick<FastifyRequest, 'body' | 'query' | 'params'>, field: string | undefined): RequestPart {
  const holds = (value: unknown) => field !== undefined && value !== null && typeof value === 'object' && Object.hasOwn(value, field.split('.')[0]);
  if (holds(request.body)) return 'body';
  if (holds(request.query)) return 'querystring';
  if (holds(request.params)) return 'params';
  return 'body';
}
