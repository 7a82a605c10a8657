/**
 * The embedded gateway: an Aedes broker whose hooks are the ingestion steps, in order:
 *   pre-connect (limits) -> authenticate (device-auth.ts) -> authorize-publish (topics.ts, publish rate)
 *   -> the ingestion pipeline (../ingestion/: decode, batch, commit) -> acknowledge.
 * Aedes writes the QoS 1 PUBACK only after `authorizePublish` calls back, and we call back only after
 * the commit, so an acknowledged reading is durably stored (contract section 2, delivery guarantee).
 *
 * Built separately from listening: `createGateway()` wires everything, `listen()` opens the ports
 * (listeners.ts). Each hook is its own file under hooks/, named as aedes names it.
 *
 * Limits (connection-limits.ts, gateway/README.md "TLS and limits"): failed connection attempts per
 * remote address, connections per authenticated device, a publish token bucket per device. A client id
 * must be the device's own (client-text.ts), so no device can take another's session. A publish over the
 * limit closes the connection without its PUBACK, so the device resends it after reconnecting; nothing
 * acknowledged is ever refused.
 */
import { Aedes, type Client } from 'aedes';
import { clip } from '../client-text.js';
import type { CommitHealth, IngestBatcher } from '../ingestion/batcher.js';
import { createIngestionPipeline, type IngestionOptions } from '../ingestion/pipeline.js';
import { createConnectionLimits } from './connection-limits.js';
import { createConnectionLog } from './connection-log.js';
import { DeviceAuthenticator } from './device-auth.js';
import { authenticate } from './hooks/authenticate.js';
import { authorizePublish } from './hooks/authorize-publish.js';
import { authorizeSubscribe } from './hooks/authorize-subscribe.js';
import type { DeviceClient, HookContext } from './hooks/context.js';
import { preConnect } from './hooks/pre-connect.js';
import { openListeners, type Listeners, type ListenOptions } from './listeners.js';

export { ADDRESS_ATTEMPTS_FACTOR } from './connection-limits.js';
export type { ListenOptions } from './listeners.js';

/** The ingestion pipeline's options (pool, log, metrics, limits, clock, onCommitted), and the broker's. */
export interface GatewayOptions extends IngestionOptions {
  /** for the LISTEN connection that invalidates cached credentials */
  databaseUrl: string;
  highWaterReadings: number;
  maxConnections: number;
  /**
   * Authenticated connections per device per minute (a burst of that many, refilled over the minute); per
   * remote address ADDRESS_ATTEMPTS_FACTOR times that, counting only attempts that fail or are still in
   * progress. Unset: unlimited.
   */
  connectRatePerMinute?: number;
  /** Sustained PUBLISH rate per device (messages per second), with bursts up to `publishBurst`. Unset: unlimited. */
  publishRatePerSecond?: number;
  publishBurst?: number;
  /** monotonic clock (ms) of the limits; injectable for tests */
  limitsClock?: () => number;
}

export interface Gateway {
  broker: Aedes;
  batcher: IngestBatcher;
  auth: DeviceAuthenticator;
  listen(opts: ListenOptions): Promise<{ mqttPort: number; wsPort: number | null; tlsPort: number | null }>;
  /** true once listen() succeeded and close() has not begun */
  readonly listening: boolean;
  /** whether commits are going through (readiness: not ready while `healthy` is false) */
  commitHealth(now?: number): CommitHealth;
  /** Stops accepting, commits and acknowledges what is in flight (up to `drainMs`), then closes. */
  close(drainMs?: number): Promise<void>;
}

export async function createGateway(opts: GatewayOptions): Promise<Gateway> {
  const { log, metrics } = opts;
  const pipeline = createIngestionPipeline(opts);
  const batcher = pipeline.batcher;
  const auth = new DeviceAuthenticator(opts.pool, log);
  await auth.start(opts.databaseUrl);
  let accepting = true;
  let connected = 0;
  // Payloads up to 4x the limit are still received and quarantined with evidence; larger packets close
  // the connection before their body is buffered (frame-guard.ts).
  const maxPacketBytes = opts.maxPayloadBytes * 4 + 64 * 1024;
  const limits = createConnectionLimits({ ...opts, clock: opts.limitsClock ?? (() => performance.now()) });
  const ctx: HookContext = {
    log,
    metrics,
    pipeline,
    auth,
    limits,
    maxConnections: opts.maxConnections,
    highWaterReadings: opts.highWaterReadings,
    get accepting() {
      return accepting;
    },
    get connected() {
      return connected;
    },
  };

  const broker = await Aedes.createBroker({
    preConnect: preConnect(ctx),
    authenticate: authenticate(ctx),
    authorizeSubscribe: authorizeSubscribe(ctx),
    authorizePublish: authorizePublish(ctx),
  } as ConstructorParameters<typeof Aedes>[0]);

  const connectionLog = createConnectionLog(opts.pool, log);
  broker.on('client', (client: DeviceClient) => {
    if (client.device?.id) connectionLog.connected(client.device.id);
    connected++;
    metrics?.connectedDevices.set(connected);
    log.debug({ deviceId: client.device?.id, clientId: clip(client.id) }, 'device connected');
  });
  broker.on('clientDisconnect', (client: DeviceClient) => {
    if (client.device?.id) connectionLog.disconnected(client.device.id);
    connected--;
    metrics?.connectedDevices.set(connected);
  });
  broker.on('clientError', (client: DeviceClient, err: Error) => {
    log.debug({ deviceId: client.device?.id, err: err.message }, 'client error');
  });
  broker.on('connectionError', (_client: Client, err: Error) => {
    log.debug({ err: err.message }, 'connection error');
  });

  let listeners: Listeners | null = null;
  let isListening = false;
  return {
    broker,
    batcher,
    auth,
    get listening() {
      return isListening;
    },
    commitHealth: (now?: number) => pipeline.health(now),
    async listen(listenOptions) {
      listeners = await openListeners(broker, listenOptions, { log, metrics, maxPacketBytes, remoteOf: limits.remoteOf });
      isListening = true;
      return { mqttPort: listeners.mqttPort, wsPort: listeners.wsPort, tlsPort: listeners.tlsPort };
    },
    async close(drainMs = 10_000) {
      isListening = false;
      accepting = false;
      const closing = listeners?.close() ?? Promise.resolve();
      const drained = await batcher.drain(drainMs);
      if (!drained) log.warn({ pending: batcher.pendingReadings }, 'shutdown: uncommitted readings were not acknowledged; devices will resend');
      // Let the acknowledgements written by the last callbacks reach the sockets before closing them.
      await new Promise((r) => setImmediate(r));
      await new Promise<void>((r) => broker.close(() => r()));
      listeners?.terminateWebSockets();
      await closing;
      await connectionLog.flush();
      await auth.stop();
    },
  };
}
