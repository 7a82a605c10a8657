/**
 * Assembles the processes of the product from their parts: database (external or embedded), migrations,
 * the gateway (embedded Aedes broker + ingestion) and the billing API. `npm start` runs both components
 * in one process; `npm run gateway` and `npm run billing-api` run one each against the same database.
 * Tests start the same stack on free ports.
 */
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../billing-api/app.js';
import { ensureAdminToken } from '../billing-api/admin-token.js';
import { createBilling, nodeCronScheduler, startBillingJob, type BillingComponents, type ScheduledJob } from '../billing-api/billing/index.js';
import { createGateway, PortInUseError, type Gateway } from '../gateway/gateway.js';
import { timescaleRequired, type Config } from './config.js';
import { createPool, retry, startEmbeddedPostgres, type EmbeddedDatabase, type Pool } from './db.js';
import type { Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { migrate, migrationsApplied, type StorageMode } from './migrate.js';

export interface StackOptions {
  config: Config;
  log: Logger;
  components: { gateway: boolean; api: boolean };
}

export interface Stack {
  pool: Pool;
  databaseUrl: string;
  databaseMode: 'external' | 'embedded';
  storageMode: StorageMode;
  metrics: Metrics;
  gateway: Gateway | null;
  apiServer: FastifyInstance | null;
  ports: { mqtt: number | null; ws: number | null; api: number | null };
  generatedAdminToken: string | null;
  /** billing services (API component only) */
  billing: BillingComponents | null;
  /** the scheduled billing run (API component only; null with BILLING_CRON=off) */
  billingJob: ScheduledJob | null;
  stop(): Promise<void>;
}

export { PortInUseError };

export async function startStack({ config, log, components }: StackOptions): Promise<Stack> {
  let embedded: EmbeddedDatabase | null = null;
  const cleanup: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn().catch((err) => log.warn({ err }, 'shutdown step failed'));
  };
  try {
    if (!config.DATABASE_URL) {
      embedded = await startEmbeddedPostgres(config.DATA_DIR, log);
      cleanup.push(() => embedded!.stop());
    }
    const databaseUrl = config.DATABASE_URL ?? embedded!.url;
    const storage = timescaleRequired(config) ? 'timescaledb' : config.READINGS_STORAGE;
    const { storageMode } = await retry(
      () => migrate({ databaseUrl, storage, log }),
      10,
      (err, attempt) => log.warn({ err: (err as Error).message, attempt }, 'database not ready; retrying'),
    );
    const pool = createPool(databaseUrl, config.PG_POOL_MAX);
    cleanup.push(() => pool.end());
    const metrics = createMetrics();
    // Running charges are fed by this process's gateway when both run here (see billing-api/README.md).
    const billing = components.api
      ? createBilling(pool, log, {
          graceDays: config.BILLING_GRACE_DAYS,
          live: components.gateway && config.RUNNING_CHARGES_SOURCE === 'auto',
          cacheMeters: config.RUNNING_CHARGES_CACHE_METERS,
        })
      : null;

    let gateway: Gateway | null = null;
    const ports: Stack['ports'] = { mqtt: null, ws: null, api: null };
    if (components.gateway) {
      gateway = await createGateway({
        pool,
        databaseUrl,
        log: log.child({ component: 'gateway' }),
        metrics,
        maxPayloadBytes: config.MAX_PAYLOAD_BYTES,
        futureToleranceSeconds: config.FUTURE_TOLERANCE_SECONDS,
        maxBatchRows: config.INGEST_MAX_BATCH_ROWS,
        maxInflightBatches: config.INGEST_MAX_INFLIGHT_BATCHES,
        highWaterReadings: config.INGEST_HIGH_WATER_READINGS,
        maxConnections: config.MQTT_MAX_CONNECTIONS,
        onCommitted: billing?.store.opts.live ? (readings) => billing.store.onCommitted(readings) : undefined,
      });
      const gw = gateway;
      cleanup.push(() => gw.close());
      const bound = await gateway.listen({ host: config.MQTT_HOST, mqttPort: config.MQTT_PORT, wsPort: config.MQTT_WS_PORT });
      ports.mqtt = bound.mqttPort;
      ports.ws = bound.wsPort;
    }

    let api: FastifyInstance | null = null;
    let generatedAdminToken: string | null = null;
    let billingJob: ScheduledJob | null = null;
    if (components.api) {
      api = await buildApp({
        pool,
        log: log.child({ component: 'billing-api' }),
        metrics,
        scryptN: config.DEVICE_SECRET_SCRYPT_N,
        billing: billing ?? undefined,
        readiness: [
          { name: 'database', check: async () => (await pool.query('SELECT 1')).rowCount === 1 },
          { name: 'migrations', check: () => migrationsApplied(pool) },
          ...(gateway ? [{ name: 'broker', check: async () => gateway!.listening }] : []),
        ],
      });
      const app = api;
      cleanup.splice(cleanup.length - (gateway ? 1 : 0), 0, () => app.close());
      ({ generated: generatedAdminToken } = await ensureAdminToken(pool, config.BILLING_ADMIN_TOKEN));
      try {
        await api.listen({ host: config.API_HOST, port: config.API_PORT });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new PortInUseError('API', config.API_HOST, config.API_PORT, 'API_PORT');
        throw err;
      }
      ports.api = (api.server.address() as { port: number }).port;
      if (config.BILLING_CRON !== 'off') {
        const job = startBillingJob({
          scheduler: nodeCronScheduler,
          clock: Date.now,
          expression: config.BILLING_CRON,
          timezone: config.BILLING_CRON_TZ,
          closeCycles: (asOf, trigger) => billing!.service.closeCycles(asOf, trigger),
          log: log.child({ component: 'billing-job' }),
        });
        billingJob = job;
        cleanup.push(async () => job.stop());
      }
    }

    return {
      pool,
      databaseUrl,
      databaseMode: embedded ? 'embedded' : 'external',
      storageMode,
      metrics,
      gateway,
      apiServer: api,
      ports,
      generatedAdminToken,
      billing,
      billingJob,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** The start-up summary: where everything listens, the database mode, the admin token when generated. */
export function describeStack(stack: Stack, config: Config): string[] {
  const host = config.MQTT_HOST === '0.0.0.0' ? 'localhost' : config.MQTT_HOST;
  const apiHost = config.API_HOST === '0.0.0.0' ? 'localhost' : config.API_HOST;
  const lines: string[] = [];
  if (stack.ports.mqtt !== null) lines.push(`MQTT broker        mqtt://${host}:${stack.ports.mqtt}`);
  if (stack.ports.ws !== null) lines.push(`MQTT over WS       ws://${host}:${stack.ports.ws}`);
  if (stack.ports.api !== null) {
    lines.push(`Billing API        http://${apiHost}:${stack.ports.api}/v1`);
    lines.push(`API docs           http://${apiHost}:${stack.ports.api}/docs`);
  }
  const db = stack.databaseMode === 'embedded' ? `embedded PostgreSQL under ${config.DATA_DIR}/pg` : 'DATABASE_URL';
  lines.push(`Database           ${db}; readings in a ${stack.storageMode === 'timescaledb' ? 'TimescaleDB hypertable' : 'plain table (TimescaleDB not available)'}`);
  if (stack.generatedAdminToken) {
    lines.push(`Admin token        ${stack.generatedAdminToken}`);
    lines.push('                   (generated on first start and shown only this once; stored hashed. Set BILLING_ADMIN_TOKEN to choose your own.)');
  }
  return lines;
}
