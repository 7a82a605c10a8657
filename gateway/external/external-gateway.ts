/**
 * MQTT_MODE=external: the gateway as a subscriber of an existing broker cluster (Mosquitto, EMQX, HiveMQ)
 * instead of an embedded Aedes broker. The broker authenticates devices and enforces the topic rules
 * (its ACL); this process subscribes to every readings topic through a shared subscription, so that the
 * instances of one group (MQTT_SHARE_GROUP) share the stream, and runs the same steps as the embedded
 * gateway from there on:
 *   the ingestion pipeline (../ingestion/: decode, batch, commit) -> PUBACK.
 *
 * Delivery: the session is persistent (stable client id, clean start off, MQTT 5 session that does not
 * expire), and the PUBACK to the broker is written only after the message's readings and quarantine records
 * are committed (mqtt.js `customHandleAcks`, MQTT 5 only). Whatever was not acknowledged when a connection or
 * the process dies stays in the session and the broker delivers it again; the database makes the second
 * delivery a counted duplicate. So: at-least-once delivery, exactly-once effect.
 *
 * Throughput: an instance opens `connections` subscriber connections (MQTT_SUBSCRIBER_CONNECTIONS), each its
 * own persistent session (client ids `<clientId>`, `<clientId>-2` ... `<clientId>-<n>`), all in the same
 * group and all feeding one IngestBatcher, so messages of every connection are committed together. On each
 * connection up to `maxInflightPerConnection` messages (default: the Receive Maximum, 100) are in flight at
 * once: mqtt.js by itself reads a connection's next packet only after the current one's PUBACK is written,
 * which would allow one commit per round trip; the PUBACKs it writes are intercepted instead (ack-window.ts)
 * and written after the commit, in the order the PUBLISHes arrived, as MQTT requires.
 *
 * Built separately from connecting: `createExternalGateway()` wires everything, `start()` connects.
 */
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Logger } from '../../common/logger.js';
import type { CommitHealth, IngestBatcher, MessageOutcome } from '../ingestion/batcher.js';
import { createIngestionPipeline, type IngestionOptions } from '../ingestion/pipeline.js';
import { quarantineMessage } from '../ingestion/quarantine.js';
import { parseReadingsTopic } from '../topics.js';
import { clip } from '../client-text.js';
import { installAckWindow, type AckWindow, type InFlight } from './ack-window.js';

