/**
 * Assembles the processes of the product from their parts: database (external or embedded), migrations,
 * the gateway (embedded Aedes broker + ingestion, or with MQTT_MODE=external a subscriber of an existing
 * broker cluster: gateway/external.ts) and the billing API. `npm start` runs both components
 * in one process; `npm run gateway` and `npm run billing-api` run one each against the same database.
 * Tests start the same stack on free ports.
 */
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../billing-api/app.js';
import { ensureAdminToken } from '../billing-api/admin-token.js';
import { createBilling, nodeCronScheduler, startBillingJob, type BillingComponents, type ScheduledJob } from '../billing-api/billing/index.js';
import { createGateway, PortInUseError, readTlsFiles, type Gateway } from '../gateway/gateway.js';
import { createExternalGateway, type ExternalGateway } from '../gateway/external.js';
import { timescaleRequired, type Config } from './config.js';
import { createPool, retry, startEmbeddedPostgres, type EmbeddedDatabase, type Pool } from './db.js';
import type { Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { migrate, migrationsApplied, type StorageMode } from './migrate.js';
import { startOpsServer } from './ops-server.js';

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
  /** the embedded gateway (MQTT_MODE=embedded) */
  gateway: Gateway | null;
  /** the subscriber of an external broker (MQTT_MODE=external) */
  externalGateway: ExternalGateway | null;
  apiServer: FastifyInstance | null;
  /** mqtts: MQTT over TLS (with TLS_CERT_FILE/TLS_KEY_FILE; ws is then wss and the API https) */
  ports: { mqtt: number | null; ws: number | null; api: number | null; mqtts: number | null; ops: number | null };
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
    // Read before anything slow starts: an unreadable TLS file is one start-up line (TlsFileError).
    const tlsFiles = readTlsFiles(config);
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
    // The service window of readings is enforced by ingest_readings() in the database (migrations/010).
    await pool.query('UPDATE ingest_policy SET reading_backfill_days = $1 WHERE reading_backfill_days IS DISTINCT FROM $1', [config.READING_BACKFILL_DAYS]);
    const metrics = createMetrics();
    // Running charges are fed by this process's gateway when both run here (see billing-api/README.md).
    const billing = components.api
      ? createBilling(pool, log, {
          graceDays: config.BILLING_GRACE_DAYS,
          live: components.gateway && config.RUNNING_CHARGES_SOURCE === 'auto',
          cacheMeters: config.RUNNING_CHARGES_CACHE_METERS,
          billsClosed: metrics.billsClosed,
        })
      : null;

    let gateway: Gateway | null = null;
    let externalGateway: ExternalGateway | null = null;
    const ports: Stack["ports"] = { mqtt: null, ws: null, api: null, mqtts: null, ops: null };
    const onCommitted = billing?.store.opts.live ? (readings: Parameters<typeof billing.store.onCommitted>[0]) => billing.store.onCommitted(readings) : undefined;
    // The same ingestion steps (decode limits, group commit) whichever way the readings arrive.
    const ingestion = {
      maxPayloadBytes: config.MAX_PAYLOAD_BYTES,
      futureToleranceSeconds: config.FUTURE_TOLERANCE_SECONDS,
      maxBatchRows: config.INGEST_MAX_BATCH_ROWS,
      maxInflightBatches: config.INGEST_MAX_INFLIGHT_BATCHES,
    };
    if (components.gateway && config.MQTT_MODE === 'external') {
      const gwLog = log.child({ component: 'gateway' });
      if (components.api && billing?.store.opts.live) {
        gwLog.warn(
          { shareGroup: config.MQTT_SHARE_GROUP },
          'running charges come from memory fed by this instance alone; with other gateway instances in the share group set RUNNING_CHARGES_SOURCE=database',
        );
      }
      externalGateway = createExternalGateway({
        pool,
        log: gwLog,
        metrics,
        url: config.MQTT_URL!,
        username: config.MQTT_USERNAME,
        password: config.MQTT_PASSWORD,
        clientId: externalClientId(config),
        // n connections: client ids <clientId>, <clientId>-2 ... <clientId>-n, one persistent session each
        connections: config.MQTT_SUBSCRIBER_CONNECTIONS,
        shareGroup: config.MQTT_SHARE_GROUP,
        caFile: config.MQTT_CA_FILE,
        ...ingestion,
        onCommitted,
      });
      const gw = externalGateway;
      cleanup.push(() => gw.close());
      await gw.start();
    } else if (components.gateway) {
      gateway = await createGateway({
        pool,
        databaseUrl,
        log: log.child({ component: 'gateway' }),
        metrics,
        ...ingestion,
        highWaterReadings: config.INGEST_HIGH_WATER_READINGS,
        maxConnections: config.MQTT_MAX_CONNECTIONS,
        connectRatePerMinute: config.MQTT_CONNECT_RATE_PER_MINUTE,
        publishRatePerSecond: config.MQTT_PUBLISH_RATE_PER_SECOND,
        publishBurst: config.MQTT_PUBLISH_BURST,
        onCommitted,
      });
      const gw = gateway;
      cleanup.push(() => gw.close());
      const bound = await gateway.listen({ host: config.MQTT_HOST, mqttPort: config.MQTT_PORT, wsPort: config.MQTT_WS_PORT, tls: tlsFiles, tlsPort: config.MQTT_TLS_PORT });
      ports.mqtt = bound.mqttPort;
      ports.ws = bound.wsPort;
      ports.mqtts = bound.tlsPort;
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
        https: tlsFiles ?? undefined,
        rateLimitPerMinute: config.API_RATE_LIMIT_PER_MINUTE,
        metricsToken: config.METRICS_TOKEN,
        billing: billing ?? undefined,
        readiness: [...readinessChecks(pool, gateway, externalGateway), { name: 'migrations', check: () => migrationsApplied(pool) }],
      });
      const app = api;
      cleanup.splice(cleanup.length - (gateway || externalGateway ? 1 : 0), 0, () => app.close());
      const admin = await ensureAdminToken(pool, config.BILLING_ADMIN_TOKEN);
      generatedAdminToken = admin.generated;
      if (admin.revoked) log.warn('BILLING_ADMIN_TOKEN names a revoked token, which stays refused; set a new value for a working bootstrap admin token');
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

    if (!components.api && config.GATEWAY_HTTP_PORT !== undefined) {
      // The gateway as its own service: health and metrics for probes and Prometheus (common/ops-server.ts).
      const ops = await startOpsServer({
        host: config.MQTT_HOST,
        port: config.GATEWAY_HTTP_PORT,
        registry: metrics.registry,
        checks: readinessChecks(pool, gateway, externalGateway),
      }).catch((err: NodeJS.ErrnoException) => {
        throw err.code === 'EADDRINUSE' ? new PortInUseError('gateway HTTP', config.MQTT_HOST, config.GATEWAY_HTTP_PORT!, 'GATEWAY_HTTP_PORT') : err;
      });
      ports.ops = ops.port;
      cleanup.push(() => ops.close());
    }

    return {
      pool,
      databaseUrl,
      databaseMode: embedded ? 'embedded' : 'external',
      storageMode,
      metrics,
      gateway,
      externalGateway,
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

/**
 * What /readyz checks, on the API and on the gateway's own GATEWAY_HTTP_PORT alike: the database answers,
 * and the gateway (when this process runs one) listens (embedded) or is subscribed (external). Every check
 * is one boolean; a new condition of the gateway becomes one more entry here.
 */
export function readinessChecks(pool: Pool, gateway: Gateway | null, externalGateway: ExternalGateway | null): { name: string; check: () => Promise<boolean> }[] {
  const checks = [{ name: 'database', check: async () => (await pool.query('SELECT 1')).rowCount === 1 }];
  if (gateway) checks.push({ name: 'broker', check: async () => gateway.listening });
  // external: connected to the broker with the shared subscriptions granted
  if (externalGateway) checks.push({ name: 'broker', check: async () => externalGateway.listening });
  return checks;
}

/** The external gateway's MQTT client id: MQTT_CLIENT_ID, else gateway-<hostname>. */
export function externalClientId(config: Pick<Config, 'MQTT_CLIENT_ID'>): string {
  return config.MQTT_CLIENT_ID ?? `gateway-${hostname()}`;
}

/** The start-up summary: where everything listens, the database mode, the admin token when generated. */
export function describeStack(stack: Stack, config: Config): string[] {
  const host = config.MQTT_HOST === '0.0.0.0' ? 'localhost' : config.MQTT_HOST;
  const apiHost = config.API_HOST === '0.0.0.0' ? 'localhost' : config.API_HOST;
  const lines: string[] = [];
  if (stack.ports.mqtt !== null) lines.push(`MQTT broker        mqtt://${host}:${stack.ports.mqtt}`);
  const secure = Boolean(config.TLS_CERT_FILE && config.TLS_KEY_FILE);
  if (stack.ports.mqtts != null) lines.push(`MQTT over TLS      mqtts://${host}:${stack.ports.mqtts}`);
  if (stack.ports.ws !== null) lines.push(`MQTT over WS       ${secure ? 'wss' : 'ws'}://${host}:${stack.ports.ws}`);
  if (stack.externalGateway) {
    const gw = stack.externalGateway;
    const ids = gw.clientIds.length > 1 ? `${gw.clientIds.join(', ')} (${gw.clientIds.length} connections)` : gw.clientId;
    lines.push(`MQTT (external)    subscribed to ${gw.url} as ${ids}, group ${gw.shareGroup}`);
  }
  if (stack.ports.api !== null) {
    lines.push(`Billing API        ${secure ? 'https' : 'http'}://${apiHost}:${stack.ports.api}/v1`);
    lines.push(`API docs           ${secure ? 'https' : 'http'}://${apiHost}:${stack.ports.api}/docs`);
  }
  if (stack.ports.ops !== null) lines.push(`Health, metrics    http://${host}:${stack.ports.ops}/readyz, /metrics`);
  const db = stack.databaseMode === 'embedded' ? `embedded PostgreSQL under ${config.DATA_DIR}/pg` : 'DATABASE_URL';
  lines.push(`Database           ${db}; readings in a ${stack.storageMode === 'timescaledb' ? 'TimescaleDB hypertable' : 'plain table (TimescaleDB not available)'}`);
  if (stack.generatedAdminToken) {
    lines.push(`Admin token        ${stack.generatedAdminToken}`);
    lines.push('                   (generated on first start and shown only this once; stored hashed. Set BILLING_ADMIN_TOKEN to choose your own.)');
  }
  return lines;
}
