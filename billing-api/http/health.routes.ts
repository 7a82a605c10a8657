/**
 * Liveness and readiness (public: a status, nothing else, never rate limited) and Prometheus metrics (a
 * bearer token: METRICS_TOKEN, or an admin or reader token; rate limited like every route).
 */
import type { FastifyPluginAsync } from 'fastify';
import { METRICS_READERS } from './auth.js';
import type { Registry } from 'prom-client';

export interface ReadinessCheck {
  name: string;
  check: () => Promise<boolean>;
}

export const healthRoutes: FastifyPluginAsync<{ checks: ReadinessCheck[]; registry: Registry }> = async (app, { checks, registry }) => {
  app.get('/healthz', { config: { public: true }, schema: { tags: ['operations'], hide: false } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { config: { public: true }, schema: { tags: ['operations'] } }, async (_req, reply) => {
    const results: Record<string, boolean> = {};
    await Promise.all(
      checks.map(async (c) => {
        results[c.name] = await c.check().catch(() => false);
      }),
    );
    const ready = Object.values(results).every(Boolean);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks: results });
  });

  app.get('/metrics', { config: METRICS_READERS, schema: { tags: ['operations'], description: 'Prometheus text format. Bearer METRICS_TOKEN, or an admin or reader token. A gateway run as its own service serves it without a token on GATEWAY_HTTP_PORT, a port for the operations network only.' } }, async (_req, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
};