/** The ingestion pipeline's options (pool, log, metrics, limits, clock, onCommitted), and the subscriber's. */
export interface ExternalGatewayOptions extends IngestionOptions {
  /** mqtt://, mqtts://, ws:// or wss:// */
  url: string;
  username?: string;
  password?: string;
  /**
   * stable per instance: it names the persistent session that holds this instance's unacknowledged messages
   * (with `connections` > 1, the first connection's; the others are `<clientId>-2` ... `<clientId>-<n>`)
   */
  clientId: string;
  /** subscriber connections, each its own persistent session in the same group (default 1) */
  connections?: number;
  /**
   * messages of one connection handed to the batcher and not yet acknowledged (default: receiveMaximum);
   * 1 is mqtt.js's own pace: the next message is read only after the current one's PUBACK
   */
  maxInflightPerConnection?: number;
  shareGroup: string;
  /** PEM CA bundle for a broker with a private CA */
  caFile?: string;
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
  /** the client ids of the subscriber connections (the first is `clientId`) */
  readonly clientIds: readonly string[];
  readonly shareGroup: string;
  /** the broker URL without credentials */
  readonly url: string;
  /** the shared-subscription filters */
  readonly subscriptions: string[];
  /** every connection connected to the broker with the subscriptions granted, and close() not begun (readiness) */
  readonly listening: boolean;
  /** every connection connected */
  readonly connected: boolean;
  /** whether commits are going through (readiness: not ready while `healthy` is false) */
  commitHealth(now?: number): CommitHealth;
  /** Connects and subscribes; resolves once every connection's subscriptions are granted. Reconnects by itself afterwards. */
  start(): Promise<void>;
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

/** The client ids of an instance's subscriber connections: `<clientId>` (as with one), `<clientId>-2` ... `<clientId>-<n>`. */
export function subscriberClientIds(clientId: string, connections: number): string[] {
  return Array.from({ length: connections }, (_, i) => (i === 0 ? clientId : `${clientId}-${i + 1}`));
}

/** What the log of an acknowledged message says. */
interface Arrival {
  topic: string;
  dup: boolean;
}

/** One subscriber connection: its own client id, persistent session and acknowledgement queue. */
interface Subscriber {
  clientId: string;
  log: Logger;
  client: MqttClient;
  connected: boolean;
  subscribed: boolean;
  /** +1 whenever the network connection closes (subscriptions answered on an older life are ignored) */
  life: number;
  /** the QoS 1 messages in flight on this connection, acknowledged after commit in arrival order */
  acks: AckWindow<MessageOutcome>;
}

export function createExternalGateway(opts: ExternalGatewayOptions): ExternalGateway {
  const { log, metrics } = opts;
  const url = redactUrl(opts.url);
  const subscriptions = sharedSubscriptions(opts.shareGroup);
  const connections = opts.connections ?? 1;
  if (!Number.isInteger(connections) || connections < 1) throw new Error(`connections must be a positive integer, not ${connections}`);
  const receiveMaximum = opts.receiveMaximum ?? 100;
  const maxInflight = opts.maxInflightPerConnection ?? receiveMaximum;
  if (!Number.isInteger(maxInflight) || maxInflight < 1) throw new Error(`maxInflightPerConnection must be a positive integer, not ${maxInflight}`);
  const clientIds = subscriberClientIds(opts.clientId, connections);
  const ca = opts.caFile ? readFileSync(opts.caFile) : undefined;
  const pipeline = createIngestionPipeline(opts);
  const batcher = pipeline.batcher;

  let started = false;
  let everConnected = false;
  let closing = false;
  /** once set, arriving messages are neither stored nor acknowledged: they stay in the broker's session */
  let handlingStopped = false;
  let lastError: string | null = null;
  let onSubscribed: (() => void) | null = null;
  let onFatalAtStart: ((err: Error) => void) | null = null;
  let stoppedWhileClosing = 0;
  /** topic and dup flag of each QoS 1 message in flight, for the log line of its acknowledgement */
  const arrivals = new WeakMap<InFlight<MessageOutcome>, Arrival>();

  /** The message through the pipeline, with the device taken from the topic. */
  function submit(topic: string, payload: Buffer): Promise<MessageOutcome> {
    const parsed = parseReadingsTopic(topic);
    if (!parsed) {
      // The subscription's `+` also matches levels that are not device ids (empty, too long, other characters).
      const detail = `topic "${topic.slice(0, 200)}" is not meters/{meterId}/readings or concentrators/{concentratorId}/readings with a valid id`;
      return pipeline.submit({ readings: [], quarantined: [quarantineMessage({ deviceId: null, topic }, payload, opts.maxPayloadBytes, 'schema', detail)] }, '', topic);
    }
    // The broker authenticated the publisher and its ACL confined it to this topic, so the topic names the
    // device. A device unknown here (or not yet known) is not dropped: its readings are quarantined at commit
    // (`unknown_meter`; on a concentrator topic `not_assigned`, as no meter is assigned to an unknown concentrator).
    return pipeline.ingest({ id: parsed.deviceId, kind: parsed.kind }, topic, payload);
  }

  /** QoS 1 (and 2): store, then acknowledge on the connection the message arrived on. */
  function onPublish(sub: Subscriber, topic: string, payload: Buffer, packet: IPublishPacket, ack: (error: Error | number, code?: number) => void): void {
    if (handlingStopped) {
      // Shutting down: no acknowledgement, so the message stays in this client id's session. (Not calling
      // `ack` also stops mqtt.js from reading this connection's next packet.)
      stoppedWhileClosing++;
      return;
    }
    const entry = packet.qos === 1 ? sub.acks.open(packet.messageId!) : null;
    if (entry) arrivals.set(entry, { topic, dup: packet.dup });
    const life = sub.life;
    submit(topic, payload).then(
      (outcome) => {
        if (entry ? !sub.acks.complete(entry, outcome) : life !== sub.life) {
          // The connection this message came on is gone; the broker delivers it again on the next one, where
          // it will count as a duplicate.
          sub.log.info({ topic: clip(topic), messageId: packet.messageId }, 'message committed after its connection closed; the broker will deliver it again');
          return;
        }
        if (!entry) {
          // QoS 2 (the gateway subscribes at QoS 1, so only a broker that upgrades would send it): mqtt.js
          // writes PUBREC itself and reads the next packet only then; one message at a time.
          sub.log.debug({ topic: clip(topic), messageId: packet.messageId, dup: packet.dup, ...outcome }, 'message committed; acknowledging');
          ack(0);
        }
      },
      (err) => {
        // Only a shutdown rejects (ShuttingDownError); the message stays unacknowledged in the session.
        sub.log.warn({ topic: clip(topic), err: (err as Error).message }, 'message not committed; left unacknowledged for the broker to deliver again');
      },
    );
    // QoS 1: mqtt.js's acknowledgement path is taken at once, so that it reads on; the PUBACK it would write
    // is held back by the ack window and written by it after the commit.
    if (packet.qos === 1) ack(0);
  }

  function createSubscriber(clientId: string): Subscriber {
    const subLog = connections > 1 ? log.child({ clientId }) : log;
    const clientOptions: IClientOptions = {
      manualConnect: true,
      protocolVersion: 5,
      clientId,
      username: opts.username,
      password: opts.password,
      ca,
      clean: false,
      properties: { sessionExpiryInterval: SESSION_NEVER_EXPIRES, receiveMaximum },
      keepalive: opts.keepaliveSeconds ?? 30,
      reconnectPeriod: opts.reconnectPeriodMs ?? 1000,
      connectTimeout: 10_000,
      // Transient refusals (server busy, unavailable, quota) must not end the reconnect loop.
      reconnectOnConnackError: true,
      // Subscriptions are (re)made on every connection below; the session keeps them meanwhile.
      resubscribe: false,
      customHandleAcks: (topic, payload, packet, ack) => onPublish(sub, topic, payload, packet as IPublishPacket, ack),
    };
    const client: MqttClient = mqtt.connect(opts.url, clientOptions);

    const sub: Subscriber = {
      clientId,
      log: subLog,
      client,
      connected: false,
      subscribed: false,
      life: 0,
      acks: installAckWindow<MessageOutcome>(client, {
        maxInflight,
        onAcknowledge: (m: InFlight<MessageOutcome>) => {
          const arrival = arrivals.get(m);
          metrics?.pubackLatency.observe((performance.now() - m.receivedAt) / 1000);
          subLog.debug({ topic: clip(arrival?.topic), messageId: m.messageId, dup: arrival?.dup, ...m.outcome }, 'message committed; acknowledging');
        },
      }),
    };

    // QoS 0 messages bypass customHandleAcks; they carry no acknowledgement, but are stored the same way, one
    // at a time per connection (mqtt.js reads the next packet only after this callback), which bounds memory.
    const defaultHandleMessage = client.handleMessage.bind(client);
    client.handleMessage = (packet, callback) => {
      if (packet.qos !== 0) return defaultHandleMessage(packet, callback);
      if (handlingStopped) {
        subLog.warn({ topic: packet.topic }, 'QoS 0 message arrived during shutdown and was not stored (QoS 0 carries no redelivery)');
        return callback();
      }
      submit(packet.topic, packet.payload as Buffer).then(
        (outcome) => {
          subLog.debug({ topic: clip(packet.topic), qos: 0, ...outcome }, 'message committed');
          callback();
        },
        (err) => {
          subLog.warn({ topic: clip(packet.topic), err: (err as Error).message }, 'QoS 0 message not committed (QoS 0 carries no redelivery)');
          callback();
        },
      );
    };

    function subscribe(): void {
      const life = sub.life;
      client.subscribe(subscriptions, { qos: 1 }, (err, granted) => {
        if (err) {
          const code = (err as Error & { code?: number }).code;
          const message = `the broker refused the subscriptions ${subscriptions.join(', ')}: ${err.message}` +
            (code === 135 || code === 128 ? ' (check the broker ACL of the gateway user)' : '');
          lastError = message;
          subLog.error({ code, granted }, message);
          if (onFatalAtStart) onFatalAtStart(new Error(message));
          return;
        }
        if (life !== sub.life) return;
        sub.subscribed = true;
        subLog.info({ subscriptions, granted: granted?.map((g) => g.qos) }, 'subscribed');
        onSubscribed?.();
      });
    }

    client.on('connect', (connack) => {
      sub.connected = true;
      everConnected = true;
      lastError = null;
      subLog.info({ url, clientId, sessionPresent: connack.sessionPresent }, 'connected to MQTT broker');
      if (!closing) subscribe();
    });
    client.on('close', () => {
      // What this life has in flight is answered by no PUBACK: the broker delivers it again on the next.
      sub.life++;
      sub.acks.connectionClosed();
      if (sub.connected) subLog.warn({ url, clientId }, closing ? 'disconnected from MQTT broker' : 'connection to MQTT broker lost; reconnecting');
      sub.connected = false;
      sub.subscribed = false;
    });
    client.on('reconnect', () => subLog.debug({ url, clientId }, 'reconnecting to MQTT broker'));
    client.on('error', (err: Error & { code?: number | string }) => {
      const message = err.message;
      if (message !== lastError) subLog.warn({ url, clientId, code: err.code, err: message }, 'MQTT client error');
      lastError = message;
      const fatal = typeof err.code === 'number' ? FATAL_CONNACK.get(err.code) : undefined;
      if (fatal && onFatalAtStart) onFatalAtStart(new Error(`the MQTT broker ${url} refused the connection of client "${clientId}": ${fatal}`));
    });
    client.on('disconnect', (packet) => {
      // MQTT 5: the broker says why it closes the connection (session taken over, server shutting down ...).
      subLog.warn({ url, clientId, reasonCode: packet.reasonCode, reason: packet.properties?.reasonString }, 'MQTT broker sent DISCONNECT');
    });
    return sub;
  }

  const subscribers = clientIds.map(createSubscriber);

  async function endClient(client: MqttClient, timeoutMs: number): Promise<void> {
    if (!client.connected) return new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
    // end(false) writes DISCONNECT (after the PUBACKs already queued on the socket); the session is kept,
    // as its expiry interval was set at CONNECT. A broker that cannot be reached is given up on.
    const ended = new Promise<void>((resolve) => client.end(false, {}, () => resolve()));
    const timedOut = await Promise.race([ended.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), Math.max(timeoutMs, 100)).unref())]);
    if (timedOut) await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
  }

  const gateway: ExternalGateway = {
    batcher,
    clientId: opts.clientId,
    clientIds,
    shareGroup: opts.shareGroup,
    url,
    subscriptions,
    commitHealth: (now?: number) => pipeline.health(now),
    get listening() {
      return !closing && subscribers.every((s) => s.connected && s.subscribed);
    },
    get connected() {
      return subscribers.every((s) => s.connected);
    },
    start() {
      if (started) return Promise.reject(new Error('start() was already called'));
      started = true;
      const timeoutMs = opts.startTimeoutMs ?? 30_000;
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          const missing = subscribers.filter((s) => !s.subscribed).map((s) => s.clientId);
          fail(new Error(`the MQTT broker ${url} could not be reached within ${Math.round(timeoutMs / 1000)} s${connections > 1 ? ` (not subscribed: ${missing.join(', ')})` : ''}${lastError ? `: ${lastError}` : ''}`));
        }, timeoutMs);
        const settle = () => {
          clearTimeout(timer);
          onSubscribed = null;
          onFatalAtStart = null;
        };
        const fail = (err: Error) => {
          settle();
          closing = true;
          handlingStopped = true;
          void Promise.all(subscribers.map((s) => new Promise<void>((r) => s.client.end(true, {}, () => r())))).then(() => reject(err));
        };
        onSubscribed = () => {
          if (!subscribers.every((s) => s.subscribed)) return;
          settle();
          resolve();
        };
        onFatalAtStart = fail;
        log.info({ url, clientIds, shareGroup: opts.shareGroup, maxInflightPerConnection: maxInflight }, 'connecting to MQTT broker');
        for (const s of subscribers) s.client.connect();
      });
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
    // Let the acknowledgements written by the last callbacks reach the sockets before DISCONNECT.
    await new Promise((r) => setImmediate(r));
    if (stoppedWhileClosing) log.info({ messages: stoppedWhileClosing }, 'messages that arrived during shutdown were left in the session for the next start');
    await Promise.all(subscribers.map((s) => endClient(s.client, deadline - Date.now())));
    if (everConnected) log.info({ clientIds }, 'MQTT client closed; session kept');
  }
  return gateway;
}
