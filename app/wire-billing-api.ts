/**
 * The billing API of this process: its services (billing-api's `createBillingApi`), the Fastify
 * application on API_PORT, the bootstrap admin token and the scheduled billing run (BILLING_CRON).
 * `startBillingApiService` is the API as its own process (`npm run billing-api`).
 */
import type { FastifyInstance } from 'fastify';
import { buildApp, createBillingApi, ensureAdminToken, nodeCronScheduler, startBillingJob, type BillingApiServices, type ScheduledJob } from '../billing-api/index.js';
import type { Config } from '../common/config.js';
import type { Logger } from '../common/logger.js';
import { createMetrics, type Metrics } from '../common/metrics.js';
import { PortInUseError } from '../common/errors.js';
import { readTlsFiles, type TlsMaterial } from '../common/tls.js';
import { describeDatabase, openDatabase, type Database } from './database.js';
import { stopInReverse, type RunningProcess } from './process.js';
import { readinessChecks, type ReadinessCheck } from './readiness.js';

export type { BillingApiServices, ScheduledJob };

/**
 * The billing API's services. `live`: this process's gateway feeds the running-charges store with every
 * commit (RUNNING_CHARGES_SOURCE=auto with a gateway here; see billing-api/README.md).
 */
export function createBillingServices(config: Config, database: Database, log: Logger, metrics: Metrics, opts: { live: boolean }): BillingApiServices {
  return createBillingApi(database.pool, log, {
    scryptN: config.DEVICE_SECRET_SCRYPT_N,
    graceDays: config.BILLING_GRACE_DAYS,
    live: opts.live,
    cacheMeters: config.RUNNING_CHARGES_CACHE_METERS,
    billsClosed: metrics.billsClosed,
  });
}

export interface BillingApiDeps {
  database: Database;
  log: Logger;
  metrics: Metrics;
  services: BillingApiServices;
  tls: TlsMaterial | null;
  readiness: ReadinessCheck[];
}

export interface WiredBillingApi {
  server: FastifyInstance;
  port: number;
  /** the token generated on the first start, shown once; null when BILLING_ADMIN_TOKEN is set or on later starts */
  generatedAdminToken: string | null;
  /** the scheduled billing run; null with BILLING_CRON=off */
  billingJob: ScheduledJob | null;
  /** closes the application and waits for the billing runs in flight (the schedule is stopped by `stopBillingJob`) */
  close(): Promise<void>;
  stopBillingJob(): Promise<void>;
}

export async function startBillingApi(config: Config, { database, log, metrics, services, tls, readiness }: BillingApiDeps): Promise<WiredBillingApi> {
  const server = await buildApp({
    services,
    log: log.child({ component: 'billing-api' }),
    metrics,
    https: tls ?? undefined,
    rateLimitPerMinute: config.API_RATE_LIMIT_PER_MINUTE,
    metricsToken: config.METRICS_TOKEN,
    readiness,
  });
  try {
    const admin = await ensureAdminToken(database.pool, config.BILLING_ADMIN_TOKEN);
    if (admin.revoked) log.warn('BILLING_ADMIN_TOKEN names a revoked token, which stays refused; set a new value for a working bootstrap admin token');
    try {
      await server.listen({ host: config.API_HOST, port: config.API_PORT });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new PortInUseError('API', config.API_HOST, config.API_PORT, 'API_PORT');
      throw err;
    }
    const billingJob =
      config.BILLING_CRON === 'off'
        ? null
        : startBillingJob({
            scheduler: nodeCronScheduler,
            clock: Date.now,
            expression: config.BILLING_CRON,
            timezone: config.BILLING_CRON_TZ,
            closeCycles: (asOf, trigger) => services.billing.closeCycles(asOf, trigger),
            log: log.child({ component: 'billing-job' }),
          });
    return {
      server,
      port: (server.server.address() as { port: number }).port,
      generatedAdminToken: admin.generated,
      billingJob,
      // No new request once the server is closed; billing runs already started (by the API or the schedule)
      // then finish, so none is left 'running' with its batches cut off by the closing database.
      close: async () => {
        await server.close();
        await services.billing.settle();
      },
      stopBillingJob: async () => billingJob?.stop(),
    };
  } catch (err) {
    await server.close();
    throw err;
  }
}

/** The summary lines of the API: its base URL and documentation, and the admin token when generated. */
export function describeBillingApi(api: WiredBillingApi, config: Config): { endpoints: string[]; adminToken: string[] } {
  const host = config.API_HOST === '0.0.0.0' ? 'localhost' : config.API_HOST;
  const scheme = config.TLS_CERT_FILE && config.TLS_KEY_FILE ? 'https' : 'http';
  return {
    endpoints: [`Billing API        ${scheme}://${host}:${api.port}/v1`, `API docs           ${scheme}://${host}:${api.port}/docs`],
    adminToken: api.generatedAdminToken
      ? [
          `Admin token        ${api.generatedAdminToken}`,
          '                   (generated on first start and shown only this once; stored hashed. Set BILLING_ADMIN_TOKEN to choose your own.)',
        ]
      : [],
  };
}

export interface BillingApiService extends RunningProcess {
  database: Database;
  metrics: Metrics;
  services: BillingApiServices;
  api: WiredBillingApi;
}

/** `npm run billing-api`: the API as its own service; running charges re-read the database. */
export async function startBillingApiService(config: Config, log: Logger): Promise<BillingApiService> {
  const tls = readTlsFiles(config);
  const database = await openDatabase(config, log);
  const metrics = createMetrics();
  const stops: (() => Promise<void>)[] = [database.close];
  const stop = () => stopInReverse(stops, log);
  try {
    const services = createBillingServices(config, database, log, metrics, { live: false });
    const api = await startBillingApi(config, { database, log, metrics, services, tls, readiness: readinessChecks(database.pool, null, { migrations: true }) });
    stops.push(api.close, api.stopBillingJob);
    return {
      database,
      metrics,
      services,
      api,
      summary: () => {
        const lines = describeBillingApi(api, config);
        return [...lines.endpoints, describeDatabase(database, config), ...lines.adminToken];
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
