/**
 * Bearer tokens (contract section 3): admin (everything), reader (read-only, every account), customer
 * (read-only, one account). Tokens are stored as keyed digests (token-digest.ts). No token or a bad one: 401. A valid
 * token without the right: 403, or 404 where the resource's existence must not leak to a customer.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Pool } from '../common/db.js';
import { timingSafeEqual } from 'node:crypto';
import { sha256 } from '../common/secrets.js';
import { ApiError, forbidden, notFound } from './errors.js';
import { tokenDigester } from './token-digest.js';

export type Role = 'admin' | 'reader' | 'customer';

export interface Principal {
  tokenId: string;
  role: Role;
  accountId: string | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

const unauthorized = (message: string) => new ApiError(401, 'unauthorized', message);

export const authPlugin = fp(
  async (app: FastifyInstance, opts: { pool: Pool; metricsToken?: string }) => {
    app.decorateRequest('principal', null);
    const metricsDigest = opts.metricsToken ? sha256(opts.metricsToken) : null;
    app.addHook('onRequest', async (request) => {
      if (request.routeOptions.config && (request.routeOptions.config as { public?: boolean }).public) return;
      if (!request.routeOptions.url) return; // unknown route: the 404 handler answers
      const header = request.headers.authorization;
      if (!header) throw unauthorized('missing Authorization: Bearer <token>');
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      if (!match) throw unauthorized('Authorization must be "Bearer <token>"');
      if (metricsDigest && (request.routeOptions.config as { metrics?: boolean }).metrics) {
        const given = sha256(match[1]);
        if (timingSafeEqual(given, metricsDigest)) {
          request.principal = { tokenId: 'metrics', role: 'reader', accountId: null };
          return;
        }
      }
      const res = await opts.pool.query<{ id: string; role: Role; account_id: string | null }>({
        name: 'auth-token',
        text: 'SELECT id, role, account_id FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL',
        values: [(await tokenDigester(opts.pool))(match[1])],
      });
      if (res.rowCount === 0) throw unauthorized('unknown or revoked token');
      const row = res.rows[0];
      request.principal = { tokenId: row.id, role: row.role, accountId: row.account_id };
      // Route-level role rules are enforced before the body is validated: 401, then 403, then 400.
      const roles = (request.routeOptions.config as { roles?: Role[] }).roles;
      if (roles && !roles.includes(row.role)) throw forbidden();
    });
  },
  { name: 'auth' },
);

/** Route config: only admins. */
export const ADMIN_ONLY = { roles: ['admin'] as Role[] };
/** Route config of GET /metrics: admin, reader, or the METRICS_TOKEN. */
export const METRICS_READERS = { roles: ['admin', 'reader'] as Role[], metrics: true };
/** Route config: back-office roles only (admin, reader). */
export const STAFF_ONLY = { roles: ['admin', 'reader'] as Role[] };

/** Any role may read an account's data, a customer only its own; elsewhere a customer gets a 404. */
export function requireAccountAccess(request: FastifyRequest, accountId: string, what: string): void {
  const p = request.principal;
  if (!p) throw unauthorized('missing token');
  if (p.role === 'customer' && p.accountId !== accountId) throw notFound(what);
}
