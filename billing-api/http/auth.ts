/**
 * Bearer tokens (contract section 3): admin (everything), reader (read-only, every account), customer
 * (read-only, one account). Tokens are stored as keyed digests (../provisioning/token-digest.ts). No token or
 * a bad one: 401. A valid token without the right: 403, or 404 where the resource's existence must not leak
 * to a customer.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { timingSafeEqual } from 'node:crypto';
import { sha256 } from '../../common/secrets.js';
import type { Principal, Role } from '../provisioning/provisioning.repository.js';
import { ApiError, forbidden, notFound } from './errors.js';

export type { Principal, Role } from '../provisioning/provisioning.repository.js';

/** Who a token is (the provisioning repository): null when unknown or revoked. */
export interface TokenLookup {
  principalOf(token: string): Promise<Principal | null>;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

const unauthorized = (message: string) => new ApiError(401, 'unauthorized', message);

export const authPlugin = fp(
  async (app: FastifyInstance, opts: { tokens: TokenLookup; metricsToken?: string }) => {
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
      const principal = await opts.tokens.principalOf(match[1]);
      if (!principal) throw unauthorized('unknown or revoked token');
      request.principal = principal;
      // Route-level role rules are enforced before the body is validated: 401, then 403, then 400.
      const roles = (request.routeOptions.config as { roles?: Role[] }).roles;
      if (roles && !roles.includes(principal.role)) throw forbidden();
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
