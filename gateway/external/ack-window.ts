/**
 * The acknowledgement window of one subscriber connection: up to `maxInflight` QoS 1 messages in flight,
 * their PUBACKs written only after their readings are committed, in the order the PUBLISHes arrived (as
 * MQTT requires), and only on the connection they arrived on.
 *
 * The one place that relies on mqtt.js internals (5.16, pinned in package.json): mqtt.js handles a
 * connection's packets one at a time and reads the next only after the acknowledgement of the current one
 * is written (handlers/publish.js: customHandleAcks -> ack -> handleMessage -> _sendPacket(PUBACK, done),
 * and `done` reads on). The PUBACKs mqtt.js writes are intercepted in `_sendPacket`: their callback (`done`)
 * is called at once while the window has room (held while it is full), the PUBACK itself is dropped, and
 * the window writes it after the commit.
 */
import type { MqttClient } from 'mqtt';

/** A QoS 1 message of one connection life, from arrival to its PUBACK. */
export interface InFlight<Outcome> {
  messageId: number;
  /** the connection life it arrived on */
  life: number;
  receivedAt: number;
  outcome: Outcome | null;
}

export interface AckWindow<Outcome> {
  /** QoS 1 messages of this connection life not yet acknowledged */
  readonly size: number;
  /** a QoS 1 message arrived: its PUBACK waits for `complete` */
  open(messageId: number): InFlight<Outcome>;
  /**
   * The message's readings are committed: writes the PUBACKs now due at the head of the window (arrival
   * order) and lets mqtt.js read on when the window has room again. False when the message's connection
   * is gone: the broker delivers it again on the next (acknowledging here would answer a packet id of the
   * new connection).
   */
  complete(entry: InFlight<Outcome>, outcome: Outcome): boolean;
  /** The connection closed: what this life has in flight is answered by no PUBACK. */
  connectionClosed(): void;
}

type SendPacket = (packet: object, cb?: (err?: Error) => void, cbStorePut?: unknown, noStore?: boolean) => void;

export function installAckWindow<Outcome>(
  client: MqttClient,
  opts: { maxInflight: number; onAcknowledge?: (entry: InFlight<Outcome>) => void },
): AckWindow<Outcome> {
  const internals = client as unknown as { _sendPacket?: SendPacket };
  const originalSend = internals._sendPacket;
  if (typeof originalSend !== 'function') throw new Error('mqtt.js internals changed: MqttClient._sendPacket is missing (ack-window.ts relies on mqtt 5.16)');
  let inflight: InFlight<Outcome>[] = [];
  let life = 0;
  /** mqtt.js's "read the next packet", held while the window is full */
  let resume: (() => void) | null = null;

  internals._sendPacket = function (packet: object, cb?: (err?: Error) => void, cbStorePut?: unknown, noStore?: boolean) {
    if ((packet as { cmd?: string }).cmd !== 'puback') return originalSend.call(client, packet, cb, cbStorePut, noStore);
    if (inflight.length < opts.maxInflight) cb?.();
    else resume = cb ?? null;
  };

  return {
    get size() {
      return inflight.length;
    },
    open(messageId) {
      const entry: InFlight<Outcome> = { messageId, life, receivedAt: performance.now(), outcome: null };
      inflight.push(entry);
      return entry;
    },
    complete(entry, outcome) {
      if (entry.life !== life) return false;
      entry.outcome = outcome;
      while (inflight.length && inflight[0].outcome) {
        const due = inflight.shift()!;
        opts.onAcknowledge?.(due);
        // Written only while connected: mqtt.js would otherwise keep it for the next connection.
        if (client.connected) originalSend.call(client, { cmd: 'puback', messageId: due.messageId, reasonCode: 0 });
      }
      if (resume && inflight.length < opts.maxInflight) {
        const readOn = resume;
        resume = null;
        readOn();
      }
      return true;
    },
    connectionClosed() {
      life++;
      inflight = [];
      resume = null;
    },
  };
}
