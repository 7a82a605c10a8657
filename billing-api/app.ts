/**
 * The billing API as a Fastify application. `buildApp(deps)` never listens and builds no service: it is
 * given them (`createBillingApi`, ./services.ts) and registers the cross-cutting HTTP parts (http/) and each
 * domain's routes. Tests build exactly the application production runs and drive it over real HTTP or
 * `inject()`.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from '../common/logger.js';
import type { Metrics } from '../common/metrics.js';
import { billListRoutes } from './bill-listing/bill-list.routes.js';
import { billingRoutes } from './billing/billing.routes.js';
import { chargesRoutes } from './charges/charges.routes.js';
import { consumptionRoutes } from './consumption/consumption.routes.js';
import { authPlugin } from './http/auth.js';
import { installErrorHandler } from './http/errors.js';
import { healthRoutes, type ReadinessCheck } from './http/health.routes.js';
import { homeRoutes } from './http/home.routes.js';
import { refuseNulBytes } from './http/nul-bytes.js';
import { registerOpenApi } from './http/openapi.js';
import { registerRateLimit } from './http/rate-limit.js';
import { observeRequestDurations } from './http/request-metrics.js';
import { serviceInfoRoutes } from './http/service-info.routes.js';
import { provisioningRoutes } from './provisioning/provisioning.routes.js';
import { readingsRoutes } from './readings/readings.routes.js';
import { tariffsRoutes } from './tariffs/tariffs.routes.js';
import type { BillingApiServices } from './services.js';

export interface AppDeps {
  services: BillingApiServices;
  log: Logger;
  metrics: Metrics;
  readiness: ReadinessCheck[];
  /** Serve HTTPS with this PEM certificate (chain) and key (TLSv1.2 at least); unset: HTTP. */
  https?: { cert: Buffer | string; key: Buffer | string };
  /** Requests per minute per bearer token (per client address without one); unset: no limit. */
  rateLimitPerMinute?: number;
  /** A bearer token that may read GET /metrics and nothing else (METRICS_TOKEN); admin and reader tokens may too. */
  metricsToken?: string;
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { services, log, metrics, readiness, https, rateLimitPerMinute, metricsToken } = deps;
  const serverOptions = {
    loggerInstance: log as unknown as FastifyBaseLogger,
    requestIdHeader: 'x-request-id',
    bodyLimit: 4 * 1024 * 1024,
  };
  // An HTTPS Fastify instance differs from an HTTP one only in its raw server type.
  const app = (
    (https
      ? Fastify({ ...serverOptions, https: { cert: https.cert, key: https.key, minVersion: 'TLSv1.2' } })
      : Fastify(serverOptions)) as unknown as FastifyInstance
  ).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandler(app);
  if (rateLimitPerMinute) await registerRateLimit(app, { perMinute: rateLimitPerMinute, metrics });
  refuseNulBytes(app);
  observeRequestDurations(app, metrics);
  await registerOpenApi(app);
  await app.register(authPlugin, { tokens: services.tokens, metricsToken });

  await app.register(healthRoutes, { checks: readiness, registry: metrics.registry });
  await app.register(serviceInfoRoutes);
  await app.register(homeRoutes);
  await app.register(provisioningRoutes, { provisioning: services.provisioning });
  await app.register(readingsRoutes, { readings: services.readings });
  await app.register(tariffsRoutes, { tariffs: services.tariffs, voidBill: (billId, reason) => services.billing.voidBill(billId, reason) });
  await app.register(chargesRoutes, { charges: services.charges, meters: services.provisioning });
  await app.register(billingRoutes, { billing: services.billing, running: services.running });
  await app.register(consumptionRoutes, { consumption: services.consumption });
  await app.register(billListRoutes, { bills: services.billList });
  return app;
}
