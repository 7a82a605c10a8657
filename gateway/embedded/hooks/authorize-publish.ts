/**
 * Step 3b, PUBLISH: the topic is the device's own (topics.ts), the device is within its publish rate, and
 * the message goes through the ingestion pipeline. Aedes writes the QoS 1 PUBACK only after this hook calls
 * back, and it calls back only after the commit, so an acknowledged reading is durably stored.
 */
import type { PublishPacket } from 'aedes';
import { clip } from '../../client-text.js';
import { publishRefusal } from '../../topics.js';
import type { DeviceClient, HookContext } from './context.js';

/**
 * Calls `fn` once every accepted publish of `client` has called back (its PUBACK written), then one more
 * turn of the event loop so those PUBACKs reach the socket before a refusal closes it.
 */
function afterInFlight(client: DeviceClient, fn: () => void): void {
  const later = () => void setImmediate(fn);
  if (!client.publishesInFlight) return later();
  (client.whenIdle ??= []).push(later);
}

export function authorizePublish(ctx: HookContext) {
  const { log, metrics, limits, pipeline } = ctx;
  return function authorizePublish(client: DeviceClient | null, packet: PublishPacket, callback: (err?: Error | null) => void): void {
    const device = client?.device;
    if (!client || !device) return callback(new Error('not authorized'));
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
    if (limits.publishes && !limits.publishes.take(device.id)) {
      metrics?.mqttRefused.inc({ reason: 'publish_rate' });
      log.warn({ deviceId: device.id, waitMs: limits.publishes.waitMs(device.id) }, 'publish refused: over the device publish rate; closing the connection (unacknowledged, the device resends)');
      return afterInFlight(client, () => callback(new Error('publish rate exceeded')));
    }
    client.publishesInFlight = (client.publishesInFlight ?? 0) + 1;
    const settle = (err: Error | null) => {
      callback(err);
      if (--client.publishesInFlight! === 0 && client.whenIdle) for (const fn of client.whenIdle.splice(0)) fn();
    };
    // Readings are never retained or queued by the broker; the database is the store.
    packet.retain = false;
    const receivedAt = performance.now();
    pipeline.ingest(device, packet.topic, packet.payload as Buffer).then(
      (outcome) => {
        metrics?.pubackLatency.observe((performance.now() - receivedAt) / 1000);
        if (Object.keys(outcome.quarantined).length) log.debug({ deviceId: device.id, outcome }, 'message partly quarantined');
        settle(null);
      },
      (err) => settle(err),
    );
  };
}
