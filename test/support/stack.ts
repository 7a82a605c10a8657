/**
 * The real stack (broker, gateway, API) in the test process, on free ports, against a fresh database,
 * started by the same app/ functions the processes run. `Stack` is a flat view of what tests reach into.
 */
import { loadConfig, type Config } from '../../common/config.js';
import type { Pool } from '../../common/db.js';
import { createLogger, type Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import type { StorageMode } from '../../common/migrate.js';
import { startAllInOne } from '../../app/all-in-one.js';
import type { RunningProcess } from '../../app/process.js';
import { startBillingApiService, type BillingApiServices, type ScheduledJob } from '../../app/wire-billing-api.js';
import { startGatewayService, type ExternalGateway, type Gateway, type WiredGateway } from '../../app/wire-gateway.js';
import { createDatabase } from './database.js';

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

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
  ports: { mqtt: number | null; ws: number | null; api: number | null; mqtts: number | null; ops: number | null };
  generatedAdminToken: string | null;
  /** the billing API's services (API components only) */
  services: BillingApiServices | null;
  billingJob: ScheduledJob | null;
  /** the start-up summary the process prints */
  summary(): string[];
  stop(): Promise<void>;
}

/**
 * Starts what `npm start` (gateway and API), `npm run gateway` (gateway only) or `npm run billing-api`
 * (API only) starts, in this process.
 */
export async function startStack({ config, log, components }: { config: Config; log: Logger; components: { gateway: boolean; api: boolean } }): Promise<Stack> {
  if (components.gateway && components.api) {
    const p = await startAllInOne(config, log);
    return flatten(p, p.database, p.metrics, p.gateway, { services: p.services, api: p.api });
  }
  if (components.gateway) {
    const p = await startGatewayService(config, log);
    return { ...flatten(p, p.database, p.metrics, p.gateway, null), ports: { ...gatewayPorts(p.gateway), api: null, ops: p.ops?.port ?? null } };
  }
  const p = await startBillingApiService(config, log);
  return flatten(p, p.database, p.metrics, null, { services: p.services, api: p.api });
}

function gatewayPorts(gateway: WiredGateway | null) {
  return gateway?.kind === 'embedded' ? gateway.ports : { mqtt: null, ws: null, mqtts: null };
}

function flatten(
  running: RunningProcess,
  database: { pool: Pool; url: string; mode: 'external' | 'embedded'; storageMode: StorageMode },
  metrics: Metrics,
  gateway: WiredGateway | null,
  api: { services: BillingApiServices; api: { port: number; generatedAdminToken: string | null; billingJob: ScheduledJob | null } } | null,
): Stack {
  return {
    pool: database.pool,
    databaseUrl: database.url,
    databaseMode: database.mode,
    storageMode: database.storageMode,
    metrics,
    gateway: gateway?.kind === 'embedded' ? gateway.gateway : null,
    externalGateway: gateway?.kind === 'external' ? gateway.gateway : null,
    ports: { ...gatewayPorts(gateway), api: api?.api.port ?? null, ops: null },
    generatedAdminToken: api?.api.generatedAdminToken ?? null,
    services: api?.services ?? null,
    billingJob: api?.api.billingJob ?? null,
    summary: () => running.summary(),
    stop: () => running.stop(),
  };
}

/** The start-up summary of a stack: where everything listens, the database mode, a generated admin token. */
export function describeStack(stack: Stack, _config?: Config): string[] {
  return stack.summary();
}

export interface TestStack extends Stack {
  mqttUrl: string;
  apiUrl: string;
  /** fetch against the API with the admin token (or the given one) */
  api(path: string, init?: { method?: string; body?: unknown; token?: string | null }): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

export async function startTestStack(mode: StorageMode, env: Record<string, string> = {}, databaseUrl?: string): Promise<TestStack> {
  const db = databaseUrl ? null : await createDatabase(`stack_${mode}`);
  const config = loadConfig({
    DATABASE_URL: databaseUrl ?? db!.url,
    READINGS_STORAGE: mode,
    MQTT_PORT: '0',
    MQTT_WS_PORT: '0',
    API_PORT: '0',
    MQTT_HOST: '127.0.0.1',
    API_HOST: '127.0.0.1',
    BILLING_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    // No scheduled billing run unless a test asks for one: a run at 00:15 UTC must not touch other suites.
    BILLING_CRON: 'off',
    ...env,
  });
  const stack = await startStack({ config, log: createLogger(config.LOG_LEVEL, 'test'), components: { gateway: true, api: true } });
  const apiUrl = `http://127.0.0.1:${stack.ports.api}`;
  return {
    ...stack,
    mqttUrl: `mqtt://127.0.0.1:${stack.ports.mqtt}`,
    apiUrl,
    async api(path, init = {}) {
      const token = init.token === undefined ? TEST_ADMIN_TOKEN : init.token;
      const res = await fetch(apiUrl + path, {
        method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        /* not JSON (metrics, CSV) */
      }
      return { status: res.status, body };
    },
    async close() {
      await stack.stop();
      await db?.drop();
    },
  };
}

/** Provisions an account and meters (and optionally a concentrator) through the API; returns secrets. */
export async function provisionFleet(
  stack: TestStack,
  opts: { accountId?: string; meters: number; prefix?: string; intervalSeconds?: number; timezone?: string; maxPowerKw?: number; concentratorId?: string },
): Promise<{ meterIds: string[]; secrets: Record<string, string> }> {
  const accountId = opts.accountId ?? 'ACC-1';
  const prefix = opts.prefix ?? 'MTR-';
  const secrets: Record<string, string> = {};
  const acc = await stack.api('/v1/accounts', { body: { id: accountId, name: 'Test account', timezone: opts.timezone ?? 'Europe/London', billingDay: 1 } });
  if (acc.status !== 201 && acc.status !== 409) throw new Error(`account: ${acc.status} ${JSON.stringify(acc.body)}`);
  const meterIds: string[] = [];
  for (let i = 1; i <= opts.meters; i++) {
    const id = `${prefix}${String(i).padStart(6, '0')}`;
    const res = await stack.api('/v1/meters', {
      body: { id, accountId, timezone: opts.timezone ?? 'Europe/London', intervalSeconds: opts.intervalSeconds ?? 900, ...(opts.maxPowerKw ? { maxPowerKw: opts.maxPowerKw } : {}) },
    });
    if (res.status !== 201) throw new Error(`meter ${id}: ${res.status} ${JSON.stringify(res.body)}`);
    secrets[id] = res.body.mqttPassword;
    meterIds.push(id);
  }
  if (opts.concentratorId) {
    const res = await stack.api('/v1/concentrators', { body: { id: opts.concentratorId, meterIds } });
    if (res.status !== 201) throw new Error(`concentrator: ${res.status} ${JSON.stringify(res.body)}`);
    secrets[opts.concentratorId] = res.body.mqttPassword;
  }
  return { meterIds, secrets };
}
