/** Liveness, readiness and Prometheus metrics (no token needed: they expose no customer data). */
import type { FastifyPluginAsync } from 'fastify';
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

  app.get('/metrics', { config: { public: true }, schema: { tags: ['operations'] } }, async (_req, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
};
