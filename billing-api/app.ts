/**
 * The billing API as a Fastify application. `buildApp()` never listens (server.ts / main.ts do), so tests
 * build exactly the application production runs and drive it over real HTTP or `inject()`.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { Histogram } from 'prom-client';
import type { Pool } from '../common/db.js';
import type { Logger } from '../common/logger.js';
import type { Metrics } from '../common/metrics.js';
import { sha256 } from '../common/secrets.js';
import { authPlugin } from './auth.js';
import { badRequest, installErrorHandler, nulByteDetails, tooManyRequests } from './errors.js';
import { ProvisioningService } from './provisioning.service.js';
import { ReadingsRepository } from './readings.repository.js';
import { healthRoutes, type ReadinessCheck } from './routes/health.routes.js';
import { serviceInfoRoutes } from './routes/service-info.routes.js';
import { provisioningRoutes } from './routes/provisioning.routes.js';
import { readingsRoutes } from './routes/readings.routes.js';
import { tariffsRoutes } from './routes/tariffs.routes.js';
import { TariffsRepository } from './tariffs.repository.js';
import { ChargesService } from './charges.service.js';
import { createBilling, type BillingComponents } from './billing/index.js';
import { billingRoutes } from './routes/billing.routes.js';
import { consumptionRoutes } from './routes/consumption.routes.js';

export interface AppOptions {
  pool: Pool;
  log: Logger;
  metrics: Metrics;
  readiness: ReadinessCheck[];
  scryptN: number;
  /** billing services (common/stack.ts wires them to the gateway and the scheduled job); default: unfed, grace 3 days */
  billing?: BillingComponents;
  /** Serve HTTPS with this PEM certificate (chain) and key (TLSv1.2 at least); unset: HTTP. */
  https?: { cert: Buffer | string; key: Buffer | string };
  /** Requests per minute per bearer token (per client address without one); unset: no limit. */
  rateLimitPerMinute?: number;
  /** A bearer token that may read GET /metrics and nothing else (METRICS_TOKEN); admin and reader tokens may too. */
  metricsToken?: string;
}

/**
 * Never rate limited: probes must see the service even while a client is being limited. They answer a
 * status and nothing else; /metrics (large, needs a token) is limited like every other route.
 */
const RATE_LIMIT_EXEMPT = new Set(['/healthz', '/readyz']);

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const serverOptions = {
    loggerInstance: opts.log as unknown as FastifyBaseLogger,
    requestIdHeader: 'x-request-id',
    bodyLimit: 4 * 1024 * 1024,
  };
  // An HTTPS Fastify instance differs from an HTTP one only in its raw server type.
  const app = (
    (opts.https
      ? Fastify({ ...serverOptions, https: { cert: opts.https.cert, key: opts.https.key, minVersion: 'TLSv1.2' } })
      : Fastify(serverOptions)) as unknown as FastifyInstance
  ).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandler(app);

  if (opts.rateLimitPerMinute) {
    // Keyed by the SHA-256 of the bearer token (never the token itself), or by the client address when
    // there is none. The hook is added before the auth plugin's, so a refused request costs no lookup.
    const max = opts.rateLimitPerMinute;
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

  // PostgreSQL text cannot hold a NUL byte: refused here for every route, with the place named, before any
  // schema or query sees it (after authentication, so 401 and 403 come first).
  app.addHook('preValidation', async (request) => {
    const details = nulByteDetails({ params: request.params, querystring: request.query, body: request.body });
    if (details.length) throw badRequest(`invalid request: ${details.length} problem(s)`, details);
  });

  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [opts.metrics.registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    httpDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Smart-meter billing gateway API',
        version: '0.1.0',
        description: 'Provisioning, interval data, quarantine, tariffs, charges and bills. Contract: shared/CONTRACT.md. Times are UTC with Z on output; windows are half-open [from, to) on intervalStart; energy and money are exact decimal strings; every four-digit year is read exactly (0099 is the year 99). Service window: a reading whose intervalStart is earlier than its meter\'s creation minus READING_BACKFILL_DAYS (default 1096) is quarantined as before_service_window; a meter is billed from its service start (its creation, or its first reading inside that window when earlier), never from a reading outside it. A NUL byte in any id, query string or JSON string is a 400 naming the field. GET /metrics needs a bearer token (METRICS_TOKEN, admin or reader).',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  // Registered before the UI plugin, whose routes are added as soon as it is registered.
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/docs')) route.config = { ...(route.config as object), public: true } as never;
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' } });
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());

  await app.register(authPlugin, { pool: opts.pool, metricsToken: opts.metricsToken });
  const provisioning = new ProvisioningService(opts.pool, opts.scryptN);
  const readings = new ReadingsRepository(opts.pool);
  await app.register(healthRoutes, { checks: opts.readiness, registry: opts.metrics.registry });
  await app.register(serviceInfoRoutes);
  await app.register(provisioningRoutes, { provisioning });
  await app.register(readingsRoutes, { readings, provisioning });
  const tariffs = new TariffsRepository(opts.pool);
  await app.register(tariffsRoutes, { tariffs, charges: new ChargesService(opts.pool, tariffs), provisioning });
  const billing = opts.billing ?? createBilling(opts.pool, opts.log, { graceDays: 3, live: false, cacheMeters: 0 });
  await app.register(billingRoutes, { billing: billing.service, running: billing.running });
  await app.register(consumptionRoutes, { consumption: billing.consumption, provisioning });
  return app;
}
