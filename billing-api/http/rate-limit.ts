/**
 * The API's rate limit: `perMinute` requests per minute per bearer token, keyed by the token's SHA-256
 * (never the token itself), or per client address for requests without one; probes are exempt. A fixed
 * one-minute window (@fastify/rate-limit, in memory, per process), checked in an onRequest hook added
 * before authentication's, so a refused request costs no token lookup.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import { sha256 } from '../../common/secrets.js';
import type { Metrics } from '../../common/metrics.js';
import { tooManyRequests } from './errors.js';

/**
 * Never rate limited: probes must see the service even while a client is being limited. They answer a
 * status and nothing else; /metrics (large, needs a token) is limited like every other route.
 */
const RATE_LIMIT_EXEMPT = new Set(['/healthz', '/readyz']);

export async function registerRateLimit(app: FastifyInstance, opts: { perMinute: number; metrics: Metrics }): Promise<void> {
  const max = opts.perMinute;
  await app.register(rateLimit, {
    global: false,
    max,
    timeWindow: 60_000,
    cache: 20_000,
    allowList: (request) => RATE_LIMIT_EXEMPT.has(request.routeOptions.url ?? ''),
    keyGenerator: (request) => {
      const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
      return match ? `token:${sha256(match[1]).toString('base64url')}` : `address:${request.ip}`;
    },
    onExceeded: (request, key) => {
      opts.metrics.httpRateLimited.inc();
      request.log.debug({ limitedBy: key.startsWith('token:') ? 'token' : 'address', route: request.routeOptions.url }, 'rate limited');
    },
    // Thrown by the plugin after it set Retry-After; the error handler answers in the contract's shape.
    errorResponseBuilder: (_request, context) => tooManyRequests(max, context.after),
  });
  app.addHook('onRequest', app.rateLimit());
}
