/**
 * One simulated device on the wire: connects (holding one of the `--connections` slots), publishes its
 * feed with a window of unacknowledged messages, and when the connection drops, reconnects with jittered
 * exponential backoff and resends every unacknowledged message, oldest first, before anything new.
 *
 * A message is "settled" when the broker acknowledged it (QoS 1, PUBACK) or when it was written to the
 * socket (QoS 0). Only settled messages reach the ledger.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { MqttClient } from 'mqtt';
import { Backoff, type BackoffPolicy } from './backoff.js';
import type { DeviceFeed } from './device-feed.js';
import type { DeviceIdentity, OutboundMessage } from './message.js';
import { isCredentialRefusal, openConnection, type ConnectionSettings } from './mqtt-connection.js';
import type { RateLimiter } from './rate-limiter.js';
import { Wakeup, type Slots } from './slots.js';

export interface SessionEvents {
  published(message: OutboundMessage, isResend: boolean): void;
  /** Acknowledged (QoS 1) or written (QoS 0); `latencyMs` from the latest publish. */
  settled(message: OutboundMessage, latencyMs: number): void;
  /** Published and never settled: the session gave up or was aborted. */
  failed(messages: OutboundMessage[], reason: string): void;
  /** `isReconnect`: after a dropped connection (not after the session let its slot go). */
  connected(device: DeviceIdentity, isReconnect: boolean): void;
  /** The connection dropped unexpectedly (the session reconnects). */
  connectionLost(device: DeviceIdentity): void;
  /** No acknowledgement within the ack timeout: the session drops the connection to resend. */
  ackTimedOut(device: DeviceIdentity): void;
  /** The session closed its connection (idle with devices waiting for a slot, or finished). */
  disconnected(device: DeviceIdentity): void;
  connectFailed(device: DeviceIdentity, error: Error): void;
}

export interface SessionOptions extends ConnectionSettings {
  qos: 0 | 1;
  /** Messages a device keeps published and unacknowledged at once. */
  inflightWindow: number;
  backoff: BackoffPolicy;
  /** A device unable to connect for this long gives up: its unsettled messages fail. */
  giveUpAfterMs: number;
  /**
   * QoS 1: when the oldest unacknowledged message has waited this long, the device drops the connection,
   * reconnects and resends (MQTT resends only on a new connection). A gateway that cannot commit never
   * acknowledges; this is how its devices get their messages through once it recovers.
   */
  ackTimeoutMs: number;
  /** The `--connections` cap. */
  connections: Slots;
  /** Caps simultaneous handshakes so that thousands of devices do not SYN-flood the broker. */
  handshakes: Slots;
  rateLimiter: RateLimiter | null;
  /**
   * Stay online with nothing to send: connect at start and reconnect at once after a drop (live mode, when
   * every device has a connection slot). Otherwise a device connects when it has something to send.
   */
  stayConnected: boolean;
  events: SessionEvents;
}

export type SessionOutcome =
  | { status: 'done' }
  | { status: 'gave-up'; reason: string }
  | { status: 'aborted' };

class GiveUp extends Error {}

export class DeviceSession {
  private client: MqttClient | null = null;
  /** Bumped whenever the connection changes: callbacks of an older connection are ignored. */
  private generation = 0;
  private holdsSlot = false;
  /** The last connection dropped (rather than being closed by the session): the next one is a reconnection. */
  private lostConnection = false;
  private disconnectedSince = Number.NaN;
  /** Set when a connection dropped: the next attempt waits a jittered delay (no synchronized reconnect storm). */
  private reconnectDelayPending = false;
  private readonly inflight = new Map<number, OutboundMessage>();
  private readonly wakeup = new Wakeup();
  private readonly backoff: Backoff;
  private readonly abortController = new AbortController();

  constructor(
    readonly device: DeviceIdentity,
    readonly feed: DeviceFeed,
    private readonly options: SessionOptions,
  ) {
    this.backoff = new Backoff(options.backoff);
  }

  /** New readings may be ready (live mode). */
  notify(): void {
    this.wakeup.notify();
  }

  /** Ends the session now; unsettled messages fail. */
  abort(): void {
    this.abortController.abort();
    this.wakeup.notify();
  }

  get unsettled(): number {
    return this.inflight.size;
  }

  /** Called periodically: drops a connection whose oldest unacknowledged message waited too long. */
  checkAcknowledgements(now = performance.now()): void {
    if (!this.client || this.options.qos === 0) return;
    const oldest = this.inflight.values().next().value;
    if (!oldest || oldest.attempts === 0 || now - oldest.publishedAt < this.options.ackTimeoutMs) return;
    this.options.events.ackTimedOut(this.device);
    this.dropConnection();
  }

