/**
 * The gateway of this process, one of two kinds chosen by MQTT_MODE:
 * - embedded: the Aedes broker of gateway/embedded/, listening on MQTT_PORT (and WS, TLS);
 * - external: gateway/external/, a subscriber of an existing broker cluster (shared subscriptions).
 * Both take the same ingestion options. `startGatewayService` is the gateway as its own process
 * (`npm run gateway`): database, gateway and, with GATEWAY_HTTP_PORT, the operations port.
 */
import { hostname } from 'node:os';
import type { Config } from '../common/config.js';
import type { Logger } from '../common/logger.js';
import { createMetrics, type Metrics } from '../common/metrics.js';
import { createExternalGateway, type ExternalGateway } from '../gateway/external/external-gateway.js';
import { PortInUseError } from '../common/errors.js';
import { readTlsFiles, type TlsMaterial } from '../common/tls.js';
import { createGateway, type Gateway, type GatewayOptions } from '../gateway/embedded/embedded-gateway.js';
import { describeDatabase, openDatabase, type Database } from './database.js';
import { startOpsServer, type OpsServer } from './ops-server.js';
import { stopInReverse, type RunningProcess } from './process.js';
import { readinessChecks } from './readiness.js';

export type OnCommitted = GatewayOptions['onCommitted'];
export type { ExternalGateway, Gateway };

interface GatewayHandle {
  /** listening (embedded) or subscribed (external), and close() not begun */
  readonly listening: boolean;
  commitHealth(): { healthy: boolean };
  close(): Promise<void>;
}

export type WiredGateway = GatewayHandle &
  (
    | { kind: 'embedded'; gateway: Gateway; ports: { mqtt: number; ws: number | null; mqtts: number | null } }
    | { kind: 'external'; gateway: ExternalGateway }
  );

export interface GatewayDeps {
  database: Database;
  log: Logger;
  metrics: Metrics;
  /** read once at start-up by the caller (an unreadable file is one start-up line) */
  tls: TlsMaterial | null;
  /** called with the readings of every commit (running charges fed by this process's gateway) */
  onCommitted?: OnCommitted;
}

/** The same ingestion steps (decode limits, group commit) whichever way the readings arrive. */
function ingestionOptions(config: Config) {
  return {
    maxPayloadBytes: config.MAX_PAYLOAD_BYTES,
    futureToleranceSeconds: config.FUTURE_TOLERANCE_SECONDS,
    maxBatchRows: config.INGEST_MAX_BATCH_ROWS,
    maxInflightBatches: config.INGEST_MAX_INFLIGHT_BATCHES,
  };
}

export async function startGateway(config: Config, deps: GatewayDeps): Promise<WiredGateway> {
  return config.MQTT_MODE === 'external' ? startExternalGateway(config, deps) : startEmbeddedGateway(config, deps);
}

async function startEmbeddedGateway(config: Config, { database, log, metrics, tls, onCommitted }: GatewayDeps): Promise<WiredGateway> {
  const gateway = await createGateway({
    pool: database.pool,
    databaseUrl: database.url,
    log: log.child({ component: 'gateway' }),
    metrics,
    ...ingestionOptions(config),
    highWaterReadings: config.INGEST_HIGH_WATER_READINGS,
    maxConnections: config.MQTT_MAX_CONNECTIONS,
    connectRatePerMinute: config.MQTT_CONNECT_RATE_PER_MINUTE,
    publishRatePerSecond: config.MQTT_PUBLISH_RATE_PER_SECOND,
    publishBurst: config.MQTT_PUBLISH_BURST,
    onCommitted,
  });
  try {
    const bound = await gateway.listen({ host: config.MQTT_HOST, mqttPort: config.MQTT_PORT, wsPort: config.MQTT_WS_PORT, tls, tlsPort: config.MQTT_TLS_PORT });
    return {
      kind: 'embedded',
      gateway,
      ports: { mqtt: bound.mqttPort, ws: bound.wsPort, mqtts: bound.tlsPort },
      get listening() {
        return gateway.listening;
      },
      commitHealth: () => gateway.commitHealth(),
      close: () => gateway.close(),
    };
  } catch (err) {
    await gateway.close();
    throw err;
  }
}

