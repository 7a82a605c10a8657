/**
 * The gateway: an embedded Aedes broker whose hooks are the ingestion steps, in order:
 *   authenticate (device-auth.ts) -> authorize topic (topics.ts) -> parse + validate (decode.ts)
 *   -> batch (batcher.ts) -> commit (ingest-store.ts + migrations/002) -> acknowledge.
 * Aedes writes the QoS 1 PUBACK only after `authorizePublish` calls back, and we call back only after
 * the commit, so an acknowledged reading is durably stored (contract section 2, delivery guarantee).
 *
 * Built separately from listening: `createGateway()` wires everything, `listen()` opens the ports.
 *
 * Limits (gateway/README.md "TLS and limits"): failed connection attempts per remote address (preConnect,
 * before any database lookup or scrypt), connections per authenticated device (authenticate: failures
 * in a device's name never count against it), and a publish token bucket per device (authorizePublish).
 * A client id must be the device's own (client-text.ts), so no device can take another's session. A publish over the limit closes the connection without its PUBACK, so the
 * device resends it after reconnecting; nothing acknowledged is ever refused.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createSecureContext, createServer as createTlsServer } from 'node:tls';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { Aedes, type Client, type AuthenticateError } from 'aedes';
import type { Pool } from '../common/db.js';
import type { Logger } from '../common/logger.js';
import type { Metrics } from '../common/metrics.js';
import { decodeMessage } from './decode.js';
import { DeviceAuthenticator } from './device-auth.js';
import { IngestBatcher } from './batcher.js';
import { IngestStore } from './ingest-store.js';
import { maySubscribe, publishRefusal, type Device } from './topics.js';
import { guardSocket } from './frame-guard.js';
import type { CandidateReading } from './decode.js';
import { addressKey, KeyedTokenBuckets } from './rate-limit.js';
import type { CommitHealth } from './batcher.js';
import { clientIdBelongsTo, clip, isDeviceIdText } from './client-text.js';

export interface GatewayOptions {
  pool: Pool;
  /** for the LISTEN connection that invalidates cached credentials */
  databaseUrl: string;
  log: Logger;
  metrics?: Metrics;
  maxPayloadBytes: number;
  futureToleranceSeconds: number;
  maxBatchRows: number;
  maxInflightBatches: number;
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
  /** the gateway's clock (epoch ms); injectable for tests */
  now?: () => number;
  onCommitted?: (readings: CandidateReading[]) => void;
}

export interface ListenOptions {
  host: string;
  mqttPort: number;
  /** 0 disables MQTT over WebSocket */
  wsPort: number;
  /** Certificate and key (PEM): MQTT over TLS on `tlsPort`, and the WebSocket listener becomes secure (wss). */
  tls?: TlsMaterial | null;
  /** MQTT over TLS (used only with `tls`) */
  tlsPort?: number;
}

/** PEM certificate (chain) and private key, as read at start-up. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

/** The minimum protocol version of every TLS listener (MQTT, WebSocket, API). */
export const TLS_MIN_VERSION = 'TLSv1.2' as const;

/** A TLS file that cannot be read or used: one start-up line naming the variable. */
export class TlsFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsFileError';
  }
}

/**
 * Reads TLS_CERT_FILE and TLS_KEY_FILE (null when neither is set; config.ts ensures both or neither) and
 * checks that they make a usable certificate and key, so a bad file stops start-up with one clear line.
 */
export function readTlsFiles(config: { TLS_CERT_FILE?: string; TLS_KEY_FILE?: string }): TlsMaterial | null {
  if (!config.TLS_CERT_FILE || !config.TLS_KEY_FILE) return null;
  const read = (variable: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new TlsFileError(`${variable}=${file}: cannot read the file (${e.code ?? e.message})`);
    }
  };
  const material = { cert: read('TLS_CERT_FILE', config.TLS_CERT_FILE), key: read('TLS_KEY_FILE', config.TLS_KEY_FILE) };
  try {
    createSecureContext({ ...material, minVersion: TLS_MIN_VERSION });
  } catch (err) {
    const reason = (err as Error).message.split('\n')[0];
    throw new TlsFileError(`TLS_CERT_FILE=${config.TLS_CERT_FILE}, TLS_KEY_FILE=${config.TLS_KEY_FILE}: not a usable PEM certificate and matching private key (${reason})`);
  }
  return material;
}

