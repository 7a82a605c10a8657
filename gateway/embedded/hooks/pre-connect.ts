/**
 * Step 1, before CONNECT is read further: refuse while shutting down, above the connection limit or the
 * ingestion high-water mark, and an address with too many failed (or unfinished) attempts this minute,
 * all before any database lookup or scrypt, without a CONNACK.
 */
import type { Client } from 'aedes';
import type { DeviceClient, HookContext } from './context.js';

export function preConnect(ctx: HookContext) {
  const { log, metrics, limits } = ctx;
  return function preConnect(client: Client, packet: { clientId?: string }, callback: (err: Error | null, ok: boolean) => void): void {
    const deviceClient = client as DeviceClient;
    deviceClient.serverAssignedId = packet.clientId === '';
    if (!ctx.accepting) return callback(new Error('gateway is shutting down'), false);
    if (ctx.connected >= ctx.maxConnections) {
      metrics?.mqttRefused.inc({ reason: 'max_connections' });
      return callback(new Error('too many connections'), false);
    }
    const pending = ctx.pipeline.batcher.pendingReadings;
    if (pending >= ctx.highWaterReadings) {
      metrics?.mqttRefused.inc({ reason: 'high_water' });
      log.warn({ pending }, 'refusing connection: ingestion backlog above high-water mark');
      return callback(new Error('server busy'), false);
    }
    // Successful attempts are given back (releaseAddress), so many meters behind one NAT or concentrator
    // address are not locked out by their own successes.
    const address = limits.addressOf(deviceClient);
    if (address && limits.addressAttempts) {
      if (!limits.addressAttempts.take(address)) {
        metrics?.mqttRefused.inc({ reason: 'connect_rate' });
        log.debug({ remoteAddress: address }, 'connection refused: too many failed connection attempts from this address');
        return callback(new Error('too many connection attempts'), false);
      }
      deviceClient.limitedAddress = address;
    }
    callback(null, true);
  };
}
