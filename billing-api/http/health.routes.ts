/**
 * Liveness and readiness (public: a status, nothing else, never rate limited) and Prometheus metrics (a
 * bearer token: METRICS_TOKEN, or an admin or reader token; rate limited like every route).
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { METRICS_READERS } from './auth.js';
import { errorResponses } from './responses.js';
import type { Registry } from 'prom-client';

export interface ReadinessCheck {
  name: string;
  check: () => Promise<boolean>;
}

export const healthRoutes: FastifyPluginAsync<{ checks: ReadinessCheck[]; registry: Registry }> = async (app, { checks, registry }) => {
  app.get(
    '/healthz',
    { config: { public: true }, schema: { tags: ['operations'], summary: 'Liveness: the process answers', response: { 200: z.object({ status: z.literal('ok') }), ...errorResponses({ public: true }) } } },
    async () => ({ status: 'ok' as const }),
  );

  const readiness = z.object({ status: z.enum(['ready', 'not_ready']), checks: z.record(z.string(), z.boolean()).describe('each check (database, broker ...) and whether it passed') });
  app.get('/readyz', { config: { public: true }, schema: { tags: ['operations'], summary: 'Readiness: every dependency answers', response: { 200: readiness.meta({ examples: [{ status: 'ready', checks: { database: true } }] }), 503: readiness.describe('Not ready: the failing checks are false').meta({ examples: [{ status: 'not_ready', checks: { database: true, broker: false } }] }), ...errorResponses({ public: true }) } } }, async (_req, reply) => {
    const results: Record<string, boolean> = {};
    await Promise.all(
      checks.map(async (c) => {
        results[c.name] = await c.check().catch(() => false);
      }),
    );
    const ready = Object.values(results).every(Boolean);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks: results });
  });

  app.get('/metrics', { config: METRICS_READERS, schema: { tags: ['operations'], summary: 'Prometheus metrics (text format)', produces: ['text/plain'], response: { 200: z.string().describe('Prometheus text exposition format'), ...errorResponses(403) }, description: 'Prometheus text format. Bearer METRICS_TOKEN, or an admin or reader token. A gateway run as its own service serves it without a token on GATEWAY_HTTP_PORT, a port for the operations network only.' } }, async (_req, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
};