/** Per remote address, this many times MQTT_CONNECT_RATE_PER_MINUTE failed or in-progress attempts per minute. */
export const ADDRESS_ATTEMPTS_FACTOR = 10;
/** Bounds of the limiters' memory (buckets are dropped as soon as they are full again; these are hard caps). */
const MAX_LIMITED_KEYS = 200_000;

export class PortInUseError extends Error {
  constructor(what: string, host: string, port: number, variable: string) {
    super(`${what} port ${port} is already in use on ${host}: set ${variable} to a free port`);
    this.name = 'PortInUseError';
  }
}

type DeviceClient = Client & {
  device?: Device;
  /** the remote address key charged in preConnect, until authentication settles it */
  limitedAddress?: string | null;
  /** the CONNECT had an empty client id, so the broker assigned a fresh one */
  serverAssignedId?: boolean;
  /** accepted publishes of this connection whose callback (and so PUBACK) is still to come */
  publishesInFlight?: number;
  /** called once publishesInFlight is back to 0 */
  whenIdle?: (() => void)[];
};

/**
 * Calls `fn` once every accepted publish of `client` has called back (its PUBACK written), then one more
 * turn of the event loop so those PUBACKs reach the socket before a refusal closes it.
 */
function afterInFlight(client: DeviceClient, fn: () => void): void {
  const later = () => void setImmediate(fn);
  if (!client.publishesInFlight) return later();
  (client.whenIdle ??= []).push(later);
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

function authError(message: string, returnCode: number): AuthenticateError {
  const err = new Error(message) as AuthenticateError;
  err.returnCode = returnCode;
  return err;
}

export async function createGateway(opts: GatewayOptions): Promise<Gateway> {
  const { log, metrics } = opts;
  const now = opts.now ?? Date.now;
  const store = new IngestStore(opts.pool);
  const batcher = new IngestBatcher({
    store,
    log,
    metrics,
    maxBatchRows: opts.maxBatchRows,
    maxInflightBatches: opts.maxInflightBatches,
    onCommitted: opts.onCommitted,
  });
  const auth = new DeviceAuthenticator(opts.pool, log);
  await auth.start(opts.databaseUrl);
  let accepting = true;
  let connected = 0;
  // Payloads up to 4x the limit are still received and quarantined with evidence; larger packets close
  // the connection before their body is buffered (frame-guard.ts).
  const maxPacketBytes = opts.maxPayloadBytes * 4 + 64 * 1024;

  // Limits. The remote address of each connection is known from the socket (remoteOf), the device id from CONNECT.
  const remoteOf = new WeakMap<object, string | null>();
  const limitsClock = opts.limitsClock ?? (() => performance.now());
  const connectRate = opts.connectRatePerMinute;
  const deviceAttempts = connectRate
    ? new KeyedTokenBuckets({ capacity: connectRate, refillPerSecond: connectRate / 60, maxKeys: MAX_LIMITED_KEYS, now: limitsClock })
    : null;
  const addressAttempts = connectRate
    ? new KeyedTokenBuckets({
        capacity: connectRate * ADDRESS_ATTEMPTS_FACTOR,
        refillPerSecond: (connectRate * ADDRESS_ATTEMPTS_FACTOR) / 60,
        maxKeys: MAX_LIMITED_KEYS,
        now: limitsClock,
      })
    : null;
  const publishes = opts.publishRatePerSecond
    ? new KeyedTokenBuckets({
        capacity: Math.max(1, opts.publishBurst ?? opts.publishRatePerSecond),
        refillPerSecond: opts.publishRatePerSecond,
        maxKeys: MAX_LIMITED_KEYS,
        now: limitsClock,
      })
    : null;
  /** An attempt that settled without costing anything expensive, or succeeded: it no longer counts against its address. */
  const releaseAddress = (client: DeviceClient) => {
    if (client.limitedAddress && addressAttempts) addressAttempts.give(client.limitedAddress);
    client.limitedAddress = null;
  };

  const broker = await Aedes.createBroker({
    // Readings are never retained or queued by the broker; the database is the store.
    preConnect(client: Client, packet: { clientId?: string }, callback: (err: Error | null, ok: boolean) => void) {
      (client as DeviceClient).serverAssignedId = packet.clientId === '';
      if (!accepting) return callback(new Error('gateway is shutting down'), false);
      if (connected >= opts.maxConnections) {
        metrics?.mqttRefused.inc({ reason: 'max_connections' });
        return callback(new Error('too many connections'), false);
      }
      if (batcher.pendingReadings >= opts.highWaterReadings) {
        metrics?.mqttRefused.inc({ reason: 'high_water' });
        log.warn({ pending: batcher.pendingReadings }, 'refusing connection: ingestion backlog above high-water mark');
        return callback(new Error('server busy'), false);
      }
      // Before any database lookup or scrypt: an address with too many failed (or unfinished) attempts
      // this minute is cut here, without a CONNACK. Successful attempts are given back (releaseAddress),
      // so many meters behind one NAT or concentrator address are not locked out by their own successes.
      const address = addressAttempts ? addressKey(remoteOf.get(client.conn as object)) : null;
      if (address && addressAttempts) {
        if (!addressAttempts.take(address)) {
          metrics?.mqttRefused.inc({ reason: 'connect_rate' });
          log.debug({ remoteAddress: address }, 'connection refused: too many failed connection attempts from this address');
          return callback(new Error('too many connection attempts'), false);
        }
        (client as DeviceClient).limitedAddress = address;
      }
      callback(null, true);
    },

    authenticate(client: DeviceClient, username: string | undefined, password: Buffer | undefined, callback) {
      // Failures (unknown device, wrong secret, a client id of another device) are charged to the remote
      // address only (preConnect took its token; it is kept). The per-device bucket counts only connections
      // that proved the device's secret, so nobody can lock a device out by failing in its name.
      const refuse = (reason: string, returnCode: 4 | 5, message: string) => {
        client.limitedAddress = null; // a failure: the address stays charged
        metrics?.mqttRefused.inc({ reason });
        log.warn({ deviceId: clip(username), clientId: clip(client.id), reason }, 'MQTT connection refused');
        callback(authError(message, returnCode), false);
      };
      // A username that is not a device id (control characters, NUL, invalid UTF-8 decoded to U+FFFD, too
      // long) names no device: refused like an unknown one, without asking the database.
      if (!isDeviceIdText(username)) return refuse('unknown_device', 4, 'bad username or password');
      auth.authenticate(username, password).then(
        (result) => {
          if (!result.ok && result.reason === 'unavailable') {
            // The database not answering is not the device's fault: the address is not charged.
            releaseAddress(client);
            metrics?.mqttRefused.inc({ reason: result.reason });
            log.warn({ deviceId: username, clientId: clip(client.id) }, 'MQTT connection refused: device lookup unavailable');
            return callback(authError('server unavailable', 3), false);
          }
          if (!result.ok) return refuse(result.reason, 4, 'bad username or password');
          // The session (client id) must be the device's own: `<id>` or `<id>:<suffix>` (client-text.ts).
          if (!clientIdBelongsTo(client.id, result.device.id, client.serverAssignedId)) return refuse('client_id', 5, 'not authorized');
          if (deviceAttempts && !deviceAttempts.take(result.device.id)) {
            // A device reconnecting in a loop: CONNACK 3 "server unavailable" (MQTT 3.1.1 has no "rate
            // exceeded"; clients retry later). Not given back to the address either.
            client.limitedAddress = null;
            metrics?.mqttRefused.inc({ reason: 'connect_rate' });
            log.warn({ deviceId: username, clientId: clip(client.id) }, 'MQTT connection refused: too many connections for this device');
            return callback(authError('server unavailable', 3), false);
          }
          releaseAddress(client);
          client.device = result.device;
          callback(null, true);
        },
        (err) => {
          releaseAddress(client);
          log.error({ err }, 'authentication failed');
          callback(authError('server unavailable', 3), false);
        },
      );
    },

    authorizeSubscribe(client: DeviceClient, subscription, callback) {
      if (client.device && maySubscribe(client.device, subscription.topic)) return callback(null, subscription);
      metrics?.mqttRefused.inc({ reason: 'subscribe' });
      log.warn({ deviceId: client.device?.id, topic: clip(subscription.topic) }, 'subscribe refused');
      // A null subscription is a refusal: SUBACK return code 0x80 [MQTT-3.9.3], the connection stays up.
      callback(null, null);
    },

    authorizePublish(client: DeviceClient | null, packet, callback) {
      const device = client?.device;
      if (!device) return callback(new Error('not authorized'));
      const refusal = publishRefusal(device, packet.topic);
      if (refusal) {
        metrics?.mqttRefused.inc({ reason: 'publish' });
        log.warn({ deviceId: device.id, topic: clip(packet.topic), reason: refusal }, 'publish refused');
        return callback(new Error(`publish not authorized: ${refusal}`));
      }
      // Over the device's publish rate: refused before decoding. Aedes 1.2 answers an authorizePublish error
      // by closing the connection (lib/handlers/publish.js -> client _onError), and no PUBACK is written;
      // the device resends the message after reconnecting (MQTT 3.1.1 has no negative PUBACK, and a client
      // resends an unacknowledged QoS 1 message only on a new connection, so closing is what makes it resend).
      // The refusal waits until the messages accepted before it (same socket read, handled concurrently by
      // Aedes) are acknowledged: otherwise a device resending a backlog larger than the burst in one go would
      // lose every PUBACK to the close, resend the same messages, and never make progress.
      if (publishes && !publishes.take(device.id)) {
        metrics?.mqttRefused.inc({ reason: 'publish_rate' });
        log.warn({ deviceId: device.id, waitMs: publishes.waitMs(device.id) }, 'publish refused: over the device publish rate; closing the connection (unacknowledged, the device resends)');
        return afterInFlight(client, () => callback(new Error('publish rate exceeded')));
      }
      client.publishesInFlight = (client.publishesInFlight ?? 0) + 1;
      const settle = (err: Error | null) => {
        callback(err);
        if (--client.publishesInFlight! === 0 && client.whenIdle) for (const fn of client.whenIdle.splice(0)) fn();
      };
      packet.retain = false;
      const receivedAt = performance.now();
      let decoded;
      try {
        decoded = decodeMessage(device, packet.topic, packet.payload as Buffer, {
          maxPayloadBytes: opts.maxPayloadBytes,
          nowMs: now(),
          futureToleranceMs: opts.futureToleranceSeconds * 1000,
        });
      } catch (err) {
        // decodeMessage handles every input; reaching this is a bug, and the device will resend.
        log.error({ err, deviceId: device.id }, 'decoding failed unexpectedly');
        return settle(err as Error);
      }
      batcher.submit(decoded, device.id, packet.topic).then(
        (outcome) => {
          metrics?.pubackLatency.observe((performance.now() - receivedAt) / 1000);
          if (Object.keys(outcome.quarantined).length) log.debug({ deviceId: device.id, outcome }, 'message partly quarantined');
          settle(null);
        },
        (err) => settle(err),
      );
    },
  } as ConstructorParameters<typeof Aedes>[0]);

  broker.on('client', (client: DeviceClient) => {
    connected++;
    metrics?.connectedDevices.set(connected);
    log.debug({ deviceId: client.device?.id, clientId: clip(client.id) }, 'device connected');
  });
  broker.on('clientDisconnect', () => {
    connected--;
    metrics?.connectedDevices.set(connected);
  });
  broker.on('clientError', (client: DeviceClient, err: Error) => {
    log.debug({ deviceId: client.device?.id, err: err.message }, 'client error');
  });
  broker.on('connectionError', (_client: Client, err: Error) => {
    log.debug({ err: err.message }, 'connection error');
  });

  const servers: { close(cb: () => void): void }[] = [];
  const wsClients = new Set<import('ws').WebSocket>();
  let isListening = false;

  async function listenTcp(host: string, port: number, variable: string, what: string, server: Server): Promise<number> {
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'EADDRINUSE' ? new PortInUseError(what, host, port, variable) : err),
      );
      server.listen(port, host, () => resolve((server.address() as { port: number }).port));
    });
  }

  return {
    broker,
    batcher,
    auth,
    get listening() {
      return isListening;
    },
    commitHealth: (now?: number) => batcher.health(now),
    async listen({ host, mqttPort, wsPort, tls, tlsPort }) {
      // MQTT over TCP and over TLS share this path: the frame guard, then the broker.
      const handleSocket = (socket: Socket) => {
        socket.setNoDelay(true);
        const guarded = guardSocket(socket, maxPacketBytes, (err) => {
          metrics?.mqttRefused.inc({ reason: 'packet_too_large' });
          log.warn({ remoteAddress: socket.remoteAddress, announced: err.announced, limit: err.limit }, 'connection closed: MQTT packet too large');
        });
        remoteOf.set(guarded, socket.remoteAddress ?? null);
        broker.handle(guarded as never);
      };
      const tlsOptions = tls ? { cert: tls.cert, key: tls.key, minVersion: TLS_MIN_VERSION } : null;
      const tcp = createServer(handleSocket);
      const boundMqtt = await listenTcp(host, mqttPort, 'MQTT_PORT', 'MQTT', tcp);
      servers.push(tcp);
      let boundTls: number | null = null;
      if (tlsOptions) {
        const secure = createTlsServer(tlsOptions, handleSocket);
        // A failed handshake (plain MQTT on the TLS port, an old protocol version, a client refusing our
        // certificate) only closes that connection.
        secure.on('tlsClientError', (err, socket) => log.debug({ err: err.message, remoteAddress: socket.remoteAddress }, 'TLS handshake failed'));
        boundTls = await listenTcp(host, tlsPort ?? 8883, 'MQTT_TLS_PORT', 'MQTT over TLS', secure);
        servers.push(secure);
      }
      let boundWs: number | null = null;
      if (wsPort !== 0) {
        const reject426 = (_req: IncomingMessage, res: import('node:http').ServerResponse) => {
          res.writeHead(426).end('MQTT over WebSocket: connect with subprotocol "mqtt"');
        };
        const http = tlsOptions ? createHttpsServer(tlsOptions, reject426) : (await import('node:http')).createServer(reject426);
        if (tlsOptions) http.on('tlsClientError', (err: Error) => log.debug({ err: err.message }, 'TLS handshake failed (WebSocket)'));
        const wss = new WebSocketServer({
          server: http,
          maxPayload: maxPacketBytes,
          handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
        });
        // ws re-emits the HTTP server's errors (EADDRINUSE ...); listenTcp reports them, this keeps them from crashing.
        wss.on('error', () => {});
        wss.on('connection', (ws, req: IncomingMessage) => {
          wsClients.add(ws);
          ws.on('close', () => wsClients.delete(ws));
          const stream = createWebSocketStream(ws);
          remoteOf.set(stream, req.socket.remoteAddress ?? null);
          broker.handle(stream as never, req as never);
        });
        boundWs = await listenTcp(host, wsPort, 'MQTT_WS_PORT', tlsOptions ? 'MQTT over secure WebSocket' : 'MQTT over WebSocket', http as unknown as Server);
        servers.push({ close: (cb) => { wss.close(); http.close(() => cb()); } });
      }
      isListening = true;
      return { mqttPort: boundMqtt, wsPort: boundWs, tlsPort: boundTls };
    },
    async close(drainMs = 10_000) {
      isListening = false;
      accepting = false;
      const closing = servers.map((s) => new Promise<void>((r) => s.close(() => r())));
      const drained = await batcher.drain(drainMs);
      if (!drained) log.warn({ pending: batcher.pendingReadings }, 'shutdown: uncommitted readings were not acknowledged; devices will resend');
      // Let the acknowledgements written by the last callbacks reach the sockets before closing them.
      await new Promise((r) => setImmediate(r));
      await new Promise<void>((r) => broker.close(() => r()));
      for (const ws of wsClients) ws.terminate();
      await Promise.all(closing);
      await auth.stop();
    },
  };
}
