/**
 * PostgreSQL text cannot hold a NUL byte: a request carrying one is refused for every route, with each place
 * named (`params.id`, `querystring.from`, `body.meterIds.1`), before any schema or query sees it (after
 * authentication, so 401 and 403 come first).
 */
import type { FastifyInstance } from 'fastify';
import { badRequest, type ErrorDetail } from './errors.js';

export function refuseNulBytes(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    const details = nulByteDetails({ params: request.params, querystring: request.query, body: request.body });
    if (details.length) throw badRequest(`invalid request: ${details.length} problem(s)`, details);
  });
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
