/**
 * MQTT_MODE=external: the gateway as a subscriber of an existing broker cluster (Mosquitto, EMQX, HiveMQ)
 * instead of an embedded Aedes broker. The broker authenticates devices and enforces the topic rules
 * (its ACL); this process subscribes to every readings topic through a shared subscription, so that the
 * instances of one group (MQTT_SHARE_GROUP) share the stream, and runs the same steps as the embedded
 * gateway from there on:
 *   parse + validate (decode.ts) -> batch (batcher.ts) -> commit (ingest-store.ts + migrations/002) -> PUBACK.
 *
 * Delivery: the session is persistent (stable client id, clean start off, MQTT 5 session that does not
 * expire), and the PUBACK to the broker is written only after the message's readings and quarantine records
 * are committed (mqtt.js `customHandleAcks`, MQTT 5 only). Whatever was not acknowledged when a connection or
 * the process dies stays in the session and the broker delivers it again; the database makes the second
 * delivery a counted duplicate. So: at-least-once delivery, exactly-once effect.
 *
 * mqtt.js handles the packets of a connection one at a time and takes the next one only after the
 * acknowledgement callback of the current one, so each instance commits one message per round trip of its
 * connection; PUBACKs therefore also leave in the order the PUBLISHes arrived, as MQTT requires.
 *
 * Built separately from connecting: `createExternalGateway()` wires everything, `start()` connects.
 */
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Pool } from '../common/db.js';
import type { Logger } from '../common/logger.js';
import type { Metrics } from '../common/metrics.js';
import { IngestBatcher, type MessageOutcome } from './batcher.js';
import { decodeMessage, type CandidateReading, type DecodedMessage } from './decode.js';
import { IngestStore } from './ingest-store.js';
import { quarantineMessage } from './quarantine.js';
import { parseReadingsTopic } from './topics.js';

export interface ExternalGatewayOptions {
  pool: Pool;
  log: Logger;
  metrics?: Metrics;
  /** mqtt://, mqtts://, ws:// or wss:// */
  url: string;
  username?: string;
  password?: string;
  /** stable per instance: it names the persistent session that holds this instance's unacknowledged messages */
  clientId: string;
  shareGroup: string;
  /** PEM CA bundle for a broker with a private CA */
  caFile?: string;
  maxPayloadBytes: number;
  futureToleranceSeconds: number;
  maxBatchRows: number;
  maxInflightBatches: number;
  /** the gateway's clock (epoch ms); injectable for tests */
  now?: () => number;
  onCommitted?: (readings: CandidateReading[]) => void;
  /** start() fails when no subscription is in place after this long (default 30 s) */
  startTimeoutMs?: number;
  /** pause between reconnection attempts (default 1 s) */
  reconnectPeriodMs?: number;
  /** MQTT keepalive in seconds (default 30) */
  keepaliveSeconds?: number;
  /** MQTT 5 Receive Maximum: unacknowledged messages the broker may have in flight to this client (default 100) */
  receiveMaximum?: number;
}

export interface ExternalGateway {
  readonly batcher: IngestBatcher;
  readonly clientId: string;
  readonly shareGroup: string;
  /** the broker URL without credentials */
  readonly url: string;
  /** the shared-subscription filters */
  readonly subscriptions: string[];
  /** connected to the broker with the subscriptions granted, and close() not begun (readiness) */
  readonly listening: boolean;
  readonly connected: boolean;
  /** Connects and subscribes; resolves once the subscriptions are granted. Reconnects by itself afterwards. */
  start(): Promise<void>;
  /** start(), with the embedded gateway's result shape (no ports of its own) */
  listen(): Promise<{ mqttPort: null; wsPort: null }>;
  /**
   * Stops handling new messages (they stay in the session for the next start with this client id),
   * commits and acknowledges what is in flight (up to `drainMs`), then disconnects without ending the session.
   */
  close(drainMs?: number): Promise<void>;
}

/** The shared subscriptions of a group: every readings topic, at QoS 1. */
export function sharedSubscriptions(group: string): string[] {
  return [`$share/${group}/meters/+/readings`, `$share/${group}/concentrators/+/readings`];
}

