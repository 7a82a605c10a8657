/**
 * The gateway: an embedded Aedes broker whose hooks are the ingestion steps, in order:
 *   authenticate (device-auth.ts) -> authorize topic (topics.ts) -> parse + validate (decode.ts)
 *   -> batch (batcher.ts) -> commit (ingest-store.ts + migrations/002) -> acknowledge.
 * Aedes writes the QoS 1 PUBACK only after `authorizePublish` calls back, and we call back only after
 * the commit, so an acknowledged reading is durably stored (contract section 2, delivery guarantee).
 *
 * Built separately from listening: `createGateway()` wires everything, `listen()` opens the ports.
 */
import { createServer, type Server } from 'node:net';
import type { IncomingMessage } from 'node:http';
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
  /** the gateway's clock (epoch ms); injectable for tests */
  now?: () => number;
  onCommitted?: (readings: CandidateReading[]) => void;
}

export interface ListenOptions {
  host: string;
  mqttPort: number;
  /** 0 disables MQTT over WebSocket */
  wsPort: number;
}

export class PortInUseError extends Error {
  constructor(what: string, host: string, port: number, variable: string) {
    super(`${what} port ${port} is already in use on ${host}: set ${variable} to a free port`);
    this.name = 'PortInUseError';
  }
}

type DeviceClient = Client & { device?: Device };

export interface Gateway {
  broker: Aedes;
  batcher: IngestBatcher;
  auth: DeviceAuthenticator;
  listen(opts: ListenOptions): Promise<{ mqttPort: number; wsPort: number | null }>;
  /** true once listen() succeeded and close() has not begun */
  readonly listening: boolean;
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

  const broker = await Aedes.createBroker({
    // Readings are never retained or queued by the broker; the database is the store.
    preConnect(client: Client, _packet: unknown, callback: (err: Error | null, ok: boolean) => void) {
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
      void client;
      callback(null, true);
    },

    authenticate(client: DeviceClient, username: string | undefined, password: Buffer | undefined, callback) {
      auth.authenticate(username, password).then(
        (result) => {
          if (result.ok) {
            client.device = result.device;
            return callback(null, true);
          }
          metrics?.mqttRefused.inc({ reason: result.reason });
          log.warn({ deviceId: username, clientId: client.id, reason: result.reason }, 'MQTT connection refused');
          // CONNACK 4 "bad username or password"; 3 "server unavailable" when the database cannot answer.
          callback(result.reason === 'unavailable' ? authError('server unavailable', 3) : authError('bad username or password', 4), false);
        },
        (err) => {
          log.error({ err }, 'authentication failed');
          callback(authError('server unavailable', 3), false);
        },
      );
    },

    authorizeSubscribe(client: DeviceClient, subscription, callback) {
      if (client.device && maySubscribe(client.device, subscription.topic)) return callback(null, subscription);
      metrics?.mqttRefused.inc({ reason: 'subscribe' });
      log.warn({ deviceId: client.device?.id, topic: subscription.topic }, 'subscribe refused');
      // A null subscription is a refusal: SUBACK return code 0x80 [MQTT-3.9.3], the connection stays up.
      callback(null, null);
    },

    authorizePublish(client: DeviceClient | null, packet, callback) {
      const device = client?.device;
      if (!device) return callback(new Error('not authorized'));
      const refusal = publishRefusal(device, packet.topic);
      if (refusal) {
        metrics?.mqttRefused.inc({ reason: 'publish' });
        log.warn({ deviceId: device.id, topic: packet.topic, reason: refusal }, 'publish refused');
        return callback(new Error(`publish not authorized: ${refusal}`));
      }
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
        return callback(err as Error);
      }
      batcher.submit(decoded, device.id, packet.topic).then(
        (outcome) => {
          metrics?.pubackLatency.observe((performance.now() - receivedAt) / 1000);
          if (Object.keys(outcome.quarantined).length) log.debug({ deviceId: device.id, outcome }, 'message partly quarantined');
          callback(null);
        },
        (err) => callback(err),
      );
    },
  } as ConstructorParameters<typeof Aedes>[0]);

  broker.on('client', (client: DeviceClient) => {
    connected++;
    metrics?.connectedDevices.set(connected);
    log.debug({ deviceId: client.device?.id, clientId: client.id }, 'device connected');
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
    async listen({ host, mqttPort, wsPort }) {
      const tcp = createServer((socket) => {
        socket.setNoDelay(true);
        broker.handle(
          guardSocket(socket, maxPacketBytes, (err) => {
            metrics?.mqttRefused.inc({ reason: 'packet_too_large' });
            log.warn({ remoteAddress: socket.remoteAddress, announced: err.announced, limit: err.limit }, 'connection closed: MQTT packet too large');
          }) as never,
        );
      });
      const boundMqtt = await listenTcp(host, mqttPort, 'MQTT_PORT', 'MQTT', tcp);
      servers.push(tcp);
      let boundWs: number | null = null;
      if (wsPort !== 0) {
        const http = (await import('node:http')).createServer((_req, res) => {
          res.writeHead(426).end('MQTT over WebSocket: connect with subprotocol "mqtt"');
        });
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
          broker.handle(createWebSocketStream(ws) as never, req as never);
        });
        boundWs = await listenTcp(host, wsPort, 'MQTT_WS_PORT', 'MQTT over WebSocket', http as unknown as Server);
        servers.push({ close: (cb) => { wss.close(); http.close(() => cb()); } });
      }
      isListening = true;
      return { mqttPort: boundMqtt, wsPort: boundWs };
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