  async run(): Promise<SessionOutcome> {
    try {
      if (this.options.stayConnected) await this.connect();
      for (;;) {
        if (this.abortController.signal.aborted) return await this.finish({ status: 'aborted' });
        if (this.inflight.size === 0 && !this.feed.hasReady()) {
          if (this.feed.finished) return await this.finish({ status: 'done' });
          if (!this.client && this.options.stayConnected) {
            await this.connect();
            continue;
          }
          if (this.client && this.options.connections.waiting > 0) await this.disconnect(); // let a waiting device in
          await this.wakeup.wait();
          continue;
        }
        if (!this.client) {
          await this.connect();
          continue;
        }
        await this.publishWhileWindowOpen();
        await this.wakeup.wait();
      }
    } catch (error) {
      if (error instanceof GiveUp) return await this.finish({ status: 'gave-up', reason: error.message });
      if (this.abortController.signal.aborted) return await this.finish({ status: 'aborted' });
      throw error;
    }
  }

  private async publishWhileWindowOpen(): Promise<void> {
    while (this.client && this.inflight.size < this.options.inflightWindow) {
      const message = this.feed.next();
      if (!message) return;
      this.inflight.set(message.seq, message); // from here on it is resent until settled
      if (this.options.rateLimiter) await this.options.rateLimiter.take();
      // A reconnection during the wait has already published it with the other unacknowledged messages.
      if (this.client && message.attempts === 0 && !this.abortController.signal.aborted) this.publish(message);
    }
  }

  private publish(message: OutboundMessage): void {
    const generation = this.generation;
    message.attempts++;
    message.publishedAt = performance.now();
    this.options.events.published(message, message.attempts > 1);
    this.client!.publish(message.topic, message.payload, { qos: this.options.qos }, (error) => {
      if (error || generation !== this.generation || !this.inflight.delete(message.seq)) return;
      this.options.events.settled(message, performance.now() - message.publishedAt);
      this.feed.acknowledged(message);
      this.wakeup.notify();
    });
  }

  private async connect(): Promise<void> {
    if (!this.holdsSlot) {
      await this.options.connections.acquire(this.abortController.signal);
      this.holdsSlot = true;
    }
    if (Number.isNaN(this.disconnectedSince)) this.disconnectedSince = performance.now();
    if (this.reconnectDelayPending) {
      this.reconnectDelayPending = false;
      await sleep(this.backoff.next(), undefined, { signal: this.abortController.signal });
    }
    for (;;) {
      if (this.abortController.signal.aborted) throw new GiveUp('aborted');
      await this.options.handshakes.acquire(this.abortController.signal);
      let client: MqttClient | null = null;
      let failure: Error | null = null;
      try {
        client = await openConnection(this.device, this.options);
      } catch (error) {
        failure = error as Error;
      } finally {
        this.options.handshakes.release();
      }
      if (client) {
        this.attach(client);
        return;
      }
      this.options.events.connectFailed(this.device, failure!);
      if (isCredentialRefusal(failure)) throw new GiveUp(`${this.device.id}: ${failure!.message}`);
      const downMs = performance.now() - this.disconnectedSince;
      if (downMs > this.options.giveUpAfterMs) {
        throw new GiveUp(`${this.device.id}: no connection for ${Math.round(downMs / 1000)} s (${failure!.message})`);
      }
      await sleep(this.backoff.next(), undefined, { signal: this.abortController.signal });
    }
  }

  private attach(client: MqttClient): void {
    this.generation++;
    const generation = this.generation;
    this.client = client;
    this.disconnectedSince = Number.NaN;
    this.backoff.reset();
    client.on('error', () => {}); // always followed by 'close', handled there
    client.on('close', () => {
      if (generation === this.generation) this.dropConnection();
    });
    this.options.events.connected(this.device, this.lostConnection);
    this.lostConnection = false;
    for (const message of this.inflight.values()) this.publish(message); // oldest first
  }

  /** The connection is gone (or abandoned): forget it, count it, and let the loop reconnect and resend. */
  private dropConnection(): void {
    const client = this.client;
    this.generation++;
    this.client = null;
    this.disconnectedSince = performance.now();
    this.reconnectDelayPending = true;
    this.lostConnection = true;
    client?.end(true);
    this.options.events.connectionLost(this.device);
    this.wakeup.notify();
  }

  private async disconnect(): Promise<void> {
    const client = this.client;
    this.generation++;
    this.client = null;
    if (client) {
      this.options.events.disconnected(this.device);
      await endClient(client, this.inflight.size > 0);
    }
    if (this.holdsSlot) {
      this.holdsSlot = false;
      this.options.connections.release();
    }
  }

  private async finish(outcome: SessionOutcome): Promise<SessionOutcome> {
    await this.disconnect();
    if (this.inflight.size > 0) {
      const reason = outcome.status === 'gave-up' ? outcome.reason : outcome.status;
      this.options.events.failed([...this.inflight.values()], reason);
      this.inflight.clear();
    }
    this.feed.halt();
    return outcome;
  }
}

/** Sends DISCONNECT and closes (or drops the socket at once when `force`), waiting at most 2 s. */
function endClient(client: MqttClient, force: boolean): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.end(true);
      resolve();
    }, 2_000);
    client.end(force, {}, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