/** A URL fit for logs: credentials removed. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}

/** CONNACK reason codes that another attempt will not change (MQTT 5, and their 3.1.1 equivalents). */
const FATAL_CONNACK = new Map<number, string>([
  [1, 'unacceptable protocol version (the gateway needs a broker that speaks MQTT 5)'],
  [132, 'unsupported protocol version (the gateway needs a broker that speaks MQTT 5)'],
  [2, 'client identifier rejected'],
  [133, 'client identifier not valid'],
  [4, 'bad user name or password'],
  [134, 'bad user name or password'],
  [5, 'not authorized'],
  [135, 'not authorized'],
  [138, 'banned'],
  [140, 'bad authentication method'],
]);

/** Session Expiry Interval 0xFFFFFFFF: the session never expires (MQTT 5, 3.1.2.11.2). */
const SESSION_NEVER_EXPIRES = 0xffffffff;

export function createExternalGateway(opts: ExternalGatewayOptions): ExternalGateway {
  const { log, metrics } = opts;
  const now = opts.now ?? Date.now;
  const url = redactUrl(opts.url);
  const subscriptions = sharedSubscriptions(opts.shareGroup);
  const store = new IngestStore(opts.pool);
  const batcher = new IngestBatcher({
    store,
    log,
    metrics,
    maxBatchRows: opts.maxBatchRows,
    maxInflightBatches: opts.maxInflightBatches,
    onCommitted: opts.onCommitted,
  });

  let started = false;
  let connected = false;
  let everConnected = false;
  let subscribed = false;
  let closing = false;
  /** once set, arriving messages are neither stored nor acknowledged: they stay in the broker's session */
  let handlingStopped = false;
  /** +1 whenever the network connection closes: an acknowledgement belongs to the connection it arrived on */
  let connection = 0;
  let lastError: string | null = null;
  let onFirstSubscribed: (() => void) | null = null;
  let onFatalAtStart: ((err: Error) => void) | null = null;
  let stoppedWhileClosing = 0;

  const clientOptions: IClientOptions = {
    manualConnect: true,
    protocolVersion: 5,
    clientId: opts.clientId,
    username: opts.username,
    password: opts.password,
    ca: opts.caFile ? readFileSync(opts.caFile) : undefined,
    clean: false,
    properties: { sessionExpiryInterval: SESSION_NEVER_EXPIRES, receiveMaximum: opts.receiveMaximum ?? 100 },
    keepalive: opts.keepaliveSeconds ?? 30,
    reconnectPeriod: opts.reconnectPeriodMs ?? 1000,
    connectTimeout: 10_000,
    // Transient refusals (server busy, unavailable, quota) must not end the reconnect loop.
    reconnectOnConnackError: true,
    // Subscriptions are (re)made on every connection below; the session keeps them meanwhile.
    resubscribe: false,
    customHandleAcks: (topic, payload, packet, ack) => onPublish(topic, payload, packet as IPublishPacket, ack),
  };
  const client: MqttClient = mqtt.connect(opts.url, clientOptions);

  /** Decodes one message the way the embedded gateway does, with the device taken from the topic. */
  function decode(topic: string, payload: Buffer): { decoded: DecodedMessage; deviceId: string } {
    const parsed = parseReadingsTopic(topic);
    if (!parsed) {
      // The subscription's `+` also matches levels that are not device ids (empty, too long, other characters).
      const detail = `topic "${topic.slice(0, 200)}" is not meters/{meterId}/readings or concentrators/{concentratorId}/readings with a valid id`;
      return { decoded: { readings: [], quarantined: [quarantineMessage({ deviceId: null, topic }, payload, opts.maxPayloadBytes, 'schema', detail)] }, deviceId: '' };
    }
    // The broker authenticated the publisher and its ACL confined it to this topic, so the topic names the
    // device. A device unknown here (or not yet known) is not dropped: its readings are quarantined at commit
    // (`unknown_meter`; on a concentrator topic `not_assigned`, as no meter is assigned to an unknown concentrator).
    const device = { id: parsed.deviceId, kind: parsed.kind };
    try {
      return {
        decoded: decodeMessage(device, topic, payload, {
          maxPayloadBytes: opts.maxPayloadBytes,
          nowMs: now(),
          futureToleranceMs: opts.futureToleranceSeconds * 1000,
        }),
        deviceId: device.id,
      };
    } catch (err) {
      // decodeMessage handles every input; reaching this is a bug. The broker would deliver the message again
      // and again (and stall this connection), so it is kept in the quarantine instead, with the error.
      log.error({ err, deviceId: device.id, topic }, 'decoding failed unexpectedly; message quarantined');
      const detail = `internal decoding error: ${(err as Error).message}`;
      return { decoded: { readings: [], quarantined: [quarantineMessage({ deviceId: device.id, topic }, payload, opts.maxPayloadBytes, 'schema', detail)] }, deviceId: device.id };
    }
  }

  function submit(topic: string, payload: Buffer): Promise<MessageOutcome> {
    const { decoded, deviceId } = decode(topic, payload);
    return batcher.submit(decoded, deviceId, topic);
  }

  /** QoS 1 (and 2): store, then acknowledge on the connection the message arrived on. */
  function onPublish(topic: string, payload: Buffer, packet: IPublishPacket, ack: (error: Error | number, code?: number) => void): void {
    if (handlingStopped) {
      // Shutting down: no acknowledgement, so the message stays in this client id's session.
      stoppedWhileClosing++;
      return;
    }
    const arrivedOn = connection;
    const receivedAt = performance.now();
    submit(topic, payload).then(
      (outcome) => {
        if (arrivedOn !== connection) {
          // The connection this message came on is gone; the broker delivers it again on the next one, where
          // it will count as a duplicate. (Acknowledging here would answer a packet id of the new connection.)
          log.info({ topic, messageId: packet.messageId }, 'message committed after its connection closed; the broker will deliver it again');
          return;
        }
        metrics?.pubackLatency.observe((performance.now() - receivedAt) / 1000);
        log.debug({ topic, messageId: packet.messageId, dup: packet.dup, ...outcome }, 'message committed; acknowledging');
        ack(0);
      },
      (err) => {
        // Only a shutdown rejects (ShuttingDownError); the message stays unacknowledged in the session.
        log.warn({ topic, err: (err as Error).message }, 'message not committed; left unacknowledged for the broker to deliver again');
      },
    );
  }

  // QoS 0 messages bypass customHandleAcks; they carry no acknowledgement, but are stored the same way, one
  // at a time (mqtt.js reads the next packet only after this callback), which bounds memory.
  const defaultHandleMessage = client.handleMessage.bind(client);
  client.handleMessage = (packet, callback) => {
    if (packet.qos !== 0) return defaultHandleMessage(packet, callback);
    if (handlingStopped) {
      log.warn({ topic: packet.topic }, 'QoS 0 message arrived during shutdown and was not stored (QoS 0 carries no redelivery)');
      return callback();
    }
    submit(packet.topic, packet.payload as Buffer).then(
      (outcome) => {
        log.debug({ topic: packet.topic, qos: 0, ...outcome }, 'message committed');
        callback();
      },
      (err) => {
        log.warn({ topic: packet.topic, err: (err as Error).message }, 'QoS 0 message not committed (QoS 0 carries no redelivery)');
        callback();
      },
    );
  };

  function subscribe(): void {
    client.subscribe(subscriptions, { qos: 1 }, (err, granted) => {
      if (err) {
        const code = (err as Error & { code?: number }).code;
        const message = `the broker refused the subscriptions ${subscriptions.join(', ')}: ${err.message}` +
          (code === 135 || code === 128 ? ' (check the broker ACL of the gateway user)' : '');
        lastError = message;
        log.error({ code, granted }, message);
        if (onFatalAtStart) onFatalAtStart(new Error(message));
        return;
      }
      subscribed = true;
      log.info({ subscriptions, granted: granted?.map((g) => g.qos) }, 'subscribed');
      onFirstSubscribed?.();
    });
  }

  client.on('connect', (connack) => {
    connected = true;
    everConnected = true;
    lastError = null;
    log.info({ url, clientId: opts.clientId, sessionPresent: connack.sessionPresent }, 'connected to MQTT broker');
    if (!closing) subscribe();
  });
  client.on('close', () => {
    connection++;
    if (connected) log.warn({ url, clientId: opts.clientId }, closing ? 'disconnected from MQTT broker' : 'connection to MQTT broker lost; reconnecting');
    connected = false;
    subscribed = false;
  });
  client.on('reconnect', () => log.debug({ url }, 'reconnecting to MQTT broker'));
  client.on('error', (err: Error & { code?: number | string }) => {
    const message = err.message;
    if (message !== lastError) log.warn({ url, code: err.code, err: message }, 'MQTT client error');
    lastError = message;
    const fatal = typeof err.code === 'number' ? FATAL_CONNACK.get(err.code) : undefined;
    if (fatal && onFatalAtStart) onFatalAtStart(new Error(`the MQTT broker ${url} refused the connection of client "${opts.clientId}": ${fatal}`));
  });
  client.on('disconnect', (packet) => {
    // MQTT 5: the broker says why it closes the connection (session taken over, server shutting down ...).
    log.warn({ url, reasonCode: packet.reasonCode, reason: packet.properties?.reasonString }, 'MQTT broker sent DISCONNECT');
  });

  async function endClient(timeoutMs: number): Promise<void> {
    // end(false) writes DISCONNECT (after the PUBACKs already queued on the socket); the session is kept,
    // as its expiry interval was set at CONNECT. A broker that cannot be reached is given up on.
    const ended = new Promise<void>((resolve) => client.end(false, {}, () => resolve()));
    const timedOut = await Promise.race([ended.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), Math.max(timeoutMs, 100)).unref())]);
    if (timedOut) await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
  }

  const gateway: ExternalGateway = {
    batcher,
    clientId: opts.clientId,
    shareGroup: opts.shareGroup,
    url,
    subscriptions,
    get listening() {
      return connected && subscribed && !closing;
    },
    get connected() {
      return connected;
    },
    start() {
      if (started) return Promise.reject(new Error('start() was already called'));
      started = true;
      const timeoutMs = opts.startTimeoutMs ?? 30_000;
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => fail(new Error(`the MQTT broker ${url} could not be reached within ${Math.round(timeoutMs / 1000)} s${lastError ? `: ${lastError}` : ''}`)),
          timeoutMs,
        );
        const settle = () => {
          clearTimeout(timer);
          onFirstSubscribed = null;
          onFatalAtStart = null;
        };
        const fail = (err: Error) => {
          settle();
          closing = true;
          handlingStopped = true;
          client.end(true, {}, () => reject(err));
        };
        onFirstSubscribed = () => {
          settle();
          resolve();
        };
        onFatalAtStart = fail;
        log.info({ url, clientId: opts.clientId, shareGroup: opts.shareGroup }, 'connecting to MQTT broker');
        client.connect();
      });
    },
    async listen() {
      await gateway.start();
      return { mqttPort: null, wsPort: null };
    },
    close(drainMs = 10_000) {
      closed ??= shutdown(drainMs);
      return closed;
    },
  };

  let closed: Promise<void> | undefined;
  async function shutdown(drainMs: number): Promise<void> {
    const deadline = Date.now() + drainMs;
    closing = true;
    // Not an UNSUBSCRIBE: with no member of the group subscribed, a broker discards what devices publish
    // meanwhile. The subscription stays in the session; what the broker sends from now on stays there too.
    handlingStopped = true;
    const drained = await batcher.drain(drainMs);
    if (!drained) log.warn({ pending: batcher.pendingReadings }, 'shutdown: uncommitted readings were not acknowledged; the broker will deliver them again');
    // Let the acknowledgements written by the last callbacks reach the socket before DISCONNECT.
    await new Promise((r) => setImmediate(r));
    if (stoppedWhileClosing) log.info({ messages: stoppedWhileClosing }, 'messages that arrived during shutdown were left in the session for the next start');
    if (client.connected) await endClient(deadline - Date.now());
    else await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
    if (everConnected) log.info({ clientId: opts.clientId }, 'MQTT client closed; session kept');
  }
  return gateway;
}