async function startExternalGateway(config: Config, { database, log, metrics, onCommitted }: GatewayDeps): Promise<WiredGateway> {
  const gateway = createExternalGateway({
    pool: database.pool,
    log: log.child({ component: 'gateway' }),
    metrics,
    url: config.MQTT_URL!,
    username: config.MQTT_USERNAME,
    password: config.MQTT_PASSWORD,
    clientId: externalClientId(config),
    // n connections: client ids <clientId>, <clientId>-2 ... <clientId>-n, one persistent session each
    connections: config.MQTT_SUBSCRIBER_CONNECTIONS,
    shareGroup: config.MQTT_SHARE_GROUP,
    caFile: config.MQTT_CA_FILE,
    ...ingestionOptions(config),
    onCommitted,
  });
  try {
    await gateway.start();
  } catch (err) {
    await gateway.close();
    throw err;
  }
  return {
    kind: 'external',
    gateway,
    get listening() {
      return gateway.listening;
    },
    commitHealth: () => gateway.commitHealth(),
    close: () => gateway.close(),
  };
}

/** The external gateway's MQTT client id: MQTT_CLIENT_ID, else gateway-<hostname>. */
export function externalClientId(config: Pick<Config, 'MQTT_CLIENT_ID'>): string {
  return config.MQTT_CLIENT_ID ?? `gateway-${hostname()}`;
}

/** The summary lines of the gateway: where devices connect (embedded) or what it subscribed to (external). */
export function describeGateway(wired: WiredGateway, config: Config): string[] {
  if (wired.kind === 'external') {
    const gw = wired.gateway;
    const ids = gw.clientIds.length > 1 ? `${gw.clientIds.join(', ')} (${gw.clientIds.length} connections)` : gw.clientId;
    return [`MQTT (external)    subscribed to ${gw.url} as ${ids}, group ${gw.shareGroup}`];
  }
  const host = config.MQTT_HOST === '0.0.0.0' ? 'localhost' : config.MQTT_HOST;
  const secure = Boolean(config.TLS_CERT_FILE && config.TLS_KEY_FILE);
  const lines = [`MQTT broker        mqtt://${host}:${wired.ports.mqtt}`];
  if (wired.ports.mqtts != null) lines.push(`MQTT over TLS      mqtts://${host}:${wired.ports.mqtts}`);
  if (wired.ports.ws !== null) lines.push(`MQTT over WS       ${secure ? 'wss' : 'ws'}://${host}:${wired.ports.ws}`);
  return lines;
}

/** `/healthz`, `/readyz` and `/metrics` of a process that runs no API, on GATEWAY_HTTP_PORT. */
export async function startGatewayOpsServer(config: Config, database: Database, gateway: WiredGateway, metrics: Metrics): Promise<OpsServer> {
  const port = config.GATEWAY_HTTP_PORT!;
  return startOpsServer({ host: config.MQTT_HOST, port, registry: metrics.registry, checks: readinessChecks(database.pool, gateway) }).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'EADDRINUSE' ? new PortInUseError('gateway HTTP', config.MQTT_HOST, port, 'GATEWAY_HTTP_PORT') : err;
  });
}

export interface GatewayService extends RunningProcess {
  database: Database;
  metrics: Metrics;
  gateway: WiredGateway;
  ops: OpsServer | null;
}

/** `npm run gateway`: the gateway as its own service, with its operations port when GATEWAY_HTTP_PORT is set. */
export async function startGatewayService(config: Config, log: Logger): Promise<GatewayService> {
  // Read before anything slow starts: an unreadable TLS file is one start-up line (TlsFileError).
  const tls = readTlsFiles(config);
  const database = await openDatabase(config, log);
  const metrics = createMetrics();
  const stops: (() => Promise<void>)[] = [database.close];
  const stop = () => stopInReverse(stops, log);
  try {
    const gateway = await startGateway(config, { database, log, metrics, tls });
    stops.push(() => gateway.close());
    const ops = config.GATEWAY_HTTP_PORT === undefined ? null : await startGatewayOps(config, database, gateway, metrics, stops);
    const host = config.MQTT_HOST === '0.0.0.0' ? 'localhost' : config.MQTT_HOST;
    return {
      database,
      metrics,
      gateway,
      ops,
      summary: () => [
        ...describeGateway(gateway, config),
        ...(ops ? [`Health, metrics    http://${host}:${ops.port}/readyz, /metrics`] : []),
        describeDatabase(database, config),
      ],
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function startGatewayOps(config: Config, database: Database, gateway: WiredGateway, metrics: Metrics, stops: (() => Promise<void>)[]): Promise<OpsServer> {
  const ops = await startGatewayOpsServer(config, database, gateway, metrics);
  stops.push(() => ops.close());
  return ops;
}
