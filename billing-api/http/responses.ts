/**
 * How routes document their answers in the OpenAPI document, from the same zod schemas that serialize
 * them: `errorResponses(...)` gives each error status the error shape with a description and an example,
 * `page(item)` a list page of the contract, `noContent` a 204, `example(schema, value)` an example for a
 * success answer. A route writes
 *
 *   schema: { summary: '...', response: { 200: example(meterSchema, {...}), ...errorResponses(400, 404) } }
 *
 * and every route gets 401, 429 and 500 on top (`errorResponses` adds them; a public route passes
 * `{ public: true }` to leave out 401 and 429).
 */
import { z } from 'zod';
import { errorSchema } from './schemas.js';

export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 429 | 500 | 503;

interface ErrorDoc {
  description: string;
  example: { error: { code: string; message: string; details: { field?: string; message: string }[] } };
}

const ERROR_DOCS: Record<ErrorStatus, ErrorDoc> = {
  400: {
    description: 'Invalid input: every problem is listed in details, each naming its field (body.x, querystring.y, params.id)',
    example: { error: { code: 'invalid_request', message: 'invalid body: 2 problem(s)', details: [{ field: 'body.timezone', message: 'must be an IANA time zone such as Europe/London' }, { field: 'body.extra', message: 'unknown field' }] } },
  },
  401: {
    description: 'No bearer token, or an unknown or revoked one',
    example: { error: { code: 'unauthorized', message: 'missing Authorization: Bearer <token>', details: [] } },
  },
  403: {
    description: 'The token is valid but its role may not do this',
    example: { error: { code: 'forbidden', message: 'this token may not do that', details: [] } },
  },
  404: {
    description: 'Not found (a customer token gets this for anything outside its account, so existence never leaks)',
    example: { error: { code: 'not_found', message: 'meter "MTR-000001" not found', details: [] } },
  },
  409: {
    description: 'Conflicts with what is stored (an id in use, billed history that may not change); the message names what blocks it',
    example: { error: { code: 'conflict', message: 'meter "MTR-000001": timezone cannot change: bill "ACC-1.2026-10-01" (cycle 2026-10-01T04:00:00Z to 2026-11-01T04:00:00Z) rated this meter in America/New_York', details: [] } },
  },
  429: {
    description: 'Rate limited (API_RATE_LIMIT_PER_MINUTE per token); wait Retry-After seconds',
    example: { error: { code: 'rate_limited', message: 'more than 6000 requests per minute with this token (or from this address without one); retry in 1 minute', details: [] } },
  },
  500: {
    description: 'An unexpected failure (logged with the request id); nothing is half done where the operation is one transaction',
    example: { error: { code: 'internal', message: 'internal error', details: [] } },
  },
  503: {
    description: 'Not ready',
    example: { error: { code: 'not_ready', message: 'not ready', details: [] } },
  },
};

/** The contract's error shape, documented for each status (401 and 429 are added unless `public`). */
export function errorResponses(...args: (ErrorStatus | { public: true })[]): Partial<Record<ErrorStatus, z.ZodType>> {
  const isPublic = args.some((a) => typeof a === 'object');
  const statuses = new Set(args.filter((a): a is ErrorStatus => typeof a === 'number'));
  if (!isPublic) {
    statuses.add(401);
    statuses.add(429);
  }
  statuses.add(500);
  const out: Partial<Record<ErrorStatus, z.ZodType>> = {};
  for (const status of [...statuses].sort((a, b) => a - b)) {
    const doc = ERROR_DOCS[status];
    out[status] = errorSchema.describe(doc.description).meta({ examples: [doc.example] });
  }
  return out;
}

/** A success schema with an example (shown in /docs). */
export function example<T extends z.ZodType>(schema: T, value: z.input<T>): T {
  return schema.meta({ examples: [value] }) as T;
}

/** A page of a list (contract section 3): items, and the path of the next page or null. */
export const page = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), next: z.string().nullable().describe('path of the next page (same filters), null on the last page') });

/** A 204 answer. */
export const noContent = z.null().describe('No content');

/**
 * The `next` path of a list paged by a cursor: the query as given with `after` set to the cursor of the last
 * item, or null when the page is not full.
 */
export function nextPage(path: string, query: Record<string, unknown>, items: unknown[], limit: number, cursorOf: (last: never) => string): string | null {
  if (items.length < limit || !items.length) return null;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && k !== 'after') params.set(k, String(v));
  params.set('after', cursorOf(items[items.length - 1] as never));
  return `${path}?${params}`;
}
